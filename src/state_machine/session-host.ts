/** What a run session needs from the worker that owns it (kept small so tests can provide one). */
import type { Database } from '../persistence/database.ts';
import type { Committer } from './committer.ts';
import type { ErrorData } from './errors.ts';
import type { EngineEvents } from './events.ts';
import type { RetryPolicy } from './retry-policy.ts';
import type { Limits } from './limits.ts';
import type { Logger } from '../persistence/logger.ts';
import type { HistoryBound } from '../persistence/retention.ts';

export { systemClock, type Clock } from './clock.ts';
import type { Clock } from './clock.ts';

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
  /** Marks the run's lease kept past the stop for a step function still running (claims.ts, `keepLease`). */
  keepLease(runId: string, version: number): Promise<boolean>;
  sessionEnded(session: { runId: string; concurrencyKey?: string | null }, wakeNow: boolean): void;
  /** Sees every inspection event of every run's actors (e.g. a Stately Inspector); absent when nobody inspects. */
  readonly inspect?: ((event: import('xstate').InspectionEvent) => void) | undefined;
  /** Waits for the step kind's per-worker slot (if limited); resolves to the function that frees it. */
  acquireStepSlot(kind: string, signal: AbortSignal): Promise<() => void>;
}
