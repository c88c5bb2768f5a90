/** Reading and writing run artifacts. */
import type { Queryable } from './database.ts';

/** Stores (or replaces) an artifact; `json` is the value already serialized, `bytes` its size. */
export async function saveArtifact(db: Queryable, runId: string, name: string, json: string, bytes: number): Promise<void> {
  await db.query(
    `insert into rmapp_run_artifacts (run_id, name, value, bytes) values ($1, $2, $3::jsonb, $4)
     on conflict (run_id, name) do update set value = excluded.value, bytes = excluded.bytes, created_at = now()`,
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
