/**
 * Whether run changes are announced. Migration 0010's trigger notifies `rmapp_run_changed` on every
 * change of a run's row; since migration 0011 it does so only while someone watches, because a NOTIFY
 * on every commit doubled the commits Postgres does per run (each listening connection reads the queue
 * in a transaction of its own) and cost 15–30 % of throughput (figures in the migration). A watcher —
 * the dashboard's live stream — calls {@link watchRunChanges} before it listens and again at least
 * every {@link RUN_CHANGE_WATCH_MS}/2 while it has clients; announcements stop on their own
 * {@link RUN_CHANGE_WATCH_MS} after the last renewal, so a watcher that died costs nothing for long.
 */
import type { Queryable } from './database.ts';

/** How long one call keeps run changes announced. */
export const RUN_CHANGE_WATCH_MS = 60_000;

/**
 * Announces run changes for the next {@link RUN_CHANGE_WATCH_MS} (never shortens another watcher's
 * time). Changes committed after this returns are announced.
 */
export async function watchRunChanges(db: Queryable): Promise<void> {
  await db.query(
    `update rmapp_run_change_watch set until = greatest(until, now() + make_interval(secs => $1::int / 1000.0)) where id = 1`,
    [RUN_CHANGE_WATCH_MS],
  );
}
