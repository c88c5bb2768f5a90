/**
 * `rmapp prune`: applies the retention policy once, from the command line or a cron job.
 */
import type { Command } from 'commander';
import { positiveInt } from './positive-int.ts';
import type { Database } from '../../persistence/database.ts';
import { FINAL_STATUSES } from '../../persistence/run-status.ts';
import type { PruneResult, RetentionPolicy } from '../../persistence/retention.ts';
import { describeRetention, retentionAgeOption } from './retention-age.ts';
import { retentionForgetsDeliveries } from '../webhooks/event-age.ts';

interface PruneCommandOptions {
  dryRun?: boolean;
  succeeded: number;
  failed: number;
  cancelled: number;
  batchSize: number;
  json?: boolean;
}

function describe(result: PruneResult, policy: RetentionPolicy, dryRun: boolean): string {
  const statuses = FINAL_STATUSES.map((s) => `${s} ${result.byStatus[s] ?? 0}`).join(', ');
  const ages = describeRetention(policy);
  const verb = dryRun ? 'Would delete' : 'Deleted';
  return `${verb} ${result.runs} finished runs (${statuses}), ${result.historyRows} history rows, ${result.signals} signals and ${result.artifacts} artifacts; kept: ${ages} after finishing.`;
}

/** Prints `result` on stdout, as JSON or one line. */
function print(result: PruneResult, policy: RetentionPolicy, dryRun: boolean, json: boolean): void {
  const text = json
    ? JSON.stringify(
        { dryRun, policy: Object.fromEntries(Object.entries(policy).map(([k, v]) => [k, v === Infinity ? null : v])), ...result },
        null,
        2,
      )
    : describe(result, policy, dryRun);
  process.stdout.write(`${text}\n`);
}

/**
 * Adds `rmapp prune [--dry-run] [--succeeded <age>] [--failed <age>] [--cancelled <age>] [--json]`,
 * which deletes finished runs older than their status's age with their history and signals (see
 * {@link pruneRuns}) and prints what it deleted, or with `--dry-run` what it would delete. Kept in
 * its own module so the CLI entry point registers it with one line; `open` supplies the store the
 * way the rest of the CLI does (its `--database-url`), an embedded one only if it exists. Where there
 * is none (`NO_STORE`, persistence/store-directory.ts) nothing is pruned and a line on stderr names the
 * path, exit 0 as `runs list`: a cron job run from the wrong folder made a 39 MB store there, and said
 * it deleted nothing as if it had looked at the runs (an outside tester). Bad ages are one-line errors, exit code 1.
 */
export function addPruneCommand(program: Command, open: () => Promise<Database>): void {
  program
    .command('prune')
    .description('delete finished runs older than their retention age, with their history and signals')
    .option('--dry-run', 'only count what would be deleted')
    .addOption(retentionAgeOption('succeeded', 'succeeded', 'keep succeeded runs this long after they finish'))
    .addOption(retentionAgeOption('failed', 'failed', 'keep failed runs this long after they finish'))
    .addOption(retentionAgeOption('cancelled', 'cancelled', 'keep cancelled runs this long after they finish'))
    .option('--batch-size <n>', 'runs deleted per transaction', positiveInt, 500)
    .option('--json', 'print JSON')
    .action(async (o: PruneCommandOptions) => {
      const policy: RetentionPolicy = { succeededMs: o.succeeded, failedMs: o.failed, cancelledMs: o.cancelled };
      const dryRun = o.dryRun === true;
      const db = await open().catch((err: { code?: string; dir?: string }) => {
        if (err.code !== 'NO_STORE') throw err;
        process.stderr.write(
          `rmapp: no rmapp store at ${err.dir}, so nothing to prune: run from the project's folder, or set RMAPP_DATA_DIR or DATABASE_URL to its store.\n`,
        );
        return null;
      });
      if (!db) {
        const byStatus = Object.fromEntries(FINAL_STATUSES.map((s) => [s, 0]));
        print({ runs: 0, historyRows: 0, signals: 0, artifacts: 0, byStatus }, policy, dryRun, o.json === true);
        return;
      }
      try {
        await (await import('../../persistence/migrate.ts')).migrate(db);
        // Imported here: retention.ts loads the database drivers, which `rmapp --version` and `--help` do not need.
        const { pruneRuns } = await import('../../persistence/retention.ts');
        const result = await pruneRuns(db, policy, { dryRun, batchSize: o.batchSize });
        print(result, policy, dryRun, o.json === true);
        const forgets = retentionForgetsDeliveries(policy);
        if (forgets && !dryRun) process.stderr.write(`rmapp prune: ${forgets}.\n`);
      } finally {
        await db.close();
      }
    });
}
