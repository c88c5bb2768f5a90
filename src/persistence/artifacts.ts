/** Reading and writing run artifacts. */
import type { Queryable } from './database.ts';

/**
 * The channel every saved artifact is announced on (payload: the run id, a space, the artifact's name),
 * so that a dashboard shows an artifact that grows while its step runs (an agent's transcript) live.
 */
export const ARTIFACT_CHANGED_CHANNEL = 'rmapp_artifact_changed';

/**
 * Stores (or replaces) an artifact; `json` is the value already serialized, `bytes` its size. The
 * notification is sent by the same statement, so it is delivered when (and only if) the write commits.
 * False when the run does not exist (it was pruned): nothing is stored.
 *
 * With `fence`, stored only while that session holds the run — (run id and creation instant, lease owner, lease epoch),
 * matched in SQL as a commit of the run is (commits.ts), on a running run whose lease has not expired
 * by the database's clock — and false otherwise: the record that guards an effect outside the database
 * (a git push, whose `branch-pushes` record says the branch is the run's; actors/branch-push.ts) is
 * refused to a session that lost the run, which then must not make the effect. Without it, a worker
 * paused past its lease (a GC pause, a stopped process) while another took the run over rewrote the
 * record the new owner relies on, and pushed.
 */
export async function saveArtifact(
  db: Queryable,
  runId: string,
  name: string,
  json: string,
  bytes: number,
  fence?: { owner: string; epoch: number; createdAt: Date },
): Promise<boolean> {
  // Only for a run that exists: a step that went on after its run was cancelled and pruned left an
  // artifact no prune removed, which a later run under the same id listed as its own. Read without a
  // lock: a row lock here (`for key share`) joined the lease renewals' and compactions' locks of the
  // run's row into one shared lock, and those then deadlocked (40P01). A save that reads the run just
  // before a prune of it commits may land after the prune's delete: the prune deletes the artifacts of
  // the runs it deleted once more after its batch (retention.ts `pruneRuns`).
  // The creation instant tells this run from one created again under its id after a prune, whose epochs
  // start again at 1: a step of the first still going on, on the same worker, matched the second's
  // session (test/h8-fenced-save-reused-id.test.ts). Within a millisecond: the session read it as a
  // JavaScript Date, the column holds microseconds.
  const fenced = fence
    ? ` and lease_owner = $5 and lease_epoch = $6 and status = 'running' and lease_expires_at > clock_timestamp()
        and created_at > $7::timestamptz - interval '1 millisecond' and created_at < $7::timestamptz + interval '1 millisecond'`
    : '';
  const rows = await db.query<{ saved: number }>(
    `with run as materialized (select id from rmapp_runs where id = $1${fenced}),
     saved as (
       insert into rmapp_run_artifacts (run_id, name, value, bytes) select run.id, $2, $3::jsonb, $4 from run
       on conflict (run_id, name) do update set value = excluded.value, bytes = excluded.bytes, created_at = now()
       returning run_id
     ),
     notified as (select pg_notify('${ARTIFACT_CHANGED_CHANNEL}', left($1 || ' ' || $2, 7000)) from saved)
     select (select count(*) from notified)::int as saved`,
    fence ? [runId, name, json, bytes, fence.owner, fence.epoch, fence.createdAt.toISOString()] : [runId, name, json, bytes],
  );
  return Number(rows[0]?.saved ?? 0) > 0;
}

/** An artifact's value, or undefined. */
export async function loadArtifact(db: Queryable, runId: string, name: string): Promise<unknown> {
  const rows = await db.query<{ value: unknown }>(`select value from rmapp_run_artifacts where run_id = $1 and name = $2`, [runId, name]);
  return rows[0]?.value;
}

/** Names and sizes of a run's artifacts. */
export async function listArtifacts(db: Queryable, runId: string): Promise<{ name: string; bytes: number; createdAt: Date }[]> {
  const rows = await db.query<{ name: string; bytes: number; created_at: Date }>(
    `select name, bytes, created_at from rmapp_run_artifacts where run_id = $1 order by created_at, name`,
    [runId],
  );
  return rows.map((r) => ({
    name: r.name,
    bytes: Number(r.bytes),
    createdAt: r.created_at instanceof Date ? r.created_at : new Date(r.created_at),
  }));
}
