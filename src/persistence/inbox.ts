/** The durable per-run inbox of signals. */
import type { Queryable } from './database.ts';
import { WAKE_CHANNEL } from './runs.ts';
import { LAST_STORABLE_MS } from './last-instant.ts';
import { FINAL_STATUSES } from './run-status.ts';

/** An unconsumed signal. */
export interface InboxEvent {
  id: number;
  event: { type: string; [key: string]: unknown };
  /** Buffered until then (epoch ms): offered again while no state accepts it. Null: delivered once. */
  keepUntil: number | null;
  /** A buffered signal whose `signal.buffered` is already in the run's history (an earlier owner kept it; its inbox row's `reported`). */
  reported?: boolean | undefined;
  /**
   * When it was sent (epoch ms, `created_at`), on the sending engine's clock: a restored run takes it
   * in order with its overdue timers, whose due times are on the engines' clocks too
   * (state_machine/timer-catch-up.ts).
   */
  sentAt: number;
}

/**
 * What became of a signal once its run took it: see the inbox's `outcome` column. `dropped`: its effect
 * is in no state the run has — the run failed handling it and was retried without it
 * (`engine.retry(id, { dropSignal: true })`), or the run took it after its last written state and was
 * cancelled or timed out from that state (its state since could not be written:
 * state_machine/session-signals.ts `endFromLastWritten`).
 */
export type SignalOutcome = 'received' | 'ignored' | 'expired' | 'dropped';

/**
 * Appends a signal and, in the same statement, wakes the run if it waits and notifies workers.
 * With a `dedupeKey` already used for this run, nothing is appended (`appended: false`); a key whose
 * signal was ignored is free again. `bufferMs` keeps the signal until a state accepts it, that long.
 * `sentAt` (epoch ms, the sender's clock) dates it, so a run restored later orders it with its
 * overdue timers as XState would have.
 *
 * A run that has finished takes no signal (`finished: true`, nothing appended). The run's row is locked
 * first (docs/engine-internals.md "Lock order": run rows, then the run's own tables) and its status
 * read under that lock, so a signal is either in the inbox before the run's final write commits or
 * refused: checked apart from the insert, a signal sent as the run finished was stored after its
 * last read and stayed `queued` for good.
 */
export async function appendSignal(
  db: Queryable,
  runId: string,
  event: object,
  dedupeKey: string | null,
  bufferMs: number | null = null,
  sentAt: number = Date.now(),
): Promise<{ appended: boolean; id: number | null; finished: boolean }> {
  const rows = await db.query<{ id: number | null; open: boolean }>(
    `with run as materialized (
       select id from rmapp_runs where id = $1 and status not in (${FINAL_STATUSES.map((f) => `'${f}'`).join(', ')})
       for no key update),
     ins as (
       insert into rmapp_run_inbox (run_id, event, dedupe_key, keep_until, created_at)
       select run.id, $2::jsonb, $3, case when $4::float8 is null then null else now() + make_interval(secs => $4::float8 / 1000) end,
         to_timestamp($5::float8 / 1000)
       from run
       on conflict (run_id, dedupe_key) do nothing
       returning id::float8 as id),
     wake as (
       update rmapp_runs r set signal_seq = r.signal_seq + 1,
         wake_at = case when r.status = 'waiting' then now() else r.wake_at end
       where r.id = $1 and exists (select 1 from ins)
       returning r.id),
     notified as (select pg_notify('${WAKE_CHANNEL}', $1) from ins)
     select (select id from ins) as id, exists (select 1 from run) as open, (select count(*) from notified) as notified`,
    // A clock that gives no storable instant (a custom one gone wrong) dates the signal by the wall clock.
    [
      runId,
      JSON.stringify(event),
      dedupeKey,
      bufferMs,
      Number.isFinite(sentAt) && sentAt >= 0 && sentAt <= LAST_STORABLE_MS ? sentAt : Date.now(),
    ],
  );
  const id = rows[0]?.id ?? null;
  return { appended: id !== null, id, finished: rows[0]?.open === false };
}

/**
 * Unconsumed signals of a run after `afterId`, oldest first, and the run's `signal_seq` read in the
 * same snapshot: every signal counted by `seq` is in `events` or was consumed before.
 */
export async function pendingSignals(db: Queryable, runId: string, afterId = 0): Promise<{ seq: number; events: InboxEvent[] }> {
  const rows = await db.query<{
    seq: number;
    id: number | null;
    event: InboxEvent['event'] | null;
    keep_until: Date | string | null;
    reported: boolean | null;
    sent_at: number | null;
  }>(
    `select r.signal_seq as seq, i.id::float8 as id, i.event, i.keep_until,
       extract(epoch from i.created_at)::float8 * 1000 as sent_at,
       i.reported
     from rmapp_runs r
     left join rmapp_run_inbox i on i.run_id = r.id and i.consumed_at is null and i.id > $2
     where r.id = $1 order by i.id`,
    [runId, afterId],
  );
  return {
    seq: Number(rows[0]?.seq ?? 0),
    events: rows
      .filter((r) => r.id !== null)
      .map((r) => ({
        id: Number(r.id),
        event: r.event as InboxEvent['event'],
        keepUntil: r.keep_until == null ? null : new Date(r.keep_until).getTime(),
        reported: r.reported === true,
        sentAt: Number(r.sent_at),
      })),
  };
}

/**
 * Of a run `r`: it will never read its inbox again — it succeeded, was cancelled, or timed out (a run past
 * its deadline cannot be retried: state_machine/run-retry.ts). What it left unconsumed stays so for good.
 *
 * A failed run that `engine.retry` refuses reads no more either (test/h7-unretryable-queued-signals.test.ts):
 * one its machine ended in a failure state (its snapshot `done`), and one past its deadline (by the
 * database's clock; retry asks the engine's, which may differ by a clock's drift).
 *
 * Timed out is the engine's own error (state_machine/session-deadline.ts `runTimeoutError`: no details)
 * on a run that has a deadline, not any error whose code is `RUN_TIMEOUT`: a step's error keeps its
 * thrower's code (and carries `details.step`), and a run without a deadline that failed with one was
 * retried and took the signals this had answered `ignored` and left out of `queuedSignals`
 * (test/h7-timeout-code-spoof.test.ts).
 */
const READS_NO_MORE = `(r.status in ('succeeded', 'cancelled') or (r.status = 'failed' and (
  (r.deadline_at is not null and r.error->>'code' = 'RUN_TIMEOUT' and r.error->>'name' = 'RunTimeoutError' and r.error->'details' is null)
  or r.snapshot->>'status' = 'done' or r.deadline_at <= now())))`;

/**
 * A signal's outcome, or null while the run has not taken it. One still in the inbox of a run that
 * succeeded, was cancelled or timed out was `ignored`: it came after the run's last read of its inbox (a
 * finished run takes none, `appendSignal`), so no state got it, and no later owner will. Another failed
 * run's may still be taken — `engine.retry` resumes the run, which reads its inbox again — but not
 * before: `held`.
 */
export async function signalOutcome(db: Queryable, runId: string, id: number): Promise<SignalOutcome | 'held' | null> {
  const rows = await db.query<{ outcome: SignalOutcome | null; consumed: boolean; status: string | null; over: boolean | null }>(
    `select i.outcome, i.consumed_at is not null as consumed, r.status, ${READS_NO_MORE} as over
     from rmapp_run_inbox i left join rmapp_runs r on r.id = i.run_id where i.run_id = $1 and i.id = $2`,
    [runId, id],
  );
  const row = rows[0];
  if (!row) return null;
  if (row.outcome) return row.outcome;
  if (row.consumed) return 'received';
  if (row.over === true) return 'ignored';
  // Failed before it took the event: the event stays in the inbox for `engine.retry`, and nothing will
  // take it before then — a wait for it would only run out.
  return row.status === 'failed' ? 'held' : null;
}

/** A signal still in a run's inbox, as an operator picks one (run-retry.ts). */
export interface QueuedSignal {
  id: number;
  type: string;
  sentAt: Date;
}

/**
 * The first `limit` signals still in run `runId`'s inbox, oldest first, and whether there are more:
 * what a failed run would take after a retry, for an operator choosing one to leave out. Read on the
 * inbox's pending index, `limit + 1` rows at most, however many are queued.
 *
 * A run that succeeded, was cancelled or timed out has none queued: nothing will ever take a signal it
 * left in its inbox (one that came after its last read, or that it never reached because it was ending), which
 * {@link signalOutcome} answers `ignored`. Listed, they were queued for ever.
 */
export async function queuedSignals(db: Queryable, runId: string, limit: number): Promise<{ signals: QueuedSignal[]; more: boolean }> {
  const rows = await db.query<{ id: number; type: unknown; sent_at: Date | string }>(
    `select id::float8 as id, event->'type' as type, created_at as sent_at
     from rmapp_run_inbox where run_id = $1 and consumed_at is null
       and not exists (select 1 from rmapp_runs r where r.id = $1 and ${READS_NO_MORE})
     order by id limit $2`,
    [runId, limit + 1],
  );
  return {
    more: rows.length > limit,
    signals: rows.slice(0, limit).map((r) => ({
      id: Number(r.id),
      type: typeof r.type === 'string' ? r.type : JSON.stringify(r.type),
      sentAt: r.sent_at instanceof Date ? r.sent_at : new Date(r.sent_at),
    })),
  };
}

/** A signal of the run by id, and whether it is still queued (null: no such signal). */
export async function inboxSignal(
  db: Queryable,
  runId: string,
  id: number,
): Promise<{ event: InboxEvent['event']; queued: boolean; outcome: string | null } | null> {
  const rows = await db.query<{ event: InboxEvent['event']; queued: boolean; outcome: string | null }>(
    'select event, consumed_at is null as queued, outcome from rmapp_run_inbox where run_id = $1 and id = $2',
    [runId, id],
  );
  return rows[0] ?? null;
}

/**
 * The signal still queued in run `runId`'s inbox under `dedupeKey`, if any: for `engine.retry`, the
 * cancellation a failed run never took (state_machine/run-retry.ts). A failed run takes no signal
 * (`appendSignal`), so what this reads stays so until the run is put back.
 */
export async function queuedByDedupeKey(
  db: Queryable,
  runId: string,
  dedupeKey: string,
): Promise<{ id: number; event: InboxEvent['event'] } | null> {
  const rows = await db.query<{ id: number; event: InboxEvent['event'] }>(
    'select id::float8 as id, event from rmapp_run_inbox where run_id = $1 and dedupe_key = $2 and consumed_at is null limit 1',
    [runId, dedupeKey],
  );
  return rows[0] ? { id: Number(rows[0].id), event: rows[0].event } : null;
}

/**
 * The signal a run already took under `dedupeKey`, if any (an ignored one freed its key), and whether it
 * is `event` (jsonb equality: the same keys and values, in any order). A key sent again with another
 * event is a client's mistake, not a retry: the caller tells it apart (HTTP answers 422, as Stripe does).
 */
export async function signalByDedupeKey(
  db: Queryable,
  runId: string,
  dedupeKey: string,
  event: object,
): Promise<{ id: number; sameEvent: boolean } | null> {
  const rows = await db.query<{ id: number; same: boolean }>(
    'select id, event = $3::jsonb as same from rmapp_run_inbox where run_id = $1 and dedupe_key = $2 limit 1',
    [runId, dedupeKey, JSON.stringify(event)],
  );
  return rows[0] ? { id: Number(rows[0].id), sameEvent: rows[0].same } : null;
}
