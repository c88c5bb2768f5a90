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
 */
export async function saveArtifact(db: Queryable, runId: string, name: string, json: string, bytes: number): Promise<void> {
  await db.query(
    `with saved as (
       insert into rmapp_run_artifacts (run_id, name, value, bytes) values ($1, $2, $3::jsonb, $4)
       on conflict (run_id, name) do update set value = excluded.value, bytes = excluded.bytes, created_at = now()
       returning run_id
     )
     select pg_notify('${ARTIFACT_CHANGED_CHANNEL}', left($1 || ' ' || $2, 7000)) from saved`,
    [runId, name, json, bytes],
  );
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
