/**
 * The counting semaphore behind a worker's per-kind step limits (`createEngine({ stepConcurrency })`,
 * worker.ts `acquireStepSlot`): a wait for a slot ends when its signal aborts (a draining worker).
 */

/** A counting semaphore; waiters are served in order. */
export class Semaphore {
  private waiters: (() => void)[] = [];
  constructor(private free: number) {}
  async acquire(signal: AbortSignal): Promise<() => void> {
    if (this.free > 0) this.free -= 1;
    else {
      await new Promise<void>((resolve, reject) => {
        const grant = () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = () => {
          this.waiters = this.waiters.filter((w) => w !== grant);
          reject(signal.reason);
        };
        this.waiters.push(grant);
        signal.addEventListener('abort', onAbort, { once: true });
      });
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      if (next) next();
      else this.free += 1;
    };
  }
}
