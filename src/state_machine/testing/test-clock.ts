/**
 * A clock that moves only when told: `advance(1h)` fires every `after` delay, backoff, sleep and
 * timeout due in that hour, in order, in milliseconds of real time.
 */
import { dueNever, type Clock } from '../clock.ts';

interface Timer {
  id: number;
  due: number;
  fn: () => void;
}

export class TestClock implements Clock {
  private current: number;
  private timers: Timer[] = [];
  private nextId = 1;

  /** @param start epoch ms the clock starts at (default: now). */
  constructor(start = Date.now()) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): number {
    const id = this.nextId++;
    // Due past the last storable instant (a delay of Infinity): never fires, as on the wall clock.
    // NaN fires at once, as Node's setTimeout does.
    const delay = Number.isNaN(ms) ? 0 : Math.max(0, ms);
    if (!dueNever(this.current, delay)) this.timers.push({ id, due: this.current + delay, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const id = this.setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        this.clearTimeout(id);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Moves time to the earliest pending timer and fires it (and any due with it); false if none. */
  async next(settle: () => Promise<void> = defaultSettle): Promise<boolean> {
    await settle();
    const first = [...this.timers].sort((a, b) => a.due - b.due)[0];
    if (!first) return false;
    await this.advance(Math.max(0, first.due - this.current), settle);
    return true;
  }

  /** Timers waiting on this clock. */
  get pending(): number {
    return this.timers.length;
  }

  /**
   * Moves time forward by `ms`, firing due timers in order. After each, `settle` lets the engine react
   * (persist, schedule the next timer) before time moves on.
   */
  async advance(ms: number, settle: () => Promise<void> = defaultSettle): Promise<void> {
    if (!(Number.isFinite(ms) && ms >= 0)) throw new RangeError(`TestClock.advance: ms must be a finite number ≥ 0 (got ${String(ms)}).`);
    const target = this.current + ms;
    await settle();
    for (;;) {
      const next = this.timers.filter((t) => t.due <= target).sort((a, b) => a.due - b.due || a.id - b.id)[0];
      if (!next) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.current = Math.max(this.current, next.due);
      next.fn();
      await settle();
    }
    this.current = target;
    await settle();
  }
}

async function defaultSettle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}
