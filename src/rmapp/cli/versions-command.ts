/**
 * `rmapp versions check`: before deploying new workflow definitions, lists the unfinished runs in the
 * database that they would strand (their version is neither current nor kept in `previousVersions`,
 * so no worker would resume them), with what the new definition says about their snapshot, and the
 * cleanups owed by cancelled runs that no worker would run. Exits 1 when there is any, so a deploy
 * pipeline can stop there. Point `--workflows` at the module being deployed; it may export
 * `previousVersions` beside `workflows`.
 */
import type { Command } from 'commander';
import type { AnyWorkflowDefinition } from '../../state_machine/definition.ts';
import { ValidationError } from '../../state_machine/errors.ts';
import type { RegisteredDefinitions, VersionCheck } from '../../state_machine/version-check.ts';
import { definitionList, importWorkflowsModule, loadWorkflows } from '../workflows/load.ts';
import { resolve } from 'node:path';
import { cliDatabase } from './database-url.ts';

/**
 * The definitions a workflows module registers: its `workflows` (or default export) and its optional
 * `previousVersions`, the older versions kept so that runs started on them can finish. Without a
 * module: the built-in registry.
 *
 * @example
 * // my-workflows.ts
 * export const workflows = [orderV3];
 * export const previousVersions = [orderV2]; // runs started on v2 finish on v2
 */
export async function loadWorkflowSet(modulePath?: string): Promise<Required<RegisteredDefinitions>> {
  const workflows = await loadWorkflows(modulePath);
  const exported = (await importWorkflowsModule(modulePath)).previousVersions ?? [];
  const previous = definitionList(exported, modulePath ? resolve(modulePath) : 'the built-in registry', '`previousVersions`');
  // As the engine refuses them (run-queries.ts): a current version listed again as a previous one.
  const current = new Set(workflows.map((d) => `${d.name}@${d.version}`));
  const again = previous.find((d) => current.has(`${d.name}@${d.version}`));
  if (again)
    throw new ValidationError(
      `Workflow ${again.name}@${again.version} is registered twice (previousVersions holds only versions that are not current).`,
    );
  return { workflows, previousVersions: previous };
}

const stateText = (state: unknown) => (typeof state === 'string' ? state : state == null ? '-' : JSON.stringify(state));

/** The human report: what is registered, how the unfinished runs stand, and each stranded run with why. */
export function formatVersionCheck(check: VersionCheck, registered: Required<RegisteredDefinitions>): string {
  const lines = [
    `Current: ${registered.workflows.map((d) => `${d.name}@${d.version}`).join(', ') || '(none)'}`,
    `Previous: ${registered.previousVersions.map((d) => `${d.name}@${d.version}`).join(', ') || '(none)'}`,
  ];
  const count = (v: string) => check.runs.filter((r) => r.verdict === v).length;
  lines.push(
    `${check.runs.length} unfinished runs: ${count('current')} on a current version, ${count('previous')} on a previous version, ${check.stranded.length} stranded.`,
  );
  if (check.stranded.length) {
    lines.push('', 'Stranded runs (no registered definition would resume them):');
    for (const r of check.stranded) {
      lines.push(`  ${r.runId}  ${r.workflow}@${r.version}  ${r.status}  ${stateText(r.state)}`, `    ${r.reason}`);
    }
  }
  if (check.owedCleanups.length) {
    const total = check.owedCleanups.reduce((n, o) => n + o.runs, 0);
    lines.push('', `Owed cleanups no registered definition would run (${total} cancelled run${total === 1 ? '' : 's'}):`);
    for (const o of check.owedCleanups)
      lines.push(`  ${o.workflow}@${o.version}  ${o.runs} run${o.runs === 1 ? '' : 's'}`, `    ${o.reason}`);
  }
  return lines.join('\n');
}

/**
 * What a process of the service registers: the GitHub workflows when GitHub is configured, plus the
 * `--workflows` module (or, without GitHub, the built-in registry) with its `previousVersions`. The
 * same set for `serve`, `worker` and `versions check`, so the check sees what a deploy would run.
 */
export async function serviceWorkflowSet(
  github: { registry: { workflows: AnyWorkflowDefinition[]; previousVersions: AnyWorkflowDefinition[] } } | null,
  modulePath?: string,
): Promise<Required<RegisteredDefinitions>> {
  const set = github && !modulePath ? { workflows: [], previousVersions: [] } : await loadWorkflowSet(modulePath);
  return {
    workflows: [...(github?.registry.workflows ?? []), ...set.workflows],
    previousVersions: [...(github?.registry.previousVersions ?? []), ...set.previousVersions],
  };
}

/**
 * Adds `rmapp versions check [--json]`. Reads only: it neither migrates nor changes a run, so it can
 * point at the production database before a deploy; on the embedded store it fails where there is no
 * store rather than making one and finding nothing stranded. Uses the program's `--workflows` and
 * `--database-url`.
 */
export function addVersionsCommand(program: Command): void {
  const versions = program.command('versions').description('workflow definition versions and the runs that use them');
  versions
    .command('check')
    .description('list unfinished runs and owed cleanups the registered definitions would strand (exit 1 if any)')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const opts = program.opts<{ workflows?: string; databaseUrl?: string }>();
      const [
        { loadConfig, secretsOf },
        { githubRuntime },
        { openDatabase },
        { checkRunVersions },
        { checkSchema },
        { createLogger },
        { connectionStringSecrets },
      ] = await Promise.all([
        import('../config.ts'),
        import('../service.ts'),
        import('../../persistence/database.ts'),
        import('../../state_machine/version-check.ts'),
        import('../../persistence/migrate.ts'),
        import('../logger.ts'),
        import('../masking.ts'),
      ]);
      const config = await loadConfig({ requireWebhookSecret: false, serves: false });
      // The GitHub client logs (Octokit's warnings, a failed request) through the service's masked
      // logger, as in `serve` and `worker`: built without one, it wrote them to stderr as they were, a
      // configured token or key quoted in one in clear.
      const github = config.githubEnabled
        ? githubRuntime(config, {
            log: createLogger({ secrets: [...secretsOf(config), ...connectionStringSecrets(opts.databaseUrl)] }),
            databaseUrl: opts.databaseUrl,
          })
        : null;
      const registered = await serviceWorkflowSet(github, opts.workflows);
      // An embedded store is not made where there is none (NO_STORE names the path, exit 1): a gate run from
      // the wrong folder made an empty one there and passed the deploy with "stranded": 0 (an outside tester).
      const db = await openDatabase({ ...cliDatabase(program), existingOnly: true });
      try {
        // A database a newer rmapp migrated is refused by every worker of this version: "0 stranded" and
        // exit 0 told a deploy pipeline it was safe (an adversarial pass).
        await checkSchema(db);
        const check = await checkRunVersions(db, registered).catch((err: { code?: string; cause?: { code?: string } }) => {
          // No rmapp tables yet (a database never migrated): no run can be stranded.
          if (err.code === '42P01' || err.cause?.code === '42P01') return { runs: [], stranded: [], owedCleanups: [] };
          throw err;
        });
        const text = o.json
          ? JSON.stringify(
              {
                current: registered.workflows.map((d) => ({ name: d.name, version: d.version })),
                previous: registered.previousVersions.map((d) => ({ name: d.name, version: d.version })),
                runs: check.runs,
                stranded: check.stranded.length,
                owedCleanups: check.owedCleanups,
              },
              null,
              2,
            )
          : formatVersionCheck(check, registered);
        process.stdout.write(`${text}\n`);
        // An owed cleanup no worker would run blocks a deploy as a stranded run does.
        if (check.stranded.length || check.owedCleanups.length) process.exitCode = 1;
      } finally {
        await db.close();
      }
    });
}
