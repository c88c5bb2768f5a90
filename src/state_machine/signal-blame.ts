/**
 * Which signal made a run's state one that cannot be written (too large, a value JSON would change):
 * a payload copied into context is as much a poison event as one an action throws on, and
 * `engine.retry(id, { dropSignal: true })` can leave it out only if the run's error names it
 * (`error.signal`, run-retry.ts). A signal is named only when it is all that changed the run since
 * its state was last known writable; signals taken in one read of the inbox are told apart by checking
 * the state after each one that another follows — at most {@link MAX_CHECKS} times between two writes,
 * so that a read of thousands of signals into a growing context stays linear.
 */
import type { ErrorData } from './errors.ts';

/** Checks after a signal between two writes; past it, a refused state names none of them. */
export const MAX_CHECKS = 100;

/** A signal as a run's error names it. */
export type TakenSignal = { id: number; type: string };

export class SignalBlame {
  /** Something other than a signal changed the run's actors since its state was last known writable. */
  private changedOtherwise = true;
  private taken: TakenSignal[] = [];
  private checks = 0;

  /** A change of the run's actors not made while delivering a signal (a step's result, a timer). */
  otherChange(): void {
    this.changedOtherwise = true;
  }

  /** The state was found writable: by a write (`write`: the check budget starts again) or a check. */
  writable(write: boolean): void {
    this.changedOtherwise = false;
    this.taken = [];
    if (write) this.checks = 0;
  }

  /** A signal changed the run; true when the state should be checked now (`more`: another follows). */
  signalTaken(signal: TakenSignal, more: boolean): boolean {
    this.taken.push(signal);
    if (!more || this.changedOtherwise || this.checks >= MAX_CHECKS) return false;
    this.checks += 1;
    return true;
  }

  /** `error`, naming the signal it came from when one signal is all that changed the run. */
  blame(error: ErrorData): ErrorData {
    const [only] = this.taken;
    return !this.changedOtherwise && this.taken.length === 1 && only ? { ...error, signal: only } : error;
  }
}
