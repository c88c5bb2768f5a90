/** What a run session needs from the worker that owns it (kept small so tests can provide one). */
import type { Database } from '../persistence/database.ts';
import type { Committer } from './committer.ts';
import type { ErrorData } from './errors.ts';
import type { EngineEvents } from './events.ts';
import type { RetryPolicy } from './retry-policy.ts';
import type { Limits } from './limits.ts';
import type { Logger } from '../persistence/logger.ts';
import type { HistoryBound } from '../persistence/retention.ts';

/**
 * Time, injectable so tests can drive timers and backoffs without waiting (see `rmapp/testing`). It
 * drives XState's delayed events (`after`), step backoffs and sleeps, attempt and run timeouts.
 */
export interface Clock {
  now(): number;
  /** Resolves after `ms`, rejects with the signal's reason when it aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The wall clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

export interface SessionHost {
  readonly db: Database;
  /** Lease owner id of this worker process (unique per process). */
  readonly owner: string;
  readonly leaseMs: number;
  /** The session's lease is certainly held, with the safety margin (see worker.ts). */
  leaseTrusted(session: { leaseValidUntil: number }): boolean;
  /**
   * Confirms the session's lease with a renewal of its own when its trusted window ran out; false
   * (and the session stops) when the run is no longer held. Waits while the database is unreachable.
   */
  confirmLease(session: {
    readonly runId: string;
    readonly epoch: number;
    readonly ended: boolean;
    leaseValidUntil: number;
    lose(reason: 'renewal'): void;
  }): Promise<boolean>;
  /** A run that only waits longer than this is written out and dropped from memory. */
  readonly evictAfterMs: number;
  readonly events: EngineEvents;
  readonly committer: Committer;
  readonly clock: Clock;
  readonly limits: Limits;
  /** Bound on a run's history rows (see `createEngine({ history })`). */
  readonly history: HistoryBound;
  /** Where a session reports what no caller is waiting for (a lost lease, a failed compaction). */
  readonly logger: Logger;
  /** True once the worker is shutting down: no new step starts. */
  readonly stopping: boolean;
  retryPolicy(kind: string, override?: Partial<RetryPolicy>): RetryPolicy;
  toError(err: unknown): ErrorData;
  releaseRun(runId: string, version: number): Promise<boolean>;
  sessionEnded(session: { runId: string; concurrencyKey?: string | null }, wakeNow: boolean): void;
  /** Sees every inspection event of every run's actors (e.g. a Stately Inspector); absent when nobody inspects. */
  readonly inspect?: ((event: import('xstate').InspectionEvent) => void) | undefined;
  /** Waits for the step kind's per-worker slot (if limited); resolves to the function that frees it. */
  acquireStepSlot(kind: string, signal: AbortSignal): Promise<() => void>;
}
