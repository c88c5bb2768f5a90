/**
 * Which signal made a run's state one that cannot be written (too large, a value JSON would change):
 * a payload copied into context is as much a poison event as one an action throws on, and
 * `engine.retry(id, { dropSignal: true })` can leave it out only if the run's error names it
 * (`error.signal`, run-retry.ts). A signal is named only when it is all that changed the run since
 * its state was last known writable. To keep that true, the state is checked before a signal when
 * something else changed it since (a step's result, a timer, a new run's first state), and after a
 * signal that another follows (in the same read, or a buffered one offered again after it) — within a
 * budget of {@link MAX_CHECK_BYTES} of snapshot JSON between two writes, so that a read of thousands of
 * signals, or a large context, costs a bounded few milliseconds (an adversarial pass: 100 checks of a
 * 12 MB context held the worker 8 s and tripped the loop guard). Past the budget no signal is named.
 */
import type { ErrorData } from './errors.ts';

/** Snapshot JSON checked between two writes (about 20–40 ms of CPU here); past it no signal is named. */
export const MAX_CHECK_BYTES = 4 * 1024 * 1024;

/** A signal as a run's error names it. */
export type TakenSignal = { id: number; type: string };

export class SignalBlame {
  /** Something other than a signal changed the run's actors since its state was last known writable. */
  private changedOtherwise = true;
  private taken: TakenSignal[] = [];
  private checkedBytes = 0;
  /** The size of the last snapshot seen: what the next check will cost, about. */
  private lastBytes = 0;

  /** A change of the run's actors not made while delivering a signal (a step's result, a timer). */
  otherChange(): void {
    this.changedOtherwise = true;
  }

  /**
   * The state was found writable, its JSON `bytes` long: by a write (`write`: the budget starts again)
   * or by a check (which spends it).
   */
  writable(write: boolean, bytes: number): void {
    this.changedOtherwise = false;
    this.taken = [];
    this.lastBytes = bytes;
    this.checkedBytes = write ? 0 : this.checkedBytes + bytes;
  }

  /** Before a signal is delivered: true when the state should be checked first. */
  checkBefore(): boolean {
    return this.changedOtherwise && this.affordable();
  }

  /** A signal changed the run; true when the state should be checked now (`more`: another follows). */
  signalTaken(signal: TakenSignal, more: boolean): boolean {
    this.taken.push(signal);
    return more && !this.changedOtherwise && this.affordable();
  }

  /** `error`, naming the signal it came from when one signal is all that changed the run. */
  blame(error: ErrorData): ErrorData {
    const [only] = this.taken;
    return !this.changedOtherwise && this.taken.length === 1 && only ? { ...error, signal: only } : error;
  }

  private affordable(): boolean {
    return this.checkedBytes + this.lastBytes <= MAX_CHECK_BYTES;
  }
}
