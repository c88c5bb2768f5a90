/**
 * The engine's clock, apart from the session host: the public declarations (engine options, the test
 * clock) reach it, and must not reach the host's imports, which lead to the Drizzle schema.
 */
import { LAST_STORABLE_MS } from '../persistence/last-instant.ts';

/**
 * Time, injectable so tests can drive timers and backoffs without waiting (see `rmapp/testing`). It
 * drives XState's delayed events (`after`), step backoffs and sleeps, attempt and run timeouts. It does
 * not drive the database: a run that left memory is woken when its stored wake-up time is past
 * Postgres's `now()`, so a clock set ahead of the database's never wakes such a run early
 * (docs/xstate-semantics.md, "Delays").
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

/**
 * The last instant rmapp stores as a wake-up time (persistence/last-instant.ts). A timer due later — a
 * delay of `Infinity` included — never fires, in memory as after a restore (docs/xstate-semantics.md).
 */
export const NEVER_DUE_MS = LAST_STORABLE_MS;

/** Whether a timer set `ms` from `now` is due after {@link NEVER_DUE_MS}: it never fires. */
export const dueNever = (now: number, ms: number): boolean => now + ms > NEVER_DUE_MS;

/** A timer of any length: armed in steps a Node timer can hold, re-armed until it is due. */
interface LongTimer {
  timer: NodeJS.Timeout | undefined;
  unrefed: boolean;
  /** Like a Node timer's: the timer (and every re-arming of it) does not keep the process alive. */
  unref(): LongTimer;
}

function setLongTimeout(fn: () => void, ms: number): LongTimer {
  const handle: LongTimer = {
    timer: undefined,
    unrefed: false,
    unref() {
      this.unrefed = true;
      this.timer?.unref();
      return this;
    },
  };
  const now = Date.now();
  if (dueNever(now, ms)) return handle;
  const due = now + ms;
  const arm = () => {
    const left = due - Date.now();
    handle.timer = left > MAX_TIMER_MS ? setTimeout(arm, MAX_TIMER_MS) : setTimeout(fn, Math.max(0, left));
    if (handle.unrefed) handle.timer.unref();
  };
  arm();
  return handle;
}

/**
 * The wall clock. Delays longer than a Node timer holds are kept (see {@link MAX_TIMER_MS}); one due
 * past {@link NEVER_DUE_MS} never fires. Its timers have `unref()`, as Node's do.
 */
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
