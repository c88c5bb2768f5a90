/**
 * The engine's clock, apart from the session host: the public declarations (engine options, the test
 * clock) reach it, and must not reach the host's imports, which lead to the Drizzle schema.
 */
/**
 * Time, injectable so tests can drive timers and backoffs without waiting (see `rmapp/testing`). It
 * drives XState's delayed events (`after`), step backoffs and sleeps, attempt and run timeouts.
 */
export interface Clock {
  now(): number;
  /** Resolves after `ms`, rejects with the signal's reason when it aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Calls `fn` after `ms`, whatever its length: a workflow's `after` may be months (a Node timer holds ~24.8 days). */
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * The longest delay Node's `setTimeout` takes (about 24.8 days). A longer one fires after 1 ms, with
 * only a TimeoutOverflowWarning: a workflow's `after` of a month, or a step's month-long `sleep`,
 * would end at once (plain XState's `after` does).
 */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A timer of any length: armed in steps a Node timer can hold, re-armed until it is due. */
interface LongTimer {
  timer: NodeJS.Timeout | undefined;
}

function setLongTimeout(fn: () => void, ms: number): LongTimer {
  const handle: LongTimer = { timer: undefined };
  if (!(ms > MAX_TIMER_MS)) {
    handle.timer = setTimeout(fn, ms);
    return handle;
  }
  const due = Date.now() + ms;
  const arm = () => {
    const left = due - Date.now();
    handle.timer = left > MAX_TIMER_MS ? setTimeout(arm, MAX_TIMER_MS) : setTimeout(fn, Math.max(0, left));
  };
  arm();
  return handle;
}

/** The wall clock. Delays longer than a Node timer holds are kept (see {@link MAX_TIMER_MS}). */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setLongTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout((handle as LongTimer | undefined)?.timer),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const timer = setLongTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(timer.timer);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};
