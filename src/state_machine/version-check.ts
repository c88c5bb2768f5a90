/**
 * Which unfinished runs a set of definitions would strand. A run keeps the definition version it
 * started with, and a worker resumes it only with that version (a newer machine may lack the state it
 * is in, or the child `src` it invoked; XState then errors or silently drops the child). So before a
 * deploy, every pending/running/waiting run must find its version among the definitions being
 * deployed: current or kept in `previousVersions`. This check reads the runs and says which do not,
 * and whether today's definition could even restore them (what a fix would need).
 */
import type { Queryable } from '../persistence/database.ts';
import { owedCleanupsByVersion } from '../persistence/run-admin.ts';
import { unfinishedRunsPage } from '../persistence/runs.ts';
import type { AnyWorkflowDefinition } from './definition.ts';
import { findRestoreProblem } from './snapshot-check.ts';

/** Where one unfinished run stands against the definitions checked. */
export interface RunVersionVerdict {
  runId: string;
  workflow: string;
  version: string;
  status: string;
  state: unknown;
  /** `current`: the version new runs start on; `previous`: kept to finish old runs; `stranded`: nothing would resume it. */
  verdict: 'current' | 'previous' | 'stranded';
  /** Why it is stranded, and what the current definition says about its snapshot. */
  reason?: string | undefined;
}

/** The definitions a deploy registers, as given to `createEngine`. */
export interface RegisteredDefinitions {
  workflows: readonly AnyWorkflowDefinition[];
  previousVersions?: readonly AnyWorkflowDefinition[] | undefined;
}

/**
 * Cancelled runs of one version whose definition's cleanup is still owed (persistence/run-admin.ts
 * `CLEANUP_OWED`) and that no deployed worker would run: the version is not registered, or is but
 * without a cleanup. A worker runs only the owed cleanups of the versions it registers
 * (owed-cleanups.ts), and retention keeps such a run until its cleanup ran: dropped with its version,
 * the cleanup never runs and the run is kept for ever.
 */
export interface OwedCleanupVerdict {
  workflow: string;
  version: string;
  /** How many cancelled runs of this version still owe it. */
  runs: number;
  /** Why none of the deployed workers would run it, and what to do. */
  reason: string;
}

/** Result of {@link checkRunVersions}. */
export interface VersionCheck {
  runs: RunVersionVerdict[];
  stranded: RunVersionVerdict[];
  /** Owed cleanups that the deploy would leave to no one: a blocker, as a stranded run is. */
  owedCleanups: OwedCleanupVerdict[];
}

type RunRowLike = Awaited<ReturnType<typeof unfinishedRunsPage>>[number];

/**
 * Compares every unfinished run in the database with `registered`. A run is stranded when its version
 * is not registered, or when it is but its persisted snapshot does not restore into that definition
 * (a state or child `src` it uses is missing: the old definition was edited in place). Also lists the
 * cleanups still owed by cancelled runs that no registered definition would run (`owedCleanups`): a
 * deploy should wait for them as for a stranded run.
 *
 * @example
 * const { stranded, owedCleanups } = await checkRunVersions(db, { workflows, previousVersions });
 * if (stranded.length || owedCleanups.length) throw new Error(`deploying would strand ${stranded.length} runs`);
 */
export async function checkRunVersions(
  db: Queryable,
  registered: RegisteredDefinitions,
  options: { batchSize?: number } = {},
): Promise<VersionCheck> {
  const current = new Map(registered.workflows.map((d) => [d.name, d]));
  const byKey = new Map<string, { def: AnyWorkflowDefinition; verdict: 'current' | 'previous' }>();
  for (const def of registered.previousVersions ?? []) byKey.set(`${def.name}@${def.version}`, { def, verdict: 'previous' });
  for (const def of registered.workflows) byKey.set(`${def.name}@${def.version}`, { def, verdict: 'current' });
  const runs: RunVersionVerdict[] = [];
  const batchSize = options.batchSize ?? 500;
  // Keyset pages: snapshots can be large, so never hold every unfinished run's at once.
  for (let after = ''; ;) {
    const rows = await unfinishedRunsPage(db, after, batchSize);
    for (const row of rows) runs.push(judge(row, byKey, current));
    if (rows.length < batchSize) break;
    after = (rows.at(-1) as RunRowLike).id;
  }
  const owedCleanups: OwedCleanupVerdict[] = [];
  for (const owed of await owedCleanupsByVersion(db)) {
    const def = byKey.get(`${owed.workflow}@${owed.version}`)?.def;
    if (def?.cleanup !== undefined) continue;
    const what = def ? `version ${owed.version} is registered without a cleanup` : `version ${owed.version} is not registered`;
    owedCleanups.push({
      ...owed,
      reason:
        `${what}, so no worker would run the cleanup ${owed.runs === 1 ? 'its cancelled run still owes' : `its ${owed.runs} cancelled runs still owe`} ` +
        `(and retention keeps ${owed.runs === 1 ? 'that run' : 'them'} until it ran): keep the definition of version ${owed.version}, with its ` +
        `cleanup, in previousVersions until a worker has run ${owed.runs === 1 ? 'it' : 'them'} (every worker looks for owed cleanups each lease)`,
    });
  }
  return { runs, stranded: runs.filter((r) => r.verdict === 'stranded'), owedCleanups };
}

function judge(
  row: RunRowLike,
  byKey: Map<string, { def: AnyWorkflowDefinition; verdict: 'current' | 'previous' }>,
  current: Map<string, AnyWorkflowDefinition>,
): RunVersionVerdict {
  const base = { runId: row.id, workflow: row.workflow, version: row.workflowVersion, status: row.status, state: row.stateValue };
  const registered = byKey.get(`${row.workflow}@${row.workflowVersion}`);
  if (registered) {
    const problem = row.snapshot == null ? null : findRestoreProblem(registered.def.machine, row.snapshot);
    if (!problem) return { ...base, verdict: registered.verdict };
    return {
      ...base,
      verdict: 'stranded',
      reason: `its version is registered but its snapshot does not restore into it (${problem}): was that definition changed in place?`,
    };
  }
  const latest = current.get(row.workflow);
  if (!latest) return { ...base, verdict: 'stranded', reason: `no version of workflow "${row.workflow}" is registered` };
  const fix = `keep the definition of version ${row.workflowVersion} in previousVersions`;
  if (row.snapshot == null)
    return {
      ...base,
      verdict: 'stranded',
      reason: `version ${row.workflowVersion} is not registered and the run has not started: ${fix}, or cancel it`,
    };
  const problem = findRestoreProblem(latest.machine, row.snapshot);
  return {
    ...base,
    verdict: 'stranded',
    reason: problem
      ? `version ${row.workflowVersion} is not registered, and the current version ${latest.version} cannot restore it (${problem}): ${fix}`
      : `version ${row.workflowVersion} is not registered (a run resumes only on its own version; the current version ${latest.version} has its states and children): ${fix}`,
  };
}
