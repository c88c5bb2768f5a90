/**
 * The run statuses and the history event shape, apart from the Drizzle schema that stores them: the
 * public declaration files reach these, and must not reach drizzle-orm's own declarations (which do
 * not type-check under an application's `skipLibCheck: false`).
 */

/** Every status a run can have. `pending`: never claimed; `waiting`: evicted until a wake-up or a signal. */
export const RUN_STATUSES = ['pending', 'running', 'waiting', 'succeeded', 'failed', 'cancelled'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
/** Statuses a run never leaves on its own. */
export const FINAL_STATUSES = ['succeeded', 'failed', 'cancelled'] as const satisfies readonly RunStatus[];
export type FinalStatus = (typeof FINAL_STATUSES)[number];

/** True for a status a run never leaves on its own. */
export function isFinalStatus(status: string): status is FinalStatus {
  return (FINAL_STATUSES as readonly string[]).includes(status);
}

/** `{ succeeded: 0, failed: 0, cancelled: 0 }`: a count per final status, each present. */
export function countsByFinalStatus(): Record<FinalStatus, number> {
  return Object.fromEntries(FINAL_STATUSES.map((s) => [s, 0])) as Record<FinalStatus, number>;
}

/** One event of a run's history, as `engine.history()` returns it. */
export interface HistoryEvent {
  /** Position in the run's history, from 1. */
  seq: number;
  type: string;
  /** Child path ('' for the root). */
  path: string;
  state: unknown;
  step: string | null;
  attempt: number | null;
  data: unknown;
  worker: string | null;
  leaseEpoch: number | null;
  /** When the commit that recorded it happened. */
  at: Date;
}
