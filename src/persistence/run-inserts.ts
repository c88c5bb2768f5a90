/**
 * Several locally started runs inserted in one statement: the insert-side twin of the group commit
 * (commits.ts). Each run is inserted already claimed and past its first macrostep, exactly as
 * {@link insertRun} writes one with `claimFor`; the rows, the history rows and what is returned are the
 * same. One statement is one transaction: if any run of the batch is refused (its id or idempotency key
 * exists, or its data), nothing of the batch is written and the caller inserts each run alone, so each
 * gets its own answer (insert-batcher.ts in state_machine).
 */
import type { Queryable } from './database.ts';
import { encodeHistory } from './history-codec.ts';
import { isFinalStatus } from './run-status.ts';
import type { InsertedClaimed, NewRun, StartedRun } from './runs.ts';

/** A run for {@link insertClaimedRuns}: a {@link NewRun} with its first macrostep. */
export type ClaimedNewRun = NewRun & { claimFor: StartedRun };

const date = (v: unknown): Date => (v instanceof Date ? v : new Date(String(v)));

/**
 * Inserts `runs` (two or more) in one statement, in id order. Resolves to each run's
 * {@link InsertedClaimed}, in the order given — null for a run not inserted because the parent it names
 * is not there (deleted by a prune: its parent is locked by the insert, as runs.ts `insertRun` locks
 * it); rejects with the driver's error when the statement fails (a unique violation, `23505`, when an
 * id or idempotency key exists), having written nothing.
 */
export async function insertClaimedRuns(db: Queryable, runs: readonly ClaimedNewRun[]): Promise<(InsertedClaimed | null)[]> {
  const payload = runs.map((run) => {
    const c = run.claimFor;
    const final = isFinalStatus(c.status);
    return {
      id: run.id,
      workflow: run.workflow,
      workflow_version: run.workflowVersion,
      input: run.input ?? null,
      idempotency_key: run.idempotencyKey ?? null,
      parent_run_id: run.parentRunId ?? null,
      deadline_at: c.deadlineAt?.toISOString() ?? null,
      owner: c.owner,
      lease_ms: c.leaseMs,
      trace_context: run.traceContext ?? null,
      status: c.status,
      // Text inside the payload, cast where it is stored: the snapshot as the session serialized it.
      snapshot: c.snapshotJson,
      state_value: c.stateValue ?? null,
      output: c.output ?? null,
      error: c.error ?? null,
      timers: c.timers,
      steps: c.steps,
      history: encodeHistory(c.history),
      release: c.release,
      wake_at: final ? null : (c.wakeAt?.toISOString() ?? null),
      final,
    };
  });
  // The same row as the single insert (runs.ts `insertRun` with `claimFor`). jsonb_to_recordset reads
  // a JSON null as SQL null: the output and error stay so, as there; the input and state value are
  // stored as the JSON null the single insert writes. Ordered by id so concurrent batches take their index entries' locks in
  // one order.
  const rows = await db.query<{ id: string; version: number; history_rows: number; created_at: unknown; updated_at: unknown }>(
    `with w as (
       select * from jsonb_to_recordset($1::jsonb) as w(
         id text, workflow text, workflow_version text, input jsonb, idempotency_key text, parent_run_id text,
         deadline_at timestamptz, owner text, lease_ms float8, trace_context text, status text, snapshot text,
         state_value jsonb, output jsonb, error jsonb, timers jsonb, steps jsonb, history text, release boolean,
         wake_at timestamptz, final boolean)),
     parents as materialized (
       select id from rmapp_runs where id in (select parent_run_id from w) order by id for key share),
     ins as (
       insert into rmapp_runs (id, workflow, workflow_version, status, input, idempotency_key, parent_run_id, deadline_at,
         lease_owner, lease_expires_at, wake_at, lease_epoch, version, trace_context,
         snapshot, state_value, output, error, timers, steps, history_rows, finished_at)
       select w.id, w.workflow, w.workflow_version, w.status, coalesce(w.input, 'null'::jsonb), w.idempotency_key, w.parent_run_id, w.deadline_at,
         case when w.release then null else w.owner end,
         case when w.release then null else now() + make_interval(secs => w.lease_ms / 1000) end,
         case when w.release then w.wake_at else now() + make_interval(secs => w.lease_ms / 1000) end,
         1, 1, w.trace_context, w.snapshot::jsonb, coalesce(w.state_value, 'null'::jsonb), w.output, w.error,
         w.timers, w.steps, (json_array_length(w.history::json) > 0)::int, case when w.final then now() end
       from w where w.parent_run_id is null or w.parent_run_id in (select id from parents) order by w.id
       returning id, version, history_rows, created_at, updated_at),
     h as (
       insert into rmapp_run_history (run_id, worker, lease_epoch, log)
       select w.id, w.owner, 1, w.history::json from w join ins on ins.id = w.id where json_array_length(w.history::json) > 0)
     select * from ins`,
    [JSON.stringify(payload)],
  );
  const byId = new Map(rows.map((r) => [r.id, r]));
  return runs.map((run) => {
    const r = byId.get(run.id);
    if (!r && run.parentRunId != null) return null;
    if (!r) throw new Error(`Run ${run.id} was not inserted by its batch; start it again.`);
    return {
      version: Number(r.version),
      historyRows: Number(r.history_rows),
      createdAt: date(r.created_at),
      updatedAt: date(r.updated_at),
    };
  });
}
