/**
 * The rows of `rmapp_runs` and `rmapp_history` as the store reads them, declared without Drizzle: the
 * engine's public declarations reach these types, and must not reach drizzle-orm's own declarations
 * (which do not type-check under an application's `skipLibCheck: false`). schema.ts checks at compile
 * time that they are exactly what the Drizzle tables infer, so the schema stays the one source.
 */
import type { RunStatus } from './run-status.ts';

/** A row of `rmapp_runs` (see the columns' comments in schema.ts). */
export interface RunRow {
  id: string;
  workflow: string;
  workflowVersion: string;
  status: RunStatus;
  statusMessage: string | null;
  snapshot: unknown;
  stateValue: unknown;
  input: unknown;
  output: unknown;
  error: unknown;
  timers: unknown;
  steps: unknown;
  signalSeq: number;
  historyRows: number;
  version: number;
  leaseOwner: string | null;
  leaseExpiresAt: Date | null;
  leaseEpoch: number;
  wakeAt: Date | null;
  deadlineAt: Date | null;
  parentRunId: string | null;
  traceContext: string | null;
  idempotencyKey: string | null;
  concurrencyKey: string | null;
  concurrencyLimit: number | null;
  admitted: boolean;
  createdAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
  /** Counts of finished executions moved out of `steps` (schema.ts); null until the first batch. */
  stepsDone: unknown;
}

/** A row of `rmapp_history`: one commit's events. */
export interface HistoryRow {
  runId: string;
  id: number;
  worker: string | null;
  leaseEpoch: number | null;
  at: Date;
  events: unknown;
  log: unknown;
}
