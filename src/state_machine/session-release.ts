/**
 * How a session hands its run over when the worker stops gracefully: what is pending is persisted and
 * the lease given back, so that another worker continues at once — unless a step function or the
 * definition's cleanup still runs past the grace, which keeps the lease until it returns or expires.
 */
import { WorkflowError } from './errors.ts';
import type { SessionHost } from './session-host.ts';

/** What a release reads and calls of its session (run-session.ts `release`). */
export interface ReleasingSession {
  readonly runId: string;
  readonly host: SessionHost;
  /** The session has stopped (asked again after every wait). */
  isEnded(): boolean;
  /** Step functions called and not yet returned (a live map). */
  readonly calls: ReadonlyMap<Promise<unknown>, unknown>;
  /** The definition's cleanup while it runs, else null. */
  cleanupCall(): Promise<unknown> | null;
  /** Resolves once everything changed so far is durable. */
  persisted(): Promise<void>;
  /** The run's version as this session last committed it. */
  currentVersion(): number;
  /** Aborts the signal of the definition's cleanup. */
  abortCleanup(reason: WorkflowError): void;
  end(wakeNow: boolean): void;
}

/**
 * Graceful hand-over: persist what is pending, then give the lease back. A step that finishes, or a
 * signal pulled, while the release is on its way commits first (the release then matches no row):
 * the release is sent again at the new version, so that the run is not left leased by a worker that
 * is gone until its lease expires.
 */
export async function releaseSession(s: ReleasingSession, waitForCallsMs = 0): Promise<void> {
  const cleanupCall = s.cleanupCall();
  if (cleanupCall) return releaseAfterCleanup(s, cleanupCall, waitForCallsMs);
  if (s.calls.size > 0) return releaseAfterCalls(s, waitForCallsMs);
  let tried: number | null = null;
  for (let attempt = 1; attempt <= 3; attempt++) {
    await s.persisted().catch(() => {});
    await s.host.committer.idle();
    if (s.isEnded()) return;
    const version = s.currentVersion();
    if (version === tried) {
      // Nothing committed here since: another worker holds it now; its lease is not ours to give.
      s.host.logger.warn(
        { runId: s.runId, version },
        `rmapp: run ${s.runId}: its lease was not given back (it is no longer at version ${version}); another worker resumes it when the lease expires`,
      );
      break;
    }
    tried = version;
    const released = await giveLeaseBack(s, version);
    if (released !== false) break;
  }
  s.end(false);
}

/**
 * The hand-over of a run whose step functions still run past the grace: what is pending is written,
 * the session ends (the steps' signals abort), and the lease is given back only once every function
 * has returned, within `waitMs`. A function that ignores its abort keeps the run leased until the lease
 * expires, as a crash would leave it: given back at once, another worker started the same step while
 * this process still ran it (an adversarial pass; test/stop-unreturned-step.test.ts).
 */
async function releaseAfterCalls(s: ReleasingSession, waitMs: number): Promise<void> {
  await s.persisted().catch(() => {});
  await s.host.committer.idle();
  if (s.isEnded()) return;
  const version = s.currentVersion();
  s.end(false);
  if (!(await settledWithin(s.calls, waitMs))) {
    const kept = await s.host.keepLease(s.runId, version).catch(() => false);
    s.host.logger.warn(
      { runId: s.runId, owner: s.host.owner, steps: s.calls.size },
      `rmapp: run ${s.runId}: ${s.calls.size} step function(s) still running ${Math.round(waitMs)} ms after the ` +
        'grace ended and their abort signal fired; the lease is kept ' +
        (kept
          ? '(its owner marked ":kept") '
          : '(marking it ":kept" failed: a worker started again under the same id takes it over at once) ') +
        'until it expires, so that no worker starts the step again before then. Make the step return when ctx.signal aborts.',
    );
    return;
  }
  await giveLeaseBack(s, version);
}

/**
 * The hand-over of a run whose definition's cleanup still runs past the grace (a cancellation or a
 * timeout this session applies): its signal aborts, the session ends unwritten (the cancellation stays
 * in the inbox: the next owner applies it and runs the cleanup again, whole), and the lease is given
 * back only once the cleanup has returned, within `waitMs`, else kept until it expires, as for a step
 * function ({@link releaseAfterCalls}). Given back at once, the next owner ran the cleanup beside this
 * process's, whose signal never aborted (test/a5-stop-during-cleanup.test.ts).
 */
async function releaseAfterCleanup(s: ReleasingSession, call: Promise<unknown>, waitMs: number): Promise<void> {
  const version = s.currentVersion();
  s.abortCleanup(
    new WorkflowError(`The worker is stopping; run ${s.runId}'s cleanup runs again on the next owner.`, {
      code: 'WORKER_STOPPING',
      category: 'cancelled',
    }),
  );
  s.end(false);
  if (!(await settledWithin(new Map([[call, null]]), waitMs))) {
    const kept = await s.host.keepLease(s.runId, version).catch(() => false);
    s.host.logger.warn(
      { runId: s.runId, owner: s.host.owner },
      `rmapp: run ${s.runId}: its definition's cleanup is still running ${Math.round(waitMs)} ms after the grace ended ` +
        'and its abort signal fired; the lease is kept ' +
        (kept ? '(its owner marked ":kept") ' : '(marking it ":kept" failed) ') +
        'until it expires, so that no worker runs the cleanup again before then. Make the cleanup return when its signal aborts.',
    );
    return;
  }
  await giveLeaseBack(s, version);
}

/**
 * Gives the lease back at `version`: true when released, false when the run is no longer at that
 * version, null when the release failed — nothing is lost (its changes are durable), but the run waits
 * for its lease to expire, which is logged.
 */
async function giveLeaseBack(s: ReleasingSession, version: number): Promise<boolean | null> {
  return s.host.releaseRun(s.runId, version).catch((err: unknown) => {
    s.host.logger.warn(
      { err, runId: s.runId },
      `rmapp: run ${s.runId}: its lease could not be given back (${(err as Error).message}); another worker resumes it when the lease expires`,
    );
    return null;
  });
}
/** True once every promise of `pending` (a live set) has settled, false when `ms` passes first. */
async function settledWithin(pending: ReadonlyMap<Promise<unknown>, unknown>, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (pending.size > 0) {
    const left = deadline - performance.now();
    if (left <= 0) return false;
    let timer: NodeJS.Timeout | undefined;
    const settled = await Promise.race([
      Promise.allSettled([...pending.keys()]).then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), left))),
    ]);
    clearTimeout(timer);
    if (!settled) return false;
  }
  return true;
}
