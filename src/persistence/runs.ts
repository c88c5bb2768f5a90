/** Creating and reading runs and their history (not the hot path: see `claims.ts` and `commits.ts` for that). */
import type { Queryable } from './database.ts';
import { HISTORY_COLUMNS, RUN_COLUMNS, toHistoryRow, toRunRow } from './rows.ts';
import type { RunRow } from './row-types.ts';
import { decodeHistory, encodeHistory, type HistoryEntry } from './history-codec.ts';
import { decodeSnapshot } from './snapshot-codec.ts';
import { idPrefixConditions } from './id-prefix.ts';
import { isFinalStatus, RUN_STATUSES, type HistoryEvent, type RunStatus } from './run-status.ts';

const date = (v: unknown): Date => (v instanceof Date ? v : new Date(String(v)));

/** Channel a worker LISTENs on: the payload is a run id that has something to do now. */
export const WAKE_CHANNEL = 'rmapp_wake';

/** What {@link insertRun} needs. */
export interface NewRun {
  id: string;
  workflow: string;
  workflowVersion: string;
  input: unknown;
  idempotencyKey?: string | null | undefined;
  parentRunId?: string | null | undefined;
  /** Per-run timeout from now. */
  timeoutMs?: number | null | undefined;
  /**
   * Insert the run already claimed by this worker (it has room) and already past its first macrostep:
   * the insert is that macrostep's durable write (see {@link StartedRun}). Saves the claim round trip,
   * the notification and the first commit.
   */
  claimFor?: StartedRun | undefined;
  /** W3C traceparent to persist with the run. */
  traceContext?: string | null | undefined;
  /** A keyed run is inserted queued (pending, not admitted); see claims.ts `admitQueuedRuns`. */
  concurrency?: { key: string; limit: number } | null | undefined;
}

/**
 * A run started by this process's worker, inserted as its first durable macrostep: the session ran the
 * actor's first macrostep in memory (nothing of a step's work starts before its snapshot is durable:
 * the checkpoint barrier waits for this insert), so the row carries that snapshot, its step records and
 * the history row of that macrostep. Before this, a local start cost an insert and then a commit of
 * the same macrostep (10 → 9 client statements per 6-step run, bench/README.md).
 */
export interface StartedRun {
  owner: string;
  leaseMs: number;
  /** Computed by the caller (its clock), so the session can arm it before the row exists. */
  deadlineAt: Date | null;
  status: RunStatus;
  snapshotJson: string;
  stateValue: unknown;
  output: unknown;
  error: unknown;
  timers: unknown[];
  steps: Record<string, unknown>;
  /** Give the lease up at once (the run ended, or only waits, in its first macrostep). */
  release: boolean;
  wakeAt: Date | null;
  history: HistoryEntry[];
}

/** What {@link insertRun} reports of a run it inserted already claimed. */
export interface InsertedClaimed {
  version: number;
  historyRows: number;
  createdAt: Date;
  updatedAt: Date;
}

/**
 * What {@link insertRun} did: `created`, or met a run its id or idempotency key names (`existing`), or
 * inserted nothing because the parent it names is not there (`parentGone`: deleted, by a prune say).
 */
export interface InsertedRun {
  id: string;
  created: boolean;
  claimed?: InsertedClaimed;
  existing?: { workflow: string; byKey: boolean };
  parentGone?: true;
}

/**
 * Inserts a pending run and notifies workers, in one statement. With an idempotency key (or a run
 * id) that already exists, inserts nothing and returns the existing run's id and `created: false`.
 * Under a parent (`parentRunId`) that is not there, inserts nothing and returns `parentGone`.
 * @internal
 */
export async function insertRun(db: Queryable, run: NewRun): Promise<InsertedRun> {
  // $1–$6 of both inserts: what the run is and the keys that make a second start the same run.
  const identity = [
    run.id,
    run.workflow,
    run.workflowVersion,
    JSON.stringify(run.input ?? null),
    run.idempotencyKey ?? null,
    run.parentRunId ?? null,
  ];
  if (run.claimFor) {
    const c = run.claimFor;
    const final = isFinalStatus(c.status);
    const rows = await unlessExists(
      db.query<Record<string, unknown>>(
        `with ${PARENT_LOCK},
       ins as (
         insert into rmapp_runs (id, workflow, workflow_version, status, input, idempotency_key, parent_run_id, deadline_at,
           lease_owner, lease_expires_at, wake_at, lease_epoch, version, trace_context,
           snapshot, state_value, output, error, timers, steps, history_rows, finished_at)
         select $1::text, $2::text, $3::text, $11::text, $4::jsonb, $5::text, $6::text, $7::timestamptz,
           case when $19::boolean then null else $8::text end,
           case when $19::boolean then null else now() + make_interval(secs => $9::float8 / 1000) end,
           case when $19::boolean then $20::timestamptz else now() + make_interval(secs => $9::float8 / 1000) end,
           1, 1, $10::text, $12::jsonb, $13::jsonb, $14::jsonb, $15::jsonb, $16::jsonb, $17::jsonb,
           (json_array_length($18::json) > 0)::int, case when $21::boolean then now() end
         where ${PARENT_FOUND}
         returning id, version, history_rows, created_at, updated_at),
       h as (
         insert into rmapp_run_history (run_id, worker, lease_epoch, log)
         select ins.id, $8, 1, $18::json from ins where json_array_length($18::json) > 0)
       select * from ins`,
        [
          ...identity,
          c.deadlineAt?.toISOString() ?? null,
          c.owner,
          c.leaseMs,
          run.traceContext ?? null,
          c.status,
          c.snapshotJson,
          JSON.stringify(c.stateValue ?? null),
          // SQL null, not jsonb `null` (read the same, 9 bytes less each in the row and in every update's WAL).
          c.output == null ? null : JSON.stringify(c.output),
          c.error == null ? null : JSON.stringify(c.error),
          JSON.stringify(c.timers),
          JSON.stringify(c.steps),
          encodeHistory(c.history),
          c.release,
          final ? null : (c.wakeAt?.toISOString() ?? null),
          final,
        ],
      ),
    );
    const row = rows?.[0];
    if (row)
      return {
        id: run.id,
        created: true,
        claimed: {
          version: Number(row.version),
          historyRows: Number(row.history_rows),
          createdAt: date(row.created_at),
          updatedAt: date(row.updated_at),
        },
      };
    // No row and no conflict: the statement's only condition, its parent, was not met.
    return rows ? { id: run.id, created: false, parentGone: true } : findExisting(db, run);
  }
  const inserted = await unlessExists(
    db.query<{ id: string }>(
      `with ${PARENT_LOCK},
     ins as (
       insert into rmapp_runs (id, workflow, workflow_version, status, input, idempotency_key, parent_run_id, wake_at, deadline_at, trace_context,
         concurrency_key, concurrency_limit)
       -- A keyed run waits in its key's queue with no wake-up time: only its admission makes it due (a
       -- queued run due at once kept an idle worker polling every 5 ms, and every claim stepped over it).
       select $1::text, $2::text, $3::text, 'pending', $4::jsonb, $5::text, $6::text, case when $9::text is null then now() end,
         case when $7::float8 is null then null else now() + make_interval(secs => $7::float8 / 1000) end, $8::text, $9::text, $10::int
       where ${PARENT_FOUND}
       returning id)
     select id, pg_notify('${WAKE_CHANNEL}', id) from ins`,
      [...identity, run.timeoutMs ?? null, run.traceContext ?? null, run.concurrency?.key ?? null, run.concurrency?.limit ?? null],
    ),
  );
  if (inserted?.[0]) return { id: inserted[0].id, created: true };
  return inserted ? { id: run.id, created: false, parentGone: true } : findExisting(db, run);
}

/**
 * The parent a run is inserted under (`$6`), locked (`for key share`) by the insert itself. Checked in a
 * statement of its own before, the parent could be deleted by a prune in between — with a worker, while
 * the run's first macrostep ran in memory — and the run was stored naming a run that no longer existed,
 * which retention must keep while the run is unfinished (an adversarial pass). Locked, it cannot be
 * deleted until the insert commits: a prune skips it (`skip locked`), and one that deleted it first is
 * waited for, after which the parent is not found and nothing is inserted ({@link PARENT_FOUND}). The
 * lock takes nothing from the parent's own writes (commits and renewals change no key). A prune whose
 * scan read the runs before the insert and locks the parent after it committed checks its locked runs
 * again under a later snapshot, which sees the new child (retention.ts `deleteLocked`).
 */
const PARENT_LOCK = `parent as materialized (select id from rmapp_runs where id = $6::text for key share)`;
/** The insert's condition: no parent named, or the one named is there ({@link PARENT_LOCK}). */
const PARENT_FOUND = `($6::text is null or exists (select 1 from parent))`;

/**
 * The insert's rows (none when its parent was not there), or null when the run (its id or idempotency key) exists. A plain insert whose
 * unique violation is caught, not `on conflict do nothing`: a speculative insert writes one more WAL
 * record per run (`Heap/HEAP_CONFIRM`, 48 B per workflow, bench/wal-breakdown.ts) to spare the rare
 * duplicate start an aborted statement.
 */
async function unlessExists<T>(insert: Promise<T[]>): Promise<T[] | null> {
  try {
    return await insert;
  } catch (err) {
    if ((err as { code?: unknown } | null)?.code === '23505') return null;
    throw err;
  }
}

async function findExisting(
  db: Queryable,
  run: NewRun,
): Promise<{ id: string; created: boolean; existing: { workflow: string; byKey: boolean } }> {
  const found = await existingRun(db, run);
  if (!found) throw new Error(`Run ${run.id} conflicted on insert but could not be read back; try again.`);
  return found;
}

/** The run a start names already — by its idempotency key, or its id — as an insert that met it answers; null if none. */
export async function existingRun(
  db: Queryable,
  run: Pick<NewRun, 'id' | 'idempotencyKey'>,
): Promise<{ id: string; created: false; existing: { workflow: string; byKey: boolean } } | null> {
  // `by_key`: which of the two the start met, so that a clash is blamed on the one that clashed.
  const existing = await db.query<{ id: string; workflow: string; by_key: boolean }>(
    `select id, workflow, coalesce(idempotency_key = $1, false) as by_key from rmapp_runs
     where ($1::text is not null and idempotency_key = $1) or id = $2 order by by_key desc limit 1`,
    [run.idempotencyKey ?? null, run.id],
  );
  const row = existing[0];
  return row ? { id: row.id, created: false, existing: { workflow: row.workflow, byKey: row.by_key === true } } : null;
}

/** One run, or undefined. @internal */
export async function getRun(db: Queryable, id: string): Promise<RunRow | undefined> {
  if (!couldBeRunId(id)) return undefined;
  const rows = await db.query<Record<string, unknown>>(`select ${RUN_COLUMNS} from rmapp_runs where id = $1`, [id]);
  return rows[0] ? toRunRow(rows[0]) : undefined;
}

/**
 * False for a value no run's id can be: not a string, or holding NUL (Postgres's text cannot), which
 * the database would refuse with an encoding error instead of finding nothing.
 */
export function couldBeRunId(id: unknown): id is string {
  return typeof id === 'string' && !id.includes('\0');
}

/**
 * What a signal's sender needs of a run — its definition and status — without its snapshot, which may
 * be megabytes (engine.ts `send`).
 */
export async function getRunHead(
  db: Queryable,
  id: string,
): Promise<{ workflow: string; workflowVersion: string; status: RunStatus } | undefined> {
  if (!couldBeRunId(id)) return undefined;
  const rows = await db.query<{ workflow: string; workflow_version: string; status: RunStatus }>(
    'select workflow, workflow_version, status from rmapp_runs where id = $1',
    [id],
  );
  const row = rows[0];
  return row && { workflow: row.workflow, workflowVersion: row.workflow_version, status: row.status };
}

/**
 * The status of each run of `ids` that exists, by id: one statement for many runs (`waitFor`'s reads
 * while many callers wait, src/state_machine/status-reads.ts). A run that does not exist is absent.
 */
export async function getRunStatuses(
  db: Queryable,
  ids: readonly string[],
  options?: { timeoutMs?: number },
): Promise<Map<string, RunStatus>> {
  const rows = await db.query<{ id: string; status: RunStatus }>(
    'select id, status from rmapp_runs where id = any($1::text[])',
    [ids as string[]],
    options,
  );
  return new Map(rows.map((r) => [r.id, r.status]));
}

/** Filters of {@link listRuns}. */
export interface ListRunsFilter {
  status?: RunStatus | readonly RunStatus[] | undefined;
  workflow?: string | undefined;
  parentRunId?: string | undefined;
  /** Only runs whose id starts with this (services give runs structured ids, e.g. `owner/repo/issues/12/…`). */
  idPrefix?: string | undefined;
  /** Only runs created after this instant (each status's index range then starts there). */
  createdAfter?: Date | undefined;
  /**
   * Only runs whose input contains this JSON (jsonb `@>`: these keys with these values, nested objects
   * alike): the runs about one thing when their ids do not say it. Applied to the rows the other filters
   * select (no index of its own; `workflow` is such a filter too), so pair it with `createdAfter`: alone,
   * one that matches nothing read all of 300,000 runs (0.9 s), a day's 8,640 runs took 8 ms.
   */
  inputContains?: Record<string, unknown> | undefined;
  limit?: number | undefined;
}

/**
 * Newest first (@internal). Each status is read by its own ordered index range, merged under one limit: with a
 * list of statuses in one condition Postgres walked the newest rows of every status instead (1.8 s for
 * "succeeded or failed" behind 260k newer runs; 0.2 ms per status range). Without a status filter, all
 * six ranges.
 */
export async function listRuns(db: Queryable, filter: ListRunsFilter = {}): Promise<RunRow[]> {
  const params: unknown[] = [];
  const param = (value: unknown) => `$${params.push(value)}`;
  const where: string[] = [];
  if (filter.workflow) where.push(`workflow = ${param(filter.workflow)}`);
  if (filter.parentRunId) where.push(`parent_run_id = ${param(filter.parentRunId)}`);
  if (filter.idPrefix) where.push(...(await idPrefixConditions(db, filter.idPrefix, param)));
  if (filter.createdAfter) where.push(`created_at > ${param(filter.createdAfter.toISOString())}::timestamptz`);
  if (filter.inputContains) where.push(`input @> ${param(JSON.stringify(filter.inputContains))}::jsonb`);
  const limit = param(filter.limit ?? 100);
  const order = `order by created_at desc, id desc limit ${limit}`;
  const select = (status?: string) => {
    const conditions = status === undefined ? where : [...where, `status = ${param(status)}`];
    return `select ${RUN_COLUMNS} from rmapp_runs ${conditions.length ? `where ${conditions.join(' and ')}` : ''} ${order}`;
  };
  // Unfiltered: every status's range, merged — there is no `(created_at)` index (migration 0013).
  const chosen =
    filter.status === undefined ? [] : Array.isArray(filter.status) ? (filter.status as RunStatus[]) : [filter.status as RunStatus];
  const statuses = chosen.length === 0 ? [...RUN_STATUSES] : [...new Set(chosen)];
  const text =
    statuses.length === 1 ? select(statuses[0]) : `select * from (${statuses.map((s) => `(${select(s)})`).join(' union all ')}) r ${order}`;
  return (await db.query<Record<string, unknown>>(text, params)).map(toRunRow);
}

/** A run's history, one entry per event, oldest first. */
export async function getHistory(db: Queryable, runId: string): Promise<HistoryEvent[]> {
  const rows = (
    await db.query<Record<string, unknown>>(`select ${HISTORY_COLUMNS} from rmapp_run_history where run_id = $1 order by id`, [runId])
  ).map(toHistoryRow);
  const out: HistoryEvent[] = [];
  for (const row of rows) {
    for (const e of decodeHistory(row.events, row.log)) {
      out.push({
        seq: out.length + 1,
        type: e.type,
        path: e.path ?? '',
        state: e.state ?? null,
        step: e.step ?? null,
        attempt: e.attempt ?? null,
        data: e.data ?? null,
        worker: row.worker,
        leaseEpoch: row.leaseEpoch,
        at: row.at,
      });
    }
  }
  return out;
}

export type { HistoryEntry } from './history-codec.ts';

/** Appends history outside a run's own commits (e.g. a restore failure noticed by a worker). */
export async function appendHistory(db: Queryable, runId: string, entries: HistoryEntry[], worker: string | null): Promise<void> {
  if (entries.length === 0) return;
  // The run's row first (its update is the lock), the history row only for a run still there: inserted
  // unconditionally, a row appended as a prune deleted the run (`rmapp prune --cancelled 0ms` right
  // after a cancel) was left without its run, for a later run under the same id to show.
  await db.query(
    `with u as (update rmapp_runs set history_rows = history_rows + 1 where id = $1 returning id)
     insert into rmapp_run_history (run_id, worker, log) select u.id, $3, $2::json from u`,
    [runId, encodeHistory(entries), worker],
  );
}

/**
 * Marks runs of definitions this worker cannot run, so `runs show` says why they do not move; gives each
 * run marked with its `workflow@version`: a worker names them when it starts, since a worker started
 * without the user's `--workflows` module sat silent while their runs waited
 * (test/pk-worker-says-unregistered.test.ts).
 */
export async function markUnregisteredVersions(
  db: Queryable,
  registered: [string, string][],
  worker: string,
): Promise<{ id: string; definition: string }[]> {
  return db.query<{ id: string; definition: string }>(
    // Locked in id order like every statement that updates several runs (claims.ts renewLeases).
    `with m as materialized (
       select r.id, 'Definition ' || r.workflow || '@' || r.workflow_version || ' is not registered on worker ' || $2 ||
         ': the run waits untouched until a worker that registers this version claims it.' as message
       from rmapp_runs r
       where r.status in ('pending', 'running', 'waiting')
         and not exists (select 1 from jsonb_array_elements($1::jsonb) v where v->>0 = r.workflow and v->>1 = r.workflow_version)
         and (r.lease_expires_at is null or r.lease_expires_at < now())
       order by r.id for no key update of r)
     update rmapp_runs r set status_message = m.message from m
     where r.id = m.id and r.status_message is distinct from m.message
     returning r.id, r.workflow || '@' || r.workflow_version as definition`,
    [JSON.stringify(registered), worker],
  );
}

/** Where a queued run stands: how many queued runs of its key are ahead, plus one. */
export async function queuePosition(db: Queryable, run: { id: string; concurrencyKey: string | null }): Promise<number | null> {
  if (!run.concurrencyKey) return null;
  // Compared in SQL: a JavaScript Date keeps milliseconds, created_at keeps microseconds.
  const rows = await db.query<{ n: number }>(
    `select count(*)::int + 1 as n from rmapp_runs q, (select created_at, id from rmapp_runs where id = $2) me
     where q.concurrency_key = $1 and q.status = 'pending' and not q.admitted and (q.created_at, q.id) < (me.created_at, me.id)`,
    [run.concurrencyKey, run.id],
  );
  return rows[0]?.n ?? null;
}

/** One page of unfinished runs in id order, after `after` (keyset paging: snapshots can be large). */
export async function unfinishedRunsPage(
  db: Queryable,
  after: string,
  limit: number,
): Promise<Pick<RunRow, 'id' | 'workflow' | 'workflowVersion' | 'status' | 'stateValue' | 'snapshot'>[]> {
  const rows = await db.query<Record<string, unknown>>(
    `select id, workflow, workflow_version, status, state_value, snapshot from rmapp_runs
     where status in ('pending', 'running', 'waiting') and id > $1 order by id limit $2`,
    [after, limit],
  );
  return rows.map((r) => ({
    id: r.id as string,
    workflow: r.workflow as string,
    workflowVersion: r.workflow_version as string,
    status: r.status as RunStatus,
    stateValue: r.state_value ?? null,
    snapshot: decodeSnapshot(r.snapshot ?? null),
  }));
}
