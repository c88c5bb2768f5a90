/**
 * The owed cleanups this process leases or runs (state_machine/pending-cancel.ts `runOwedCleanup`), and
 * the keeping of their leases when an embedded store is closed under them. Here rather than beside
 * `runOwedCleanup` because the embedded store's own close keeps them (pglite-store.ts): an engine closes a
 * store it opened, but a store its caller opened and passed to `createEngine` is closed by the caller.
 */
import type { Database, Queryable } from './database-types.ts';
import { keepOwedCleanupLeases } from './run-admin.ts';

/**
 * An owed cleanup this process leases or runs: its run, its lease's owner, the store's description
 * (database-types.ts `Database.description`, unique among the stores a process has open) and whether that
 * store's close kept its lease ({@link keepRunningCleanups}) — from before its take landed, when it
 * must not run.
 * @internal
 */
export interface RunningCleanup {
  runId: string;
  owner: string;
  store: string | undefined;
  kept: boolean;
}

/**
 * The owed cleanups this process runs now, each with its lease's owner, in the process's global symbol
 * registry (as pending-cancel.ts `holdCleanup`'s holds on PGlite): every copy of the package loaded in the
 * process shares it.
 * @internal
 */
export const runningCleanups: Set<RunningCleanup> = ((globalThis as Record<symbol, unknown>)[Symbol.for('rmapp.runningCleanups')] ??=
  new Set<RunningCleanup>()) as Set<RunningCleanup>;

/**
 * Before an embedded store this process holds alone (`Database.soleHolder`) is closed under owed cleanups
 * still running: their leases are kept (run-admin.ts `keepOwedCleanupLeases`), so that the next process
 * to open the store — which takes a dead process's leases over at once — leaves them to expire rather
 * than run the cleanup beside this process, which lives on and runs it to its end. Only there: on
 * Postgres a lease is never taken over before it expired. Run ids are unique across stores: a cleanup of
 * another store matches nothing here. `db` answers statements still while the store is being closed.
 * @internal
 */
export async function keepRunningCleanups(db: Pick<Database, 'soleHolder' | 'description'> & Queryable): Promise<void> {
  if (!db.soleHolder || runningCleanups.size === 0) return;
  // Marked first: one whose take is still on its way does not run once it landed (pending-cancel.ts).
  for (const running of runningCleanups) if (running.store === undefined || running.store === db.description) running.kept = true;
  await keepOwedCleanupLeases(
    db,
    [...runningCleanups].map(({ runId, owner }) => ({ runId, owner })),
  );
}
