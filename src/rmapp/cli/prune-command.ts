/**
 * `rmapp prune`: applies the retention policy once, from the command line or a cron job.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { Database } from '../../persistence/database.ts';
import {
  DEFAULT_RETENTION,
  formatDuration,
  parseDuration,
  pruneRuns,
  type PruneResult,
  type RetentionPolicy,
} from '../../persistence/retention.ts';

/** `never` keeps a status forever; anything else goes through {@link parseDuration}. */
function ageArg(value: string): number {
  if (value.trim() === 'never') return Infinity;
  try {
    return parseDuration(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function ageOption(status: string, key: keyof RetentionPolicy, forms = ''): Option {
  return new Option(`--${status} <age>`, `keep ${status} runs this long after they finish${forms}`)
    .argParser(ageArg)
    .default(DEFAULT_RETENTION[key], formatDuration(DEFAULT_RETENTION[key]));
}

interface PruneCommandOptions {
  dryRun?: boolean;
  succeeded: number;
  failed: number;
  cancelled: number;
  batchSize: number;
  json?: boolean;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

function describe(result: PruneResult, policy: RetentionPolicy, dryRun: boolean): string {
  const statuses = (['succeeded', 'failed', 'cancelled'] as const)
    .map((s) => `${s} ${result.byStatus[s] ?? 0}`)
    .join(', ');
  const ages = `succeeded ${formatDuration(policy.succeededMs)}, failed ${formatDuration(policy.failedMs)}, cancelled ${formatDuration(policy.cancelledMs)}`;
  const verb = dryRun ? 'Would delete' : 'Deleted';
  return `${verb} ${result.runs} finished runs (${statuses}), ${result.historyRows} history rows, ${result.signals} signals and ${result.artifacts} artifacts; kept: ${ages} after finishing.`;
}

/**
 * Adds `rmapp prune [--dry-run] [--succeeded <age>] [--failed <age>] [--cancelled <age>] [--json]`,
 * which deletes finished runs older than their status's age with their history and signals (see
 * {@link pruneRuns}) and prints what it deleted, or with `--dry-run` what it would delete. Kept in
 * its own module so the CLI entry point registers it with one line; `open` supplies the store the
 * way the rest of the CLI does (its `--database-url`). Bad ages are one-line errors, exit code 1.
 */
export function addPruneCommand(program: Command, open: () => Promise<Database>): void {
  program
    .command('prune')
    .description('delete finished runs older than their retention age, with their history and signals')
    .option('--dry-run', 'only count what would be deleted')
    .addOption(ageOption('succeeded', 'succeededMs', ' (7d, 12h, 30m, 45s, 500ms, or never)'))
    .addOption(ageOption('failed', 'failedMs'))
    .addOption(ageOption('cancelled', 'cancelledMs'))
    .option('--batch-size <n>', 'runs deleted per transaction', positiveInt, 500)
    .option('--json', 'print JSON')
    .action(async (o: PruneCommandOptions) => {
      const policy: RetentionPolicy = { succeededMs: o.succeeded, failedMs: o.failed, cancelledMs: o.cancelled };
      const db = await open();
      try {
        await (await import('../../persistence/migrate.ts')).migrate(db);
        const dryRun = o.dryRun === true;
        const result = await pruneRuns(db, policy, { dryRun, batchSize: o.batchSize });
        const text = o.json
          ? JSON.stringify({ dryRun, policy: Object.fromEntries(Object.entries(policy).map(([k, v]) => [k, v === Infinity ? null : v])), ...result }, null, 2)
          : describe(result, policy, dryRun);
        process.stdout.write(`${text}\n`);
      } finally {
        await db.close();
      }
    });
}
