/**
 * The owed cleanups this process leases or runs (state_machine/pending-cancel.ts `runOwedCleanup`), and
 * the keeping of their leases when an embedded store is closed under them. Here rather than beside
 * `runOwedCleanup` because the embedded store's own close keeps them (pglite-store.ts): an engine closes a
 * store it opened, but a store its caller opened and passed to `createEngine` is closed by the caller.
 */
import type { Database, Queryable } from './database-types.ts';

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
 * still running: their leases are kept ({@link keepOwedCleanupLeases}), so that the next process
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

/**
 * Marks the leases of owed cleanups that this process still runs as kept (`<owner>:kept`, as claims.ts
 * `keepLease` keeps a stopped worker's step): for an embedded store closed while they run. Here rather than
 * with the other owed-cleanup statements in run-admin.ts: the store's close calls it, and run-admin.ts imports
 * the store's module (an import cycle). A kept lease is not taken over at once (run-admin.ts `takeOwedCleanup`'s `soleHolder`): the process that closed
 * the store may live on and run the cleanup to its end, and the next process to open the store ran it
 * again beside it (test/a6-pglite-stopped-cleanup.test.ts). Nothing renews it (its owner changed): it
 * expires, and the cleanup, still owed (its mark cannot be cleared in a closed store), runs again then.
 */
async function keepOwedCleanupLeases(db: Queryable, leases: { runId: string; owner: string }[]): Promise<void> {
  if (leases.length === 0) return;
  await db.query(
    `update rmapp_runs r set lease_owner = r.lease_owner || ':kept'
     from jsonb_to_recordset($1::jsonb) as k(id text, owner text)
     where r.id = k.id and r.lease_owner = k.owner and r.status = 'cancelled'`,
    [JSON.stringify(leases.map((l) => ({ id: l.runId, owner: l.owner })))],
  );
}
