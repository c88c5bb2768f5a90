/**
 * Whether run changes are announced. Migration 0010's trigger notifies `rmapp_run_changed` on every
 * change of a run's row; since migration 0011 it does so only while someone watches, because a NOTIFY
 * on every commit doubled the commits Postgres does per run (each listening connection reads the queue
 * in a transaction of its own) and cost 15–30 % of throughput (figures in the migration). A watcher —
 * the dashboard's live stream — calls {@link watchRunChanges} before it listens and again at least
 * every {@link RUN_CHANGE_WATCH_MS}/2 while it has clients; announcements stop on their own
 * {@link RUN_CHANGE_WATCH_MS} after the last renewal, so a watcher that died costs nothing for long.
 * Nobody watching costs a commit nothing either: the triggers' condition reads the watch without
 * calling their function (migration 0016).
 */
import type { Queryable } from './database.ts';

/** How long one call keeps run changes announced. */
export const RUN_CHANGE_WATCH_MS = 60_000;

/**
 * Announces run changes for the next {@link RUN_CHANGE_WATCH_MS} (never shortens another watcher's
 * time). Changes committed after this returns are announced. The watch is a sequence holding the Unix
 * second it lasts until (migration 0016: the row triggers read it in their WHEN, with no function
 * call while nobody watches); a transaction-scoped advisory lock makes two renewals' read-and-set take
 * turns, as the row lock of the table it replaced did.
 */
export async function watchRunChanges(db: Queryable): Promise<void> {
  await db.query(
    `with turn as materialized (select pg_advisory_xact_lock($2::bigint))
     select setval('rmapp_run_change_watch_until', greatest(
       coalesce(pg_sequence_last_value('rmapp_run_change_watch_until'::regclass), 0),
       ceil(extract(epoch from now()) + $1::int / 1000.0)::bigint)) from turn`,
    [RUN_CHANGE_WATCH_MS, RUN_CHANGE_WATCH_LOCK_KEY],
  );
}

/** Advisory lock key of {@link watchRunChanges}; "rmappw" in ASCII. */
const RUN_CHANGE_WATCH_LOCK_KEY = 0x726d61707077;
