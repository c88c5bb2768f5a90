/**
 * Cleanups owed by runs cancelled while queued (persistence/run-admin.ts `CLEANUP_OWED`). The call that
 * cancels such a run runs its definition's cleanup; a call that never learnt the outcome
 * (`CANCEL_OUTCOME_UNKNOWN`) or whose process died leaves it owed. Every worker that registers a
 * definition with a cleanup looks for owed cleanups every lease and runs them itself
 * ({@link sweepOwedCleanups}), as a `cancel` called again does ({@link runCleanupIfOwed}): nobody has to
 * cancel the run a second time, as a user of Temporal or DBOS would expect of work a dead process left.
 *
 * Each is run under the run's cleanup lock (pending-cancel.ts `holdCleanup`, held by a cancelling call
 * from before it writes the mark) and only if the run, read again once the lock is held, still owes it:
 * two workers sweeping at once, or a sweep and a cancel, never both run it. The lock goes with its
 * holder's connection, which can be lost while its process lives and runs the cleanup on: so the cleanup
 * is also leased on the run while it runs (persistence/run-admin.ts `takeOwedCleanup`), and a process
 * that died while it ran it leaves it to a sweep once that lease expired.
 */
import type { Database } from '../persistence/database.ts';
import type { RunRow } from '../persistence/row-types.ts';
import { CLEANUP_OWED, owedCleanupRuns } from '../persistence/run-admin.ts';
import { getRun } from '../persistence/runs.ts';
import type { WorkflowDefinition } from './definition.ts';
import { holdCleanup, runOwedCleanup, type CleanupRunner } from './pending-cancel.ts';

/** At most this many owed cleanups per sweep; the next sweep takes the rest. */
const OWED_CLEANUP_BATCH = 100;

/**
 * What {@link runCleanupIfOwed} did: `ran` the cleanup; found it `busy` (another call or worker holds
 * the run's cleanup lock and runs it); found it `not-owed` (no longer: run meanwhile); or left it,
 * `unregistered` — this process does not register the run's definition version.
 */
export type OwedCleanupOutcome = 'ran' | 'busy' | 'not-owed' | 'unregistered';

/** Looks a run's definition up by name and exact version (the engine's registry). */
export type DefinitionLookup = (workflow: string, version: string) => WorkflowDefinition | undefined;

/**
 * The run owes its definition's cleanup: cancelled with the mark, and it ran (its snapshot stored). A
 * run that never ran owes nothing, whatever its message says (test/h9-cancel-forged-marker.test.ts).
 */
export function isCleanupOwed(run: Pick<RunRow, 'status' | 'statusMessage' | 'snapshot'>): boolean {
  return run.status === 'cancelled' && run.statusMessage === CLEANUP_OWED && run.snapshot != null;
}

/** The context of a run's persisted snapshot (what a definition's cleanup is given), or undefined. */
export function snapshotContext(run: RunRow): unknown {
  return (run.snapshot as { context?: unknown } | null)?.context;
}

/**
 * Runs the cleanup run `run` owes, if it still owes it once its cleanup lock is held, with the reason of
 * the cancellation that ended it and its snapshot's context; then clears the mark (pending-cancel.ts
 * `runOwedCleanup`: a cleanup that throws is recorded as `cleanup.failed` and counts as run).
 *
 * @example
 * const outcome = await runCleanupIfOwed(db, run, (name, version) => registry.get(`${name}@${version}`), { worker, logger });
 */
export async function runCleanupIfOwed(
  db: Database,
  run: { id: string; workflow: string; workflowVersion: string },
  definitionOf: DefinitionLookup,
  history: CleanupRunner,
): Promise<OwedCleanupOutcome> {
  const definition = definitionOf(run.workflow, run.workflowVersion);
  if (!definition) return 'unregistered';
  const hold = await holdCleanup(db, run.id);
  try {
    if (!hold.held) return 'busy';
    // Read again under the lock: a call that let go of it just before it was taken here ran the
    // cleanup and cleared the mark after this caller read the run.
    const now = await getRun(db, run.id);
    if (!now || !isCleanupOwed(now)) return 'not-owed';
    const reason = (now.error as { message?: unknown } | null)?.message;
    const ran = await runOwedCleanup(
      db,
      { runId: run.id, reason: typeof reason === 'string' ? reason : 'cancelled', context: snapshotContext(now), definition },
      history,
    );
    // Not run: another execution holds its lease — one whose lock went with a lost connection runs it still —
    // or this one's lease was lost (taken too late, or while it ran): a sweep runs it again.
    return ran ? 'ran' : 'busy';
  } finally {
    await hold.release();
  }
}

/**
 * One sweep of a worker: runs the cleanups owed by runs of the definitions in `registry` (of one without
 * a cleanup, only clears the mark), at most {@link OWED_CLEANUP_BATCH}, one at a time, until
 * `stopping()`. Resolves to how many it ran. A failure of the database is thrown (the worker logs it and
 * sweeps again a lease later); a cleanup that throws is recorded in its run's history and does not end
 * the sweep.
 *
 * @example
 * const ran = await sweepOwedCleanups(db, registry, { worker: 'host:123', logger }, () => false);
 */
export async function sweepOwedCleanups(
  db: Database,
  registry: ReadonlyMap<string, WorkflowDefinition>,
  history: CleanupRunner,
  stopping: () => boolean,
): Promise<number> {
  // Those without a cleanup too: a run of one is marked when a process without its version cancelled it
  // (engine.ts `cancelNow`), and its mark, with nothing to run, is cleared here (runOwedCleanup).
  const registered = [...registry.values()].map((d): [string, string] => [d.name, d.version]);
  if (registered.length === 0) return 0;
  const runs = await owedCleanupRuns(db, registered, OWED_CLEANUP_BATCH);
  let ran = 0;
  for (const run of runs) {
    if (stopping()) break;
    const outcome = await runCleanupIfOwed(db, run, (name, version) => registry.get(`${name}@${version}`), history);
    if (outcome === 'ran') ran += 1;
  }
  return ran;
}
