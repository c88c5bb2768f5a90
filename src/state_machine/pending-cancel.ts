/**
 * Cancelling a run no worker has taken yet, in place (`engine.cancel` on a `pending` run): one statement
 * ends the run and appends its `run.cancelled` history entry (persistence/run-admin.ts
 * `cancelPendingRun`), sent again while its outcome is unknown; then the definition's cleanup of a run
 * that ran before (a retried run queued for a slot of its concurrency key), owed until it ran.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Database, Queryable } from '../persistence/database.ts';
import { encodeHistory, type HistoryEntry } from '../persistence/history-codec.ts';
import { appendHistory } from '../persistence/runs.ts';
import { cancelPendingRun, clearOwedCleanup, releaseOwedCleanup, renewOwedCleanup, takeOwedCleanup } from '../persistence/run-admin.ts';
import type { Logger } from '../persistence/logger.ts';
import { runningCleanups, type RunningCleanup } from '../persistence/running-cleanups.ts';
import type { WorkflowDefinition } from './definition.ts';
import { dbFaultsArmed, withDbFault } from './db-faults.ts';
import { DEFAULT_ENGINE_OPTIONS } from './engine-options.ts';
import { toErrorData, WorkflowError, type ErrorData } from './errors.ts';
import { checkedOnRead } from './read-checked-signal.ts';

/**
 * Keeps the leases of the owed cleanups still running when an embedded store is closed (its own close
 * does: persistence/running-cleanups.ts).
 */
export { keepRunningCleanups } from '../persistence/running-cleanups.ts';

/**
 * How long a cancellation whose outcome is unknown is sent again before the call gives up with
 * {@link CANCEL_OUTCOME_UNKNOWN}: a restart of Postgres or a failover is over well within it. Five
 * sendings 1.5 s apart at most were the bound before, shorter than such an outage.
 */
const PENDING_CANCEL_PATIENCE_MS = 15_000;

/** The code of the error a cancellation gives up with when none of its sendings was answered. */
export const CANCEL_OUTCOME_UNKNOWN = 'CANCEL_OUTCOME_UNKNOWN';

/**
 * Cancels the pending, unleased run `run` at the version read, with `entries` (ending in `run.cancelled`)
 * in its history; false when a worker took it meanwhile or another cancellation was first.
 *
 * A statement whose answer was lost (a connection broken during COMMIT, a statement deadline, a
 * server restart: a transient error) was applied whole or not at all, and the caller cannot tell which.
 * It is sent again, 100 ms apart doubling to 2 s, for up to `patienceMs`: a sending that finds this
 * cancellation applied answers so (`landed`). The run's history holds its entry once either way —
 * written with the cancellation, never after it. Past the patience it throws a transient (retryable)
 * {@link WorkflowError} `CANCEL_OUTCOME_UNKNOWN`: the run may be cancelled, with its entry, or not at
 * all, and a cancel called again finishes the work either way — it cancels the run, or finds it
 * cancelled and runs the cleanup still owed ({@link runOwedCleanup}). Five sendings used to be the
 * bound, and their error was thrown as it came; a queued retried run cancelled then never had its
 * cleanup run: the call that owed it threw, and the next one found the run finished.
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
  options: {
    /** The definition's cleanup is owed once the run is cancelled: marked in the same statement. */
    cleanupOwed?: boolean;
    patienceMs?: number;
  } = {},
): Promise<boolean> {
  const statement = {
    id: run.id,
    version: run.version,
    error,
    history: encodeHistory(entries),
    worker,
    cleanupOwed: options.cleanupOwed === true,
  };
  const send = () => cancelPendingRun(db, statement);
  const patienceMs = options.patienceMs ?? PENDING_CANCEL_PATIENCE_MS;
  const startedAt = performance.now();
  for (let sending = 1; ; sending++) {
    try {
      return (dbFaultsArmed ? await withDbFault('cancel', send) : await send()) !== null;
    } catch (err) {
      if (toErrorData(err).category !== 'transient') throw err;
      const waitMs = Math.min(2_000, 100 * 2 ** Math.min(sending - 1, 5));
      if (performance.now() - startedAt + waitMs > patienceMs) {
        throw new WorkflowError(
          `The cancellation of run ${run.id} was sent ${sending} times and no answer came (the database unreachable, or its ` +
            `answers lost): the run may be cancelled or not. Cancel it again — a cancellation already applied is recognised, ` +
            `and a cleanup still owed runs then (a worker that registers the run's version also runs it within a lease).`,
          { code: CANCEL_OUTCOME_UNKNOWN, category: 'transient', details: { runId: run.id, sendings: sending }, cause: err },
        );
      }
      onUnknown(err, sending);
      await sleep(waitMs);
    }
  }
}

/** Who runs an owed cleanup: its history entries' writer, where it logs, and its lease's length and owner. */
export interface CleanupRunner {
  worker: string;
  logger: Logger;
  leaseMs?: number | undefined;
  /**
   * The lease owner of the worker running it (worker.ts), which its cleanup lease is named after
   * (`<owner>:cleanup:<8 hex>`): a worker started again under its id takes back at once the cleanup
   * leases of an earlier incarnation proven gone, as it takes back its runs (previous-incarnations.ts).
   * Without it, the cleanup's lease is named after `worker`.
   */
  leaseOwner?: string | undefined;
}

/**
 * Runs the cleanup of `definition` for run `runId`, cancelled in place, and then clears the mark that
 * it is owed (persistence/run-admin.ts `CLEANUP_OWED`): by the call that cancelled it, or by a later
 * cancel that found the mark (the first one never learnt its outcome, or died before its cleanup). A
 * cleanup that throws is recorded as `cleanup.failed` and counts as run. The mark is cleared only
 * after, so a cleanup is run at least once — again if the process dies between the two, as a
 * worker's is after a crash; a failure to clear it is logged, and the next cancel runs it again.
 * False when it did not run it: another execution's lease on it is live (run-admin.ts `takeOwedCleanup`),
 * the mark is gone, or the take was answered only once the lease it took may have expired (not started
 * then: another execution may run it already) or late and not renewed in time before the start — or
 * when it lost its lease while the cleanup ran: the cleanup's `signal` (definition.ts `CleanupContext`) aborted, its renewals stopped then, and the mark
 * is left for the next holder of the lease; once the cleanup returned, its lease is let go if it still
 * holds it (run-admin.ts `releaseOwedCleanup`), so that the next holder need not wait out the rest of it. A
 * cleanup that returned without reading its signal again after its lease passed to another execution
 * (its process paused past it) leaves the mark too: it is cleared only under this execution's lease
 * (run-admin.ts `clearOwedCleanup`), and the holder clears it once its own run of the cleanup ended.
 */
export async function runOwedCleanup(
  db: Queryable,
  target: { runId: string; reason: string; context: unknown; definition: WorkflowDefinition },
  history: CleanupRunner,
): Promise<boolean> {
  const { runId, reason, context, definition } = target;
  // Leased on the run for as long as it runs (renewed every third of the lease): the caller's lock goes
  // with its connection, which can be lost while this process lives and runs the cleanup on.
  const owner = `${history.leaseOwner ?? history.worker}:cleanup:${randomUUID().slice(0, 8)}`;
  const leaseMs = history.leaseMs ?? DEFAULT_CLEANUP_LEASE_MS;
  const takenAt = performance.now();
  // Known to this process from before its take is sent: an engine closing its embedded store meanwhile
  // (keepRunningCleanups) marks it, and it does not run. Added only once the take landed, a take on its
  // way when the store's leases were kept landed unkept after the keep, the cleanup ran on after the
  // close, and the next process to open the store took its lease over at once and ran it beside this one
  // (test/a1-kept-lease-take-in-flight.test.ts).
  const running: RunningCleanup = { runId, owner, store: (db as Partial<Database>).description, kept: false };
  runningCleanups.add(running);
  try {
    if (!(await takeOwedCleanup(db, runId, owner, leaseMs, (db as Partial<Database>).soleHolder === true))) {
      runningCleanups.delete(running);
      return false;
    }
  } catch (err) {
    runningCleanups.delete(running);
    history.logger.warn({ err, runId }, `rmapp: the owed cleanup of cancelled run ${runId} could not be leased; it stays owed`);
    return false;
  }
  const every = Math.max(50, Math.floor(leaseMs / 3));
  const leaveOwed = async (message: string): Promise<false> => {
    runningCleanups.delete(running);
    history.logger.warn({ runId, owner }, message);
    await releaseOwedCleanup(db, runId, owner).catch(() => {});
    return false;
  };
  // Its take answered only once the lease it took may have expired (the answer, or this process, late by
  // most of a lease): another execution may hold the lease and run the cleanup already. Run here, it ran
  // beside that one, whose lease was valid (test/h1-owed-take-answered-late.test.ts). Left owed, its lease
  // let go if it is still this execution's: the next holder runs it.
  if (performance.now() >= takenAt + leaseMs - leaseMs / 5)
    return leaveOwed(
      `rmapp: the lease of run ${runId}'s owed cleanup was taken, but its answer came only once the lease may have expired; the cleanup stays owed`,
    );
  // A take answered after a renewal's interval (a slow pool, a busy process) is renewed before the cleanup
  // starts, and the cleanup trusts the renewal's window. Started at once, with a renewal sent then, it ran
  // on what was left of the take's window — less than a loaded database's round trip — and was aborted
  // while that renewal was on its way, then run again (test/a3-session-cleanup-fence.test.ts in CI); with
  // its first renewal a third of the lease after the answer, past the fence (test/owed-cleanup-renewal-window.test.ts).
  let trustFrom = takenAt;
  if (performance.now() - takenAt >= every) {
    const sentAt = performance.now();
    const held = await renewOwedCleanup(db, runId, owner, leaseMs).catch(() => false);
    if (!held || performance.now() >= sentAt + leaseMs - leaseMs / 5)
      return leaveOwed(
        `rmapp: the lease of run ${runId}'s owed cleanup was taken late, and could not be renewed in time before the cleanup started; it stays owed`,
      );
    trustFrom = sentAt;
  }
  // Its store is being closed: the keep may have been applied before the take, which left the lease
  // unkept. Not run here, the cleanup stays owed for the store's next process.
  if (running.kept) return leaveOwed(`rmapp: the store was closed while the owed cleanup of run ${runId} was leased; it stays owed`);
  // Aborted once another execution may run it: a renewal found the lease gone, or none held it for
  // long enough that it may expire (a fifth of the lease before, by this process's clock, as a worker
  // self-fences its steps: worker.ts). Measured from before the take (or the renewal before the start) was
  // sent, as each renewal is.
  const lost = new AbortController();
  let fence: NodeJS.Timeout | undefined;
  let renewal: NodeJS.Timeout | undefined;
  let trustedUntil = 0;
  let isLost = false;
  // Never moved back: renewals are not serialised, and one answered late, after a later one, set it to
  // its own older send time, already past (test/a5-owed-cleanup-late-renewal.test.ts). The database never
  // moves the expiry back either (run-admin.ts `renewOwedCleanup`), as the worker's runs (lease-renewals.ts `renew`).
  const trustUntil = (sentAt: number) => {
    const until = sentAt + leaseMs - leaseMs / 5;
    if (until <= trustedUntil) return;
    trustedUntil = until;
    clearTimeout(fence);
    fence = setTimeout(() => lostLease('expired unrenewed'), Math.max(0, trustedUntil - performance.now()));
    fence.unref();
  };
  const lostLease = (why: string) => {
    if (isLost) return;
    isLost = true;
    clearTimeout(fence);
    // Renewed on, the lease stayed this execution's until the cleanup returned — held for nothing, as
    // the cleanup was told to stop — and the next execution waited out a lease after that.
    clearInterval(renewal);
    lost.abort(
      new WorkflowError(`The lease of run ${runId}'s cleanup was lost (${why}).`, { code: 'CLEANUP_LEASE_LOST', category: 'cancelled' }),
    );
  };
  trustUntil(trustFrom);
  // A process paused past the lease (a stop, a suspended machine, a blocked event loop) wakes with the
  // cleanup's own timers due before the fence's: read then, the signal looks at the clock itself, as a
  // step's start does (run-session.ts `ownsRun`). Without it the cleanup took its next step beside the
  // next holder's, its signal still unaborted (test/a3-stopped-cleanup-signal.test.ts).
  const signal = checkedOnRead(lost.signal, () => {
    if (performance.now() >= trustedUntil) lostLease('expired unrenewed');
  });
  const renew = () => {
    const sentAt = performance.now();
    void renewOwedCleanup(db, runId, owner, leaseMs).then(
      (held) => {
        if (!held) lostLease('another execution holds it');
        else if (!isLost) trustUntil(sentAt);
      },
      () => {},
    );
  };
  // Every third of the lease from the send the window is trusted from, not from now: counted from the
  // take's answer, the first renewal came as late as 2/3 of the lease after its send, and had what was left
  // to the fence at 4/5 — under a loaded database's round trip — for its answer.
  renewal = setTimeout(
    () => {
      renew();
      renewal = setInterval(renew, every);
      renewal.unref();
    },
    Math.max(0, trustFrom + every - performance.now()),
  );
  // A cleanup that never returns (its process stopped, the store closed) must not keep the process alive.
  renewal.unref();
  // What counts is whether the lease was lost while the cleanup ran: its fence and renewals stop once it
  // settled, before the failure of one that threw is recorded. Armed while that record was written (a
  // round trip, slow under load), the fence aborted a cleanup that had ended within its lease, and it was
  // run again (test/h1-owed-failure-recorded-late.test.ts). Its mark is cleared only under its lease
  // (below): an execution that took the lease meanwhile runs it again, as for one that returned.
  let failure: { err: unknown } | undefined;
  let lostWhileRunning: boolean;
  try {
    await definition.cleanup?.({ runId, reason, context, signal });
  } catch (err) {
    failure = { err };
  } finally {
    clearInterval(renewal);
    clearTimeout(fence);
    runningCleanups.delete(running);
    lostWhileRunning = isLost;
  }
  // Said in the log when it cannot be recorded (the database gone meanwhile): the cleanup ran all the
  // same, and a throw here rejected a cancel that had landed and left its lease to expire.
  if (failure && !lostWhileRunning) {
    const cleanupError = toErrorData(failure.err);
    await appendHistory(db, runId, [{ type: 'cleanup.failed', data: { error: cleanupError } }], history.worker).catch((writeErr: unknown) =>
      history.logger.warn(
        { err: writeErr, cleanupError, runId },
        `rmapp: the cleanup of cancelled run ${runId} failed, and its failure could not be recorded in the run's history`,
      ),
    );
  }
  // Its lease lost, it stays owed: the execution that holds (or takes) the lease runs it again and clears it.
  if (lostWhileRunning) {
    history.logger.warn(
      { runId, owner },
      `rmapp: the cleanup of cancelled run ${runId} lost its lease while it ran (its signal aborted); it stays owed and runs again`,
    );
    // Unrenewed rather than taken, the lease may still be this execution's: let go, the next one takes it at once.
    await releaseOwedCleanup(db, runId, owner).catch((err: unknown) =>
      history.logger.warn({ err, runId }, `rmapp: the lease of run ${runId}'s aborted cleanup could not be let go; it expires`),
    );
    return false;
  }
  try {
    if (!(await clearOwedCleanup(db, runId, owner)))
      history.logger.warn(
        { runId, owner },
        `rmapp: the cleanup of cancelled run ${runId} ran, but its lease had passed to another execution meanwhile (this ` +
          `process paused past it, its signal not read again): the mark stays, for that execution to clear once its cleanup ran`,
      );
  } catch (err) {
    history.logger.warn(
      { err, runId },
      `rmapp: the cleanup of cancelled run ${runId} ran, but its mark could not be cleared; a cancel called again runs it again`,
    );
  }
  return true;
}

/** The lease of an owed cleanup run by a caller that gives none: the engine's default lease. */
const DEFAULT_CLEANUP_LEASE_MS = DEFAULT_ENGINE_OPTIONS.leaseMs;

/**
 * The runs whose cleanup a call of this process holds on a store without session locks (PGlite), in
 * the process's global symbol registry: every copy of the package loaded in the process shares it, as
 * worker.ts shares its lease owners. Run ids are unique across stores, so one set serves them all.
 */
const localCleanupHolds: Set<string> = ((globalThis as Record<symbol, unknown>)[Symbol.for('rmapp.cleanupHolds')] ??=
  new Set<string>()) as Set<string>;

/**
 * Holds the right to run run `runId`'s owed cleanup, for one call: a session lock on the store's LISTEN
 * connection (listener.ts `Listener.holdLock`), taken before the cancellation that marks the cleanup owed and
 * held until the cleanup ran, so that a cancel made meanwhile — which finds the mark, cleared only after
 * the cleanup — does not run it a second time at the same time (two cancels close together: a double
 * click, `@rmapp cancel` written twice; test/h9-owed-cleanup-twice.test.ts). A caller that dies lets go
 * with its connection, and the next cancel — or a worker's sweep (owed-cleanups.ts) — runs what it
 * owed. `held` false: another call or a worker is running it. On PGlite (one process) it is held in
 * this process's memory, where a worker's sweep and a cancel made through the same engine meet.
 */
export async function holdCleanup(db: Database, runId: string): Promise<{ held: boolean; release(): Promise<void> }> {
  if (db.holdLock) return db.holdLock(`rmapp.cleanup:${runId}`, () => {});
  if (localCleanupHolds.has(runId)) return { held: false, release: async () => {} };
  localCleanupHolds.add(runId);
  let released = false;
  return {
    held: true,
    release: async () => {
      if (released) return;
      released = true;
      localCleanupHolds.delete(runId);
    },
  };
}
