/**
 * The run's deadline (`timeoutMs` at start, stored as `deadline_at`) as a timer of its session.
 *
 * Separate from run-session.ts because it is one self-contained concern: the clock keeps a deadline of
 * any length (clock.ts), the timer checks the clock when it fires and re-arms if it came early, and a
 * run evicted before it is re-armed when it is next claimed. What the session does when it fires (terminate the run
 * as failed with category `timeout`) stays with the session, behind its phase guard.
 */
import type { ErrorData } from './errors.ts';
import type { Clock } from './clock.ts';

/**
 * Fires `onExpired` once the clock reaches `deadlineAt`, while `stillApplies()` holds.
 *
 * @example
 * const deadline = new RunDeadline(host.clock, row.deadlineAt, () => !ending, () => void timeOut());
 * deadline.arm();
 * // … when the session ends:
 * deadline.clear();
 */
export class RunDeadline {
  private timer: unknown;

  constructor(
    private readonly clock: Clock,
    private readonly deadlineAt: Date | null,
    /** The run could still time out (it is not ending already). */
    private readonly stillApplies: () => boolean,
    private readonly onExpired: () => void,
  ) {}

  /** Arms the timer if the run has a deadline and it still applies. */
  arm(): void {
    const deadline = this.deadlineAt?.getTime();
    if (deadline === undefined || !this.stillApplies()) return;
    const ms = Math.max(0, deadline - this.clock.now());
    this.timer = this.clock.setTimeout(() => {
      if (this.clock.now() >= deadline) this.onExpired();
      else this.arm();
    }, ms);
    (this.timer as { unref?: () => void } | undefined)?.unref?.();
  }

  /** Stops the timer (the session ended). */
  clear(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
  }
}

/** The failure of a run whose deadline passed. */
export function runTimeoutError(deadlineAt: Date | null): ErrorData {
  const message = `The run exceeded its timeout (deadline ${deadlineAt?.toISOString()}).`;
  return { name: 'RunTimeoutError', message, code: 'RUN_TIMEOUT', category: 'timeout' };
}
