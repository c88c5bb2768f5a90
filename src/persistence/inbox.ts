/** The durable per-run inbox of signals. */
import type { Queryable } from './database.ts';
import { WAKE_CHANNEL } from './runs.ts';

/** An unconsumed signal. */
export interface InboxEvent {
  id: number;
  event: { type: string; [key: string]: unknown };
}

/**
 * Appends a signal and, in the same statement, wakes the run if it waits and notifies workers.
 * With a `dedupeKey` already used for this run, nothing is appended (`appended: false`).
 */
export async function appendSignal(
  db: Queryable,
  runId: string,
  event: object,
  dedupeKey: string | null,
): Promise<{ appended: boolean; id: number | null }> {
  const rows = await db.query<{ id: number | null }>(
    `with ins as (
       insert into rmapp_run_inbox (run_id, event, dedupe_key) values ($1, $2::jsonb, $3)
       on conflict (run_id, dedupe_key) do nothing
       returning id::float8 as id),
     wake as (
       update rmapp_runs set wake_at = now()
       where id = $1 and status = 'waiting' and exists (select 1 from ins)
       returning id)
     select (select id from ins) as id, pg_notify('${WAKE_CHANNEL}', $1) from (select 1) one where exists (select 1 from ins)`,
    [runId, JSON.stringify(event), dedupeKey],
  );
  const id = rows[0]?.id ?? null;
  return { appended: id !== null, id };
}

/** Unconsumed signals of a run after `afterId`, oldest first. */
export async function pendingSignals(db: Queryable, runId: string, afterId = 0): Promise<InboxEvent[]> {
  return db.query<InboxEvent>(
    `select id::float8 as id, event from rmapp_run_inbox
     where run_id = $1 and consumed_at is null and id > $2 order by id`,
    [runId, afterId],
  );
}
