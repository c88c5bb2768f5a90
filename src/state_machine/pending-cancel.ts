/**
 * Cancelling a run no worker has taken yet, in place (`engine.cancel` on a `pending` run): one statement
 * ends the run and appends its `run.cancelled` history entry (persistence/run-admin.ts
 * `cancelPendingRun`), sent again while its outcome is unknown.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Queryable } from '../persistence/database.ts';
import { encodeHistory, type HistoryEntry } from '../persistence/history-codec.ts';
import { cancelPendingRun } from '../persistence/run-admin.ts';
import { dbFaultsArmed, withDbFault } from './db-faults.ts';
import { toErrorData, type ErrorData } from './errors.ts';

/** Sendings of the statement at most: the first and four more, 100 ms apart doubling (1.5 s of waits in all). */
export const PENDING_CANCEL_SENDINGS = 5;

/**
 * Cancels the pending, unleased run `run` at the version read, with `entries` (ending in `run.cancelled`)
 * in its history; false when a worker took it meanwhile or another cancellation was first.
 *
 * A statement whose answer was lost (a connection broken during COMMIT, a statement deadline, a
 * server restart: a transient error) was applied whole or not at all, and the caller cannot tell which.
 * It is sent again: a sending that finds this cancellation applied answers so (`landed`). The run's
 * history holds its entry once either way — written with the cancellation, never after it. Before, the
 * entry was a second statement after the cancellation's: a lost answer made `cancel` throw, the entry
 * was never written, and a cancel called again found the run finished, so its history did not say why
 * it ended. Past {@link PENDING_CANCEL_SENDINGS} the last error is thrown: the run may be cancelled,
 * with its entry, or not at all.
 */
export async function cancelPendingInPlace(
  db: Queryable,
  run: { id: string; version: number },
  error: ErrorData,
  entries: HistoryEntry[],
  /**
   * The history row's writer, unique to this call (the worker id and a random suffix, as a lease's
   * owner): what a resend recognises its own landed cancellation by. A worker id alone is shared by
   * every engine of one process by default, and another call's cancellation was taken for this one's.
   */
  worker: string,
  /** Told of each sending whose outcome is unknown, before it is sent again (a warning). */
  onUnknown: (err: unknown, sending: number) => void = () => {},
): Promise<boolean> {
  const statement = { id: run.id, version: run.version, error, history: encodeHistory(entries), worker };
  const send = () => cancelPendingRun(db, statement);
  for (let sending = 1; ; sending++) {
    try {
      return (dbFaultsArmed ? await withDbFault('cancel', send) : await send()) !== null;
    } catch (err) {
      if (sending >= PENDING_CANCEL_SENDINGS || toErrorData(err).category !== 'transient') throw err;
      onUnknown(err, sending);
      await sleep(100 * 2 ** (sending - 1));
    }
  }
}
