/**
 * Statements only the test kit (`rmapp/testing`, src/state_machine/testing/) runs: what lease expiry
 * does to a crashed worker's runs, inserting a run at a persisted point of a path (snapshot fixtures),
 * and a trigger that records every snapshot the engine persists so a path check misses none.
 */
import type { Queryable } from './database.ts';
import { WAKE_CHANNEL } from './runs.ts';
import type { RunStatus } from './run-status.ts';
import { decodeSnapshot } from './snapshot-codec.ts';

/**
 * What lease expiry does `leaseMs` after a worker died, now: the runs `owner` held become claimable.
 * @internal
 */
export async function expireLeasesOf(db: Queryable, owner: string): Promise<number> {
  const rows = await db.query<{ id: string }>(
    `update rmapp_runs set lease_expires_at = now(), wake_at = now() where status = 'running' and lease_owner = $1 returning id`,
    [owner],
  );
  return rows.length;
}

/** A run as persisted part-way through: what {@link insertRunAtPoint} writes. */
export interface RunAtPoint {
  id: string;
  workflow: string;
  workflowVersion: string;
  input: unknown;
  snapshot: unknown;
  stateValue: unknown;
  steps: unknown;
  timers: unknown[];
}

/** Inserts a run waiting at a persisted point (due now) and wakes the workers, who resume it. @internal */
export async function insertRunAtPoint(db: Queryable, run: RunAtPoint): Promise<void> {
  await db.query(
    `with ins as (
       insert into rmapp_runs (id, workflow, workflow_version, status, snapshot, state_value, input, timers, steps, wake_at)
       values ($1, $2, $3, 'waiting', $4::jsonb, $5::jsonb, $6::jsonb, $7::jsonb, $8::jsonb, now())
       returning id)
     select pg_notify('${WAKE_CHANNEL}', id) from ins`,
    [
      run.id,
      run.workflow,
      run.workflowVersion,
      JSON.stringify(run.snapshot),
      JSON.stringify(run.stateValue),
      JSON.stringify(run.input),
      JSON.stringify(run.timers),
      JSON.stringify(run.steps ?? {}),
    ],
  );
}

/** Channel {@link installCommitCapture}'s trigger notifies, with the run id, after each captured write. */
export const COMMIT_CAPTURE_CHANNEL = 'rmapp_pathkit_commit';

/**
 * Installs a trigger recording every write of a run that changes its snapshot or status, and
 * notifying {@link COMMIT_CAPTURE_CHANNEL}. Only on a test database: it adds a row per commit.
 * @internal
 */
export async function installCommitCapture(db: Queryable): Promise<void> {
  const statements = [
    `create table if not exists rmapp_pathkit_commits (seq bigserial primary key, run_id text not null, status text not null, snapshot jsonb)`,
    `create or replace function rmapp_pathkit_capture() returns trigger language plpgsql as $$
     begin
       if tg_op = 'UPDATE' and new.snapshot is not distinct from old.snapshot and new.status = old.status then return null; end if;
       insert into rmapp_pathkit_commits (run_id, status, snapshot) values (new.id, new.status, new.snapshot);
       perform pg_notify('${COMMIT_CAPTURE_CHANNEL}', new.id);
       return null;
     end $$`,
    `create or replace trigger rmapp_pathkit_capture after insert or update on rmapp_runs for each row execute function rmapp_pathkit_capture()`,
  ];
  for (const sql of statements) await db.query(sql);
}

/** The writes {@link installCommitCapture} recorded for a run, in commit order. @internal */
export async function capturedCommits(
  db: Queryable,
  runId: string,
): Promise<{ status: RunStatus; snapshot: { value?: unknown } | null }[]> {
  const rows = await db.query<{ status: RunStatus; snapshot: { value?: unknown } | null }>(
    `select status, snapshot from rmapp_pathkit_commits where run_id = $1 order by seq`,
    [runId],
  );
  return rows.map((r) => ({ status: r.status, snapshot: decodeSnapshot(r.snapshot) as { value?: unknown } | null }));
}
