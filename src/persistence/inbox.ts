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
       update rmapp_runs set signal_seq = signal_seq + 1,
         wake_at = case when status = 'waiting' then now() else wake_at end
       where id = $1 and exists (select 1 from ins)
       returning id)
     select (select id from ins) as id, pg_notify('${WAKE_CHANNEL}', $1) from (select 1) one where exists (select 1 from ins)`,
    [runId, JSON.stringify(event), dedupeKey],
  );
  const id = rows[0]?.id ?? null;
  return { appended: id !== null, id };
}

/**
 * Unconsumed signals of a run after `afterId`, oldest first, and the run's `signal_seq` read in the
 * same snapshot: every signal counted by `seq` is in `events` or was consumed before.
 */
export async function pendingSignals(db: Queryable, runId: string, afterId = 0): Promise<{ seq: number; events: InboxEvent[] }> {
  const rows = await db.query<{ seq: number; id: number | null; event: InboxEvent['event'] | null }>(
    `select r.signal_seq as seq, i.id::float8 as id, i.event
     from rmapp_runs r
     left join rmapp_run_inbox i on i.run_id = r.id and i.consumed_at is null and i.id > $2
     where r.id = $1 order by i.id`,
    [runId, afterId],
  );
  return {
    seq: Number(rows[0]?.seq ?? 0),
    events: rows.filter((r) => r.id !== null).map((r) => ({ id: Number(r.id), event: r.event as InboxEvent['event'] })),
  };
}
