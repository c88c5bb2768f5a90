/**
 * A run's step records as its session holds them, and which of them each write carries.
 *
 * Every path a run ever used keeps its count of completed executions: the count makes the next
 * execution's idempotency key new (step-execution.ts). A loop that runs a step per item under the item's
 * id therefore gains one path per item, and when every commit rewrote all of them (`rmapp_runs.steps`)
 * an iteration cost more the longer the loop ran: 1.6 ms at first, 16.7 ms after 10,000 items
 * (bench/README.md, "fourteenth session"). So a write carries in `steps` only the records that can
 * change — paths in use, paths with an attempt, backoff, sleep or error kept, and the finished ones not
 * moved yet — and, once enough finished paths that nothing uses have gathered, moves their counts to
 * `steps_done` (schema.ts), where the commit merges them in (migration 0020). An execution that failed
 * or that its machine stopped moves as one more finished (step-record.ts `finishedCount`). The step
 * whose failure fails the run is never moved: the machine's error follows the step's in the same turn,
 * before any write is built, and the run's last write moves nothing; `engine.retry` runs that step again
 * under its own key. A stored record in `steps` wins over a count in `steps_done`.
 */
import { decodeStepRecords, encodeStepRecords, finishedCount, type StepRecord } from './step-record.ts';

/**
 * How many movable paths gather before they are moved: at least 64, so that a run of a few steps never
 * writes `steps_done`, and the square root of the counts moved so far, so that the merges (each
 * rewrites the column) and the records carried by every commit in between grow alike (each ~√n).
 */
function moveThreshold(moved: number): number {
  return Math.max(64, Math.ceil(Math.sqrt(moved)));
}

/** What one write stores of the steps. */
export interface StepColumns {
  /** `rmapp_runs.steps`: the records, in encodeStepRecords' form. */
  steps: Record<string, StepRecord | number>;
  /** Counts to merge into `rmapp_runs.steps_done`, or null to leave it as it is. */
  stepsDone: Record<string, number> | null;
}

export class StepBook {
  /** The records every write carries. */
  private readonly live: Record<string, StepRecord>;
  /** Counts moved out of {@link live}: those stored in `steps_done`, and those {@link unsent} yet. */
  private readonly counts = new Map<string, number>();
  /** Counts moved and not durable yet: every write carries them until one of them is committed. */
  private readonly unsent = new Map<string, number>();
  /**
   * Executions under way per path, by their abort signals, with their actors (a record in use is never
   * moved: its execution writes to it). One whose signal has aborted was stopped and may still be finishing.
   */
  private readonly inUse = new Map<string, Map<AbortSignal, unknown>>();
  /** The newest execution of each path under way: the only one that may change the path's record. */
  private readonly newestOf = new Map<string, AbortSignal>();

  constructor(stored: { steps: unknown; stepsDone: unknown }) {
    this.live = decodeStepRecords(stored.steps);
    for (const [path, done] of Object.entries((stored.stepsDone ?? {}) as Record<string, unknown>)) {
      if (typeof done === 'number') this.counts.set(path, done);
    }
  }

  /** The record of `path`: the stored one, or a new one that goes on from the count kept for the path. */
  record(path: string): StepRecord {
    return (this.live[path] ??= { attempt: 0, done: this.counts.get(path) ?? 0 });
  }

  /**
   * True while an execution of `path` runs that nothing stopped and whose actor is still in its machine
   * (`live`): a second actor under the same id, which XState lets a machine spawn or invoke, would share
   * its record, its idempotency key and its place in the snapshot (which keeps one child per id). One
   * whose machine was replaced, and is about to be stopped, does not count.
   */
  running(path: string, live: (actor: unknown) => boolean): boolean {
    for (const [signal, actor] of this.inUse.get(path) ?? []) if (!signal.aborted && live(actor)) return true;
    return false;
  }

  /**
   * True while an execution of `path` that nothing stopped yet is no longer in its machine (`live` says
   * no): its machine was replaced while this step was finishing, and the new machine's step comes first.
   */
  replaced(path: string, live: (actor: unknown) => boolean): boolean {
    for (const [signal, actor] of this.inUse.get(path) ?? []) if (!signal.aborted && !live(actor)) return true;
    return false;
  }

  /** The newest execution of `path` under way (its signal), if any. */
  newest(path: string): AbortSignal | undefined {
    return this.newestOf.get(path);
  }

  /** An execution of `path` has begun; call the function returned once, when it is over (its promise settled). */
  use(path: string, signal: AbortSignal, actor: unknown): () => void {
    const executions = this.inUse.get(path) ?? new Map<AbortSignal, unknown>();
    this.inUse.set(path, executions.set(signal, actor));
    this.newestOf.set(path, signal);
    return () => {
      executions.delete(signal);
      if (executions.size === 0 && this.inUse.get(path) === executions) this.inUse.delete(path);
      if (this.newestOf.get(path) === signal) this.newestOf.delete(path);
    };
  }

  /**
   * The columns of the next write. With `mayMove` (the run's row exists, and the write is not its last),
   * enough finished paths that nothing uses are moved out of the records first.
   */
  forWrite(mayMove: boolean): StepColumns {
    if (mayMove) this.moveFinished();
    return { steps: encodeStepRecords(this.live), stepsDone: this.unsent.size > 0 ? Object.fromEntries(this.unsent) : null };
  }

  /** A write is durable: the counts it carried, unless moved again since, need no other write. */
  committed(stepsDone: Record<string, number> | null): void {
    if (!stepsDone) return;
    for (const [path, done] of Object.entries(stepsDone)) if (this.unsent.get(path) === done) this.unsent.delete(path);
  }

  /** Every count moved out of the records, as `steps_done` holds them once nothing is unsent; null if none. */
  movedCounts(): Record<string, number> | null {
    return this.counts.size > 0 ? Object.fromEntries(this.counts) : null;
  }

  private moveFinished(): void {
    const movable: [string, number][] = [];
    for (const path in this.live) {
      const done = this.inUse.has(path) ? null : finishedCount(this.live[path] as StepRecord);
      if (done !== null) movable.push([path, done]);
    }
    if (movable.length < moveThreshold(this.counts.size)) return;
    for (const [path, done] of movable) {
      delete this.live[path];
      if (done === (this.counts.get(path) ?? 0)) continue;
      this.counts.set(path, done);
      this.unsent.set(path, done);
    }
  }
}
