/**
 * Paths share one kit and one `TestClock`. A path that never moves the clock (steps, retries
 * with no delay, signals) can run beside others; one that fires an `after` delay moves time for every
 * run, so it runs alone.
 */

/** A shared/exclusive lock, granted in order (an exclusive request is not starved by later shared ones). */
export class ClockLock {
  private shared = 0;
  private exclusive = false;
  private readonly queue: { exclusive: boolean; grant: () => void }[] = [];

  /** Resolves, once granted, to the function that releases the lock. */
  acquire(exclusive: boolean): Promise<() => void> {
    return new Promise((resolve) => {
      this.queue.push({ exclusive, grant: () => resolve(() => this.release(exclusive)) });
      this.pump();
    });
  }

  private release(exclusive: boolean): void {
    if (exclusive) this.exclusive = false;
    else this.shared -= 1;
    this.pump();
  }

  private pump(): void {
    while (this.queue.length && !this.exclusive) {
      const head = this.queue[0] as { exclusive: boolean; grant: () => void };
      if (head.exclusive) {
        if (this.shared > 0) return;
        this.exclusive = true;
      } else this.shared += 1;
      this.queue.shift();
      head.grant();
    }
  }
}
