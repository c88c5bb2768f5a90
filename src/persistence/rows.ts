/** Maps raw rows (snake_case, from hand-written SQL) to the schema's typed shapes (`$inferSelect`). */
import type { HistoryRow, RunRow } from './row-types.ts';
import type { RunStatus } from './run-status.ts';
import { decodeSnapshot } from './snapshot-codec.ts';

/** Columns in the order {@link toRunRow} expects; use as `select ${RUN_COLUMNS} from rmapp_runs`. */
export const RUN_COLUMNS = `id, workflow, workflow_version, status, status_message, snapshot, state_value, input, output, error,
  timers, steps, signal_seq, history_rows, version, lease_owner, lease_expires_at, lease_epoch, wake_at, deadline_at, parent_run_id, trace_context, idempotency_key, concurrency_key, concurrency_limit, admitted,
  created_at, updated_at, finished_at, steps_done`;

const date = (v: unknown): Date | null => (v == null ? null : v instanceof Date ? v : new Date(String(v)));

/** Converts one raw row. */
export function toRunRow(r: Record<string, unknown>): RunRow {
  return {
    id: r.id as string,
    workflow: r.workflow as string,
    workflowVersion: r.workflow_version as string,
    status: r.status as RunStatus,
    statusMessage: (r.status_message as string | null) ?? null,
    snapshot: decodeSnapshot(r.snapshot ?? null),
    stateValue: r.state_value ?? null,
    input: r.input ?? null,
    output: r.output ?? null,
    error: r.error ?? null,
    timers: r.timers ?? [],
    steps: r.steps ?? {},
    signalSeq: Number(r.signal_seq ?? 0),
    historyRows: Number(r.history_rows ?? 0),
    version: Number(r.version),
    leaseOwner: (r.lease_owner as string | null) ?? null,
    leaseExpiresAt: date(r.lease_expires_at),
    leaseEpoch: Number(r.lease_epoch),
    wakeAt: date(r.wake_at),
    deadlineAt: date(r.deadline_at),
    parentRunId: (r.parent_run_id as string | null) ?? null,
    traceContext: (r.trace_context as string | null) ?? null,
    idempotencyKey: (r.idempotency_key as string | null) ?? null,
    concurrencyKey: (r.concurrency_key as string | null) ?? null,
    concurrencyLimit: r.concurrency_limit == null ? null : Number(r.concurrency_limit),
    admitted: Boolean(r.admitted),
    createdAt: date(r.created_at) as Date,
    updatedAt: date(r.updated_at) as Date,
    finishedAt: date(r.finished_at),
    stepsDone: r.steps_done ?? null,
  };
}

/** Columns in the order {@link toHistoryRow} expects; use as `select ${HISTORY_COLUMNS} from rmapp_run_history`. */
export const HISTORY_COLUMNS = 'run_id, id, worker, lease_epoch, at, events, log';

/** Converts one raw `rmapp_run_history` row. */
export function toHistoryRow(r: Record<string, unknown>): HistoryRow {
  return {
    runId: r.run_id as string,
    id: Number(r.id),
    worker: (r.worker as string | null) ?? null,
    leaseEpoch: r.lease_epoch == null ? null : Number(r.lease_epoch),
    at: date(r.at) as Date,
    events: r.events ?? null,
    log: r.log ?? null,
  };
}
