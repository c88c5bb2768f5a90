/**
 * A step path's persisted bookkeeping (`rmapp_runs.steps`): its attempt, completed executions, backoff
 * and sleep due times, the error kept, whether its last execution failed; how the records are stored
 * compactly; and the reset of an execution its machine stopped.
 *
 * Separate from step-execution.ts, which runs a step and changes its record as it goes: the session
 * and the engine's admin calls (`retry`, `getRun`) read and write records without running anything.
 */
import type { ErrorData } from './errors.ts';
import { childrenOf } from './run-info.ts';

/** Persisted per step path. */
export interface StepRecord {
  /** Attempt of the current execution (0 before the first). */
  attempt: number;
  /** Completed executions of this path: part of the idempotency key, so a loop gets fresh keys. */
  done: number;
  /** Epoch ms of the next attempt while backing off. */
  nextAttemptAt?: number | undefined;
  /** Due times of `ctx.sleep` calls of the current attempt, by call order. */
  sleeps?: number[] | undefined;
  /**
   * The current attempt is parked in a durable sleep: the run may leave memory (eviction, a handover)
   * and come back. Its work then starts again from the top, as the same attempt, and its earlier
   * sleeps return at once.
   */
  parked?: boolean | undefined;
  lastError?: ErrorData | undefined;
  /**
   * The last execution ended without success: it failed (the machine may handle it with onError) or
   * its machine stopped it by leaving the state. The next execution of the path is a new one and gets
   * a new key — unless `engine.retry` clears this to run the failed one again.
   */
  failed?: boolean | undefined;
}

/**
 * An object keyed by step path, without a prototype: a path is an invoke or spawn id, and one named
 * `constructor` or `toString` read the function every object inherits as its record (its key became
 * `<run>/constructor#NaN` at every execution), and `__proto__` was dropped on assignment.
 */
function pathRecord<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/**
 * How step records are stored in `rmapp_runs.steps`: a path with nothing in progress — no attempt
 * running, no backoff, no sleep, no error kept — is only its count of completed executions (`3`), the
 * others are the record. Every commit rewrites the whole row, so this is WAL: a 6-step run's column
 * went from 410 to 140 bytes at its end (bench/wal-breakdown.ts).
 */
export function encodeStepRecords(records: Record<string, StepRecord>): Record<string, StepRecord | number> {
  const out = pathRecord<StepRecord | number>();
  // `for…in`, not Object.entries: no array of pairs per write (the records have no prototype).
  for (const path in records) {
    const r = records[path] as StepRecord;
    // A copy: the write keeps what the record was when it was built (a write in doubt is sent again as
    // it was, and a failing run is written with its last good write's records), not what it became.
    const idle = finishedCount(r) !== null && !r.failed && r.lastError === undefined;
    out[path] = idle ? r.done : { ...r, sleeps: r.sleeps && [...r.sleeps] };
  }
  return out;
}

/**
 * The count of finished executions the record amounts to once its path is no longer in use, or null
 * while an execution is in progress at it (an attempt, a backoff, a sleep). An execution that failed or
 * that its machine stopped (`failed`) counts as one more, as the next execution's start would count it;
 * only `engine.retry` of the run's own failed step reads such a record further, and that step is still
 * in use when the run fails (step-book.ts).
 */
export function finishedCount(r: StepRecord): number | null {
  if (r.attempt !== 0 || r.nextAttemptAt !== undefined || r.sleeps !== undefined || r.parked) return null;
  return r.failed ? r.done + 1 : r.done;
}

/** Reads {@link encodeStepRecords}' form (and the full records older versions wrote) into records. */
export function decodeStepRecords(stored: unknown): Record<string, StepRecord> {
  const out = pathRecord<StepRecord>();
  for (const [path, r] of Object.entries((stored ?? {}) as Record<string, StepRecord | number>)) {
    out[path] = typeof r === 'number' ? { attempt: 0, done: r } : structuredClone(r);
  }
  return out;
}

/**
 * The step's machine stopped it (the state was left, e.g. on a signal) rather than the run leaving the
 * worker: that execution is over, so the next one at this path starts at attempt 1 with a new key.
 * Called by the session only in a phase that allows it; a run that is evicted, ends, pauses or stops
 * with its worker keeps its record as is.
 */
export function forgetStoppedExecution(record: StepRecord): void {
  if (record.attempt === 0 && record.nextAttemptAt === undefined) return;
  record.attempt = 0;
  record.nextAttemptAt = undefined;
  record.sleeps = undefined;
  record.parked = undefined;
  record.failed = true;
}

/**
 * The step records `engine.retry` resumes a failed run with. The executions the run's persisted snapshot
 * still holds — its active actors: the step whose failure failed the run, and any in flight with it —
 * run again under their own keys (attempt and failure cleared). Every other execution that failed or
 * that its machine stopped is over: it counts as finished, so a later execution at its path gets a new
 * key. Clearing `failed` on every record gave such a later execution the earlier one's key.
 */
export function retriedRecords(records: Record<string, StepRecord>, snapshot: unknown): Record<string, StepRecord> {
  const active = new Set(childrenOf(snapshot, '', true).map((c) => c.path));
  const out = pathRecord<StepRecord>();
  for (const [path, rec] of Object.entries(records)) {
    const over =
      !active.has(path) && rec.attempt === 0
        ? finishedCount({ ...rec, nextAttemptAt: undefined, sleeps: undefined, parked: undefined })
        : null;
    out[path] =
      over !== null ? { attempt: 0, done: over } : { ...rec, attempt: 0, nextAttemptAt: undefined, sleeps: undefined, failed: undefined };
  }
  return out;
}
