/**
 * Operator actions on one run outside its owner's commits: cancelling a run no worker has taken yet,
 * putting a failed run back to retry it, and the counts metrics read. Each is one statement guarded so
 * that a worker acting on the run meanwhile wins (the statement then matches nothing).
 */
import type { Queryable } from './database.ts';
import type { RunStatus } from './run-status.ts';
import { WAKE_CHANNEL } from './runs.ts';

/**
 * Cancels a run that never started, in place: only while it is still pending and unleased, at the
 * version the caller read. Its history entries (`run.cancelled`, with what precedes it) are appended in
 * the same statement, so the run's history says why it ended exactly when it did.
 *
 * Safe to send again when its answer was lost (a connection broken during COMMIT: applied or not, the
 * caller cannot tell): a sending that finds the run already cancelled by an earlier sending of the same
 * cancellation — cancelled at the version after the one read, with this error, its newest history row
 * written by `run.worker` (unique to the cancellation: pending-cancel.ts) — answers `landed` and changes nothing. Null when a worker took the run meanwhile (its
 * cancellation then goes through the run's inbox), or another cancellation was first.
 * @internal
 */
export async function cancelPendingRun(
  db: Queryable,
  run: { id: string; version: number; error: unknown; history: string; worker: string; cleanupOwed?: boolean },
): Promise<'cancelled' | 'landed' | null> {
  const rows = await db.query<{ cancelled: boolean; landed: boolean }>(
    `with u as (
       update rmapp_runs set status = 'cancelled', error = $2::jsonb, finished_at = now(), updated_at = now(), wake_at = null,
         version = version + 1, history_rows = history_rows + 1, status_message = $6
       where id = $1 and version = $3 and status = 'pending' and lease_owner is null returning id),
     h as (insert into rmapp_run_history (run_id, worker, log) select u.id, $5, $4::json from u)
     select exists (select 1 from u) as cancelled,
       exists (
         select 1 from rmapp_runs r
         where r.id = $1 and r.status = 'cancelled' and r.version = $3 + 1 and r.error = $2::jsonb
           and (select h.worker from rmapp_run_history h where h.run_id = $1 order by h.id desc limit 1) = $5) as landed`,
    [run.id, JSON.stringify(run.error), run.version, run.history, run.worker, run.cleanupOwed === true ? CLEANUP_OWED : null],
  );
  const row = rows[0];
  return row?.cancelled ? 'cancelled' : row?.landed ? 'landed' : null;
}

/**
 * The status message of a run cancelled in place whose definition's cleanup has not run yet
 * ({@link cancelPendingRun} with `cleanupOwed`): written with the cancellation, cleared once the cleanup
 * ran ({@link clearOwedCleanup}). The cleanup runs in the cancelling call after its statement; a call
 * that never learnt the outcome (every answer lost) or died before the cleanup left it owed, and the run
 * finished — a cancel called again answered "already finished" and the cleanup never ran. Now a worker
 * that registers the run's version finds the mark within a lease and runs it ({@link owedCleanupRuns}),
 * and so does the next `engine.cancel` of the run, whichever comes first (state_machine/owed-cleanups.ts).
 * @internal
 */
export const CLEANUP_OWED = 'Cancelled while queued; its cleanup has not run yet: cancel the run again to run it.';

/**
 * Up to `limit` runs, in id order, of the definitions `registered` ([name, version] pairs) whose cleanup
 * is owed ({@link CLEANUP_OWED}, on a run that ran: its snapshot stored; a mark on a run that never ran
 * owes nothing). A worker looks for them every lease and runs each cleanup itself
 * (state_machine/owed-cleanups.ts), so that none waits for a cancel called again. Read through
 * the partial index `rmapp_runs_cleanup_owed_idx` (migration 0022): `status_message = $1` implies the
 * index's `status_message is not null`, whatever the parameter, so a generic plan uses it too.
 * @internal
 */
export async function owedCleanupRuns(
  db: Queryable,
  registered: [string, string][],
  limit: number,
): Promise<{ id: string; workflow: string; workflowVersion: string }[]> {
  const rows = await db.query<{ id: string; workflow: string; workflow_version: string }>(
    `select r.id, r.workflow, r.workflow_version from rmapp_runs r
     where r.status = 'cancelled' and r.status_message = $1 and r.snapshot is not null
       and exists (select 1 from jsonb_array_elements($2::jsonb) v where v->>0 = r.workflow and v->>1 = r.workflow_version)
     order by r.id limit $3`,
    [CLEANUP_OWED, JSON.stringify(registered), limit],
  );
  return rows.map((r) => ({ id: r.id, workflow: r.workflow, workflowVersion: r.workflow_version }));
}

/**
 * The cleanups still owed ({@link CLEANUP_OWED}, on a run that ran), counted per workflow version: for
 * `rmapp versions check`, which reports those of a version a deploy drops (no worker would ever run them,
 * and retention keeps their runs). Read through the partial index `rmapp_runs_cleanup_owed_idx`.
 * @internal
 */
export async function owedCleanupsByVersion(db: Queryable): Promise<{ workflow: string; version: string; runs: number }[]> {
  const rows = await db.query<{ workflow: string; workflow_version: string; runs: number }>(
    `select r.workflow, r.workflow_version, count(*)::int as runs from rmapp_runs r
     where r.status = 'cancelled' and r.status_message = $1 and r.snapshot is not null
     group by r.workflow, r.workflow_version order by r.workflow, r.workflow_version`,
    [CLEANUP_OWED],
  );
  return rows.map((r) => ({ workflow: r.workflow, version: r.workflow_version, runs: Number(r.runs) }));
}

/**
 * Takes the lease of run `runId`'s owed cleanup for `owner` (unique to one execution) for `leaseMs`: in
 * the run's lease columns, which a cancelled run otherwise never uses. True when its cleanup is still
 * owed and no other execution's lease on it is live. The cleanup lock (state_machine/pending-cancel.ts
 * `holdCleanup`) goes with its connection, and a LISTEN connection is lost without its process dying
 * (a terminated backend, a restart of the connection): another worker's sweep then took the lock and
 * ran the cleanup again beside the first (test/a4-listen-lost-cleanup.test.ts). The lease stays with the
 * run: only once it expired unrenewed — its process dead or cut off for a lease — is the cleanup run again.
 * @internal
 */
export async function takeOwedCleanup(
  db: Queryable,
  runId: string,
  owner: string,
  leaseMs: number,
  /**
   * The store is embedded and this process holds it alone (database-types.ts `Database.soleHolder`): a lease on it is
   * a dead process's (this process's own executions exclude each other in memory: pending-cancel.ts
   * `holdCleanup`), taken over at once, as a worker takes over such a process's runs — unless it is kept
   * (running-cleanups.ts `keepOwedCleanupLeases`): its process closed the store and may still run the cleanup.
   */
  soleHolder = false,
): Promise<boolean> {
  const rows = await db.query(
    `update rmapp_runs set lease_owner = $3, lease_expires_at = now() + make_interval(secs => $4::float8 / 1000)
     where id = $1 and status = 'cancelled' and status_message = $2
       and (($5::boolean and right(lease_owner, 5) is distinct from ':kept') or lease_expires_at is null
            or lease_expires_at <= now() or lease_owner = $3) returning id`,
    [runId, CLEANUP_OWED, owner, leaseMs, soleHolder],
  );
  return rows.length > 0;
}

/**
 * Expires the owed-cleanup leases that the workers `owners` took ({@link takeOwedCleanup}, named
 * `<owner>:cleanup:<8 hex>`): for a worker started again under its id, whose earlier incarnations
 * `owners` are proven gone (state_machine/previous-incarnations.ts). The cleanup one of them was running
 * when it died is then run by the restarted worker's first sweep, as its runs are taken back at once; it
 * waited out the dead process's lease (test/a6-worker-id-restart-cleanup.test.ts). Returns how many.
 * @internal
 */
export async function expireOwedCleanupLeases(db: Queryable, owners: string[]): Promise<number> {
  if (owners.length === 0) return 0;
  const rows = await db.query<{ id: string }>(
    `update rmapp_runs set lease_expires_at = now()
     where status = 'cancelled' and status_message = $2 and lease_expires_at > now()
       and substring(lease_owner from '^(.*:[0-9a-f]{8}):cleanup:[0-9a-f]{8}$') = any($1::text[]) returning id`,
    [owners, CLEANUP_OWED],
  );
  return rows.length;
}

/**
 * Renews {@link takeOwedCleanup}'s lease while its cleanup runs; false when it is no longer `owner`'s.
 * Never moves its expiry back (`greatest`, as claims.ts `renewLeases` renews a run's): a renewal with a
 * shorter lease than the one standing — taken for longer, or by a caller whose lease setting differs —
 * shortened the lease of a cleanup still running, and a sweep could take it over beside it. @internal
 */
export async function renewOwedCleanup(db: Queryable, runId: string, owner: string, leaseMs: number): Promise<boolean> {
  const rows = await db.query(
    `update rmapp_runs set lease_expires_at = greatest(lease_expires_at, now() + make_interval(secs => $3::float8 / 1000))
     where id = $1 and status = 'cancelled' and lease_owner = $2 returning id`,
    [runId, owner, leaseMs],
  );
  return rows.length > 0;
}

/**
 * Clears {@link CLEANUP_OWED} once the cleanup ran, with the lease of {@link takeOwedCleanup} — only while
 * `owner` still holds that lease (expired or not: nobody took it). False when it no longer does: another
 * execution took the lease (this one's expired while its process was paused, say) and runs the cleanup
 * now, or ran it and cleared the mark. Cleared regardless of the holder, the mark was gone while the new
 * holder still ran the cleanup, and a cancel then answered that the run owed nothing
 * (test/h1-owed-cleanup-lease-fence.test.ts); the holder clears it when its cleanup ran.
 * @internal
 */
export async function clearOwedCleanup(db: Queryable, runId: string, owner: string): Promise<boolean> {
  const rows = await db.query(
    `update rmapp_runs set status_message = null, lease_owner = null, lease_expires_at = null
     where id = $1 and status = 'cancelled' and status_message = $2 and lease_owner = $3 returning id`,
    [runId, CLEANUP_OWED, owner],
  );
  return rows.length > 0;
}

/**
 * Lets go of {@link takeOwedCleanup}'s lease without clearing the mark, if `owner` still holds it: for a
 * cleanup whose signal aborted (its lease lost or unrenewed) and which returned. The next execution then
 * takes it at once rather than after the rest of a lease; a lease another execution took is left alone.
 * True when it was `owner`'s. @internal
 */
export async function releaseOwedCleanup(db: Queryable, runId: string, owner: string): Promise<boolean> {
  const rows = await db.query(
    `update rmapp_runs set lease_owner = null, lease_expires_at = null
     where id = $1 and status = 'cancelled' and lease_owner = $2 returning id`,
    [runId, owner],
  );
  return rows.length > 0;
}

/**
 * Puts a failed run back to `waiting`, due now, with its step records replaced by `steps`, appends
 * `history` (encoded, history-codec.ts) and wakes the workers, in one statement. A run with a
 * concurrency key goes back to its key's queue instead (`pending`, not admitted; first in line, as it
 * was created first): it kept `admitted` from its first admission, was claimed at once and ran beside
 * the key's runs over its limit. With `dropSignal`, that inbox signal — the one the run failed handling, or one the operator chose
 * — is consumed as `dropped` (its dedupe key freed, as an ignored one's) in the same statement, and the
 * run is put back only while the signal is still queued. `dropCancel`, a cancellation the run never
 * took, is consumed as `dropped` in the same statement too. Fenced by the version the caller read: null
 * when the run changed since (or the signal was taken), else the status it has now.
 * @internal
 */
export async function rewindFailedRun(
  db: Queryable,
  run: {
    id: string;
    version: number;
    steps: unknown;
    keyed: boolean;
    history: string;
    worker: string;
    dropSignal: number | null;
    /** A cancellation the run never took (state_machine/run-retry.ts): consumed as `dropped` too. */
    dropCancel?: number | null;
  },
): Promise<'waiting' | 'pending' | null> {
  // `keyed`: the run's definition (as registered now) has a concurrency limit. Without one no worker
  // admits queued runs, and a run sent back to a queue waited there for ever.
  const rows = await db.query<{ status: 'waiting' | 'pending' }>(
    `with u as (
       update rmapp_runs set status = case when concurrency_key is not null and $4::boolean then 'pending' else 'waiting' end,
         admitted = admitted and not (concurrency_key is not null and $4::boolean),
         wake_at = case when concurrency_key is not null and $4::boolean then null else now() end,
         error = null, finished_at = null, steps = $3::jsonb, history_rows = history_rows + 1,
         status_message = null, version = version + 1, updated_at = now()
       where id = $1 and version = $2 and status = 'failed'
         and ($7::bigint is null or exists (
           select 1 from rmapp_run_inbox i where i.run_id = $1 and i.id = $7::bigint and i.consumed_at is null))
       returning id, status),
     d as (
       update rmapp_run_inbox i set consumed_at = now(), outcome = 'dropped', dedupe_key = null
       from u where i.run_id = u.id and (i.id = $7::bigint or i.id = $8::bigint) and i.consumed_at is null),
     h as (insert into rmapp_run_history (run_id, worker, log) select u.id, $6, $5::json from u)
     select status, pg_notify('${WAKE_CHANNEL}', id) from u`,
    [run.id, run.version, JSON.stringify(run.steps), run.keyed, run.history, run.worker, run.dropSignal, run.dropCancel ?? null],
  );
  return rows[0]?.status ?? null;
}

/** How many runs are in `status` now (the queue-depth metric reads `waiting`). @internal */
export async function countRuns(db: Queryable, status: RunStatus): Promise<number> {
  const rows = await db.query<{ n: number }>(`select count(*)::int as n from rmapp_runs where status = $1`, [status]);
  return Number(rows[0]?.n ?? 0);
}
