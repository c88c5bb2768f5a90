/**
 * Retention and bounded history, for an rmapp that runs for months: finished runs are deleted once
 * they are older than their status's retention age (with their history and inbox rows), and very long
 * histories are folded into one summary row. Both work in small statements that only lock rows nobody
 * else writes (finished runs, and history rows below a cutoff), so workers never wait on them.
 */
import { sqlLiteral, type Database, type Queryable } from './database.ts';
import { countsByFinalStatus, FINAL_STATUSES } from './run-status.ts';
import { historyEventsSql } from './history-codec.ts';
import { CLEANUP_OWED } from './run-admin.ts';
import type { RetentionPolicy } from './retention-policy.ts';

export { DEFAULT_RETENTION, formatDuration, parseDuration, type RetentionPolicy } from './retention-policy.ts';

/**
 * The statement timeout of the sweeps (a batch of deletions, the dry run's counts, the search for long
 * histories): deliberately heavy statements over a whole table, which an engine's default timeout (a
 * quarter of the lease) could cut every time on a large database, so that they never finished. Still
 * bounded: on a connection gone silent a sweep would otherwise hold its pool slot for as long as TCP takes.
 */
const SWEEP_TIMEOUT = { timeoutMs: 10 * 60_000 };

/** Options of {@link pruneRuns}. */
export interface PruneOptions {
  /** Runs deleted per statement (one statement is one transaction). Default 500. */
  batchSize?: number | undefined;
  /** Count what would be deleted and delete nothing. */
  dryRun?: boolean | undefined;
  /** The instant ages are measured from; default now. Fixed for the whole call. */
  now?: Date | undefined;
  /** Stops between batches (e.g. on shutdown); what was deleted so far stays deleted. */
  signal?: AbortSignal | undefined;
}

/** What {@link pruneRuns} deleted (or, with `dryRun`, would delete). */
export interface PruneResult {
  runs: number;
  historyRows: number;
  /** Inbox rows (signals, consumed or not). */
  signals: number;
  /** Artifacts (plans, test output, offloaded step outputs). */
  artifacts: number;
  /** Runs by final status; every final status is present, 0 when none. */
  byStatus: Record<string, number>;
}

/** 0001-01-01T00:00:00Z: the earliest cutoff written (see {@link cutoffs}). */
const EARLIEST_CUTOFF_MS = Date.parse('0001-01-01T00:00:00Z');

/** Milliseconds → the cutoff instant as ISO text, or null for "keep forever", per final status. */
function cutoffs(policy: RetentionPolicy, now: Date): [string | null, string | null, string | null] {
  const one = (name: keyof RetentionPolicy): string | null => {
    const ms = policy[name];
    if (ms === Infinity) return null;
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
      throw new Error(`Invalid retention policy: ${name} must be a number of milliseconds >= 0 or Infinity (got ${String(ms)}).`);
    }
    // An age reaching before year 1 (800000d) keeps every run, as nothing was created that early: the
    // cutoff stops there, where Postgres still reads the ISO date (not "-000164-08-07T…", an error).
    return new Date(Math.max(now.getTime() - ms, EARLIEST_CUTOFF_MS)).toISOString();
  };
  return [one('succeededMs'), one('failedMs'), one('cancelledMs')];
}

/**
 * A cancelled run whose definition's cleanup is still owed (run-admin.ts `CLEANUP_OWED`, on a run that
 * ran: state_machine/owed-cleanups.ts `isCleanupOwed`) is kept, whatever its age, until a worker's sweep
 * or a cancel ran the cleanup and cleared the mark: deleted, the cleanup was lost for good — nothing
 * finds a run that is gone (test/a4-prune-owed-cleanup.test.ts).
 */
const OWED = sqlLiteral(CLEANUP_OWED);

/**
 * Whether run `a` is old enough to delete, given the cutoffs for succeeded, failed and cancelled
 * runs as the parameters `$s`, `$f`, `$c` (null keeps forever). `created_at < cutoff` follows from
 * `finished_at < cutoff` (a run finishes after it is created) and lets the `(status, created_at)`
 * index bound the scan, so no new index is needed.
 */
const expired = (a: string, s: string, f: string, c: string) => `coalesce(
     (${a}.status = 'succeeded' and ${a}.created_at < ${s}::timestamptz and ${a}.finished_at < ${s}::timestamptz)
  or (${a}.status = 'failed' and ${a}.created_at < ${f}::timestamptz and ${a}.finished_at < ${f}::timestamptz)
  or (${a}.status = 'cancelled' and ${a}.created_at < ${c}::timestamptz and ${a}.finished_at < ${c}::timestamptz
      and not (${a}.status_message is not distinct from ${OWED} and ${a}.snapshot is not null)), false)`;

/** Its parent is gone (or it has none): runs are deleted top-down, so a kept parent keeps its children. */
const parentGone = (a: string) => `(${a}.parent_run_id is null or not exists (select 1 from rmapp_runs p where p.id = ${a}.parent_run_id))`;

/**
 * None of its children is kept: a parent is not deleted under a child that is still active or too
 * young. Direct children only: a recursive check per candidate made the planner's cost estimate cross
 * `jit_above_cost`, and JIT compilation then took ~0.5 s per batch (measured on 300k runs).
 */
const noKeptChild = (a: string, s: string, f: string, c: string) =>
  `not exists (select 1 from rmapp_runs k where k.parent_run_id = ${a}.id and not ${expired('k', s, f, c)})`;

/**
 * The advisory lock a compaction of run `$1` holds (`pg_advisory_xact_lock`, taken before any row) and
 * a prune tries (`pg_try_advisory_xact_lock`) on each run it would delete, skipping a run it cannot
 * have: pruning locks a run's row and then deletes its history, a compaction locks history rows and
 * then updates the run's row, and on two workers the two deadlocked (40P01). A compaction waits for
 * the prune (before it locks anything, then finds nothing to fold); a prune never waits for a
 * compaction. Taking the run's row first in the compaction instead held it for the whole compaction
 * (commits and lease renewals waited 40–100 ms) and deadlocked with an artifact's `for key share`.
 */
const compactLockKey = (runId: string) => `hashtextextended('rmapp.history:' || ${runId}, 0)`;

/**
 * The candidates of one batch of one status ($1; $2 its cutoff; $3, $4, $5 the cutoffs of all three
 * statuses; $6 the batch size; $7 ids to leave out): the oldest deletable runs in `(status, created_at)`
 * index order, read without a lock. What this scan read is only a proposal: {@link lockAndDeleteBatch}
 * locks them and checks them again after its lock ({@link deleteLocked}).
 */
const SCAN_BATCH = `select r.id from rmapp_runs r
    where r.status = $1 and r.created_at < $2::timestamptz and r.finished_at < $2::timestamptz
      and ${parentGone('r')} and ${noKeptChild('r', '$3', '$4', '$5')}
      and not (r.id = any($7::text[]))
    order by r.created_at
    limit $6`;

/** The transaction-local setting that hands the runs the first statement locked to the second. */
const BATCH_SETTING = 'rmapp.prune_batch';

/**
 * First statement of a batch: lock the scanned runs still of the batch's status ({@link SCAN_BATCH}),
 * skipping rows another transaction holds (a worker finishing, an operator retrying, a start inserting
 * a child under one, runs.ts `PARENT_LOCK`), in `created_at` order, then the compaction lock of each
 * ({@link compactLockKey}; a run being compacted is skipped too, for a later batch). What it locked is
 * handed to {@link deleteLocked} in a transaction-local setting.
 */
const lockBatch = (ids: string[], status: string) => `with candidates as (
    select r.id from rmapp_runs r
    where r.id = any(${textArray(ids)}) and r.status = ${sqlLiteral(status)}
    order by r.created_at
    for update of r skip locked),
  c as materialized (select id from candidates where pg_try_advisory_xact_lock(${compactLockKey('id')}))
  select set_config('${BATCH_SETTING}', jsonb_build_object('locked', (select coalesce(jsonb_agg(id), '[]'::jsonb) from c))::text, true)`;

/**
 * Second statement of a batch, under a snapshot taken after the first one's locks: delete those of the
 * locked runs that may still go, with their history, inbox and artifact rows. The scan read the runs as
 * they were before its lock: a child a start inserted under a parent (engine.ts `start`, whose insert
 * locks the parent only until it commits) after the scan and committed before the lock was not seen,
 * and the parent was deleted under the new child. The check again here sees every child committed
 * before the lock; a start after it waits for this transaction (the parent's `for key share` against
 * this `for update`) and then finds its parent gone. The run's own age is checked again too: a failed
 * run retried (`engine.retry`) after the scan that failed again before the lock is of the batch's status
 * once more, but finished just now (test/h8-prune-retried-young.test.ts).
 */
const deleteLocked = (s: string, f: string, c: string) => `with locked as (
    select jsonb_array_elements_text(current_setting('${BATCH_SETTING}')::jsonb->'locked') as id),
  c as materialized (
    select r.id from rmapp_runs r
    where r.id in (select id from locked) and ${expired('r', s, f, c)} and ${parentGone('r')} and ${noKeptChild('r', s, f, c)}),
  h as (delete from rmapp_run_history h where h.run_id in (select id from c) returning 1),
  s as (delete from rmapp_run_inbox i where i.run_id in (select id from c) returning 1),
  a as (delete from rmapp_run_artifacts x where x.run_id in (select id from c) returning 1),
  d as (delete from rmapp_runs r where r.id in (select id from c) returning r.id, r.status)
  select
    (select coalesce(jsonb_agg(id), '[]'::jsonb) from d) as ids,
    (select count(*) from d)::float8 as runs,
    (select count(*) from h)::float8 as history_rows,
    (select count(*) from s)::float8 as signals,
    (select count(*) from a)::float8 as artifacts,
    (select coalesce(jsonb_object_agg(status, n), '{}'::jsonb) from (select status, count(*)::float8 as n from d group by status) g) as by_status`;

/** A text array literal of `ids` (a script binds no parameters). */
function textArray(ids: readonly string[]): string {
  return `array[${ids.map(sqlLiteral).join(', ')}]::text[]`;
}

/** A cutoff as a literal for a script: null keeps forever. */
function cutoffLiteral(cutoff: string | null | undefined): string {
  return cutoff == null ? 'null' : sqlLiteral(cutoff);
}

/**
 * Locks and deletes one batch of scanned runs ({@link SCAN_BATCH}): two statements in one transaction
 * (one round trip), so that the check made again ({@link deleteLocked}) reads the runs after the lock.
 */
async function lockAndDeleteBatch(db: PruneStore, ids: string[], status: string, all: (string | null)[]): Promise<BatchRow | undefined> {
  const [s, f, c] = all.map(cutoffLiteral) as [string, string, string];
  return (await db.script<BatchRow>([lockBatch(ids, status), deleteLocked(s, f, c)], SWEEP_TIMEOUT))[0];
}

/** What {@link pruneRuns} needs of the store: its statements, and scripts run as one transaction. */
export type PruneStore = Pick<Database, 'query' | 'script'>;

/**
 * What the batches would delete in total: the deletable runs whose parent is gone and, top-down,
 * their deletable children (which the batches reach once their parent is gone). Reads only.
 */
const DRY_RUN = `with recursive ok(id, status) as (
    select r.id, r.status from rmapp_runs r
    where ${expired('r', '$1', '$2', '$3')} and ${parentGone('r')} and ${noKeptChild('r', '$1', '$2', '$3')}
    union
    select r.id, r.status from rmapp_runs r join ok on r.parent_run_id = ok.id
    where ${expired('r', '$1', '$2', '$3')} and ${noKeptChild('r', '$1', '$2', '$3')})
  select
    (select count(*) from ok)::float8 as runs,
    (select count(*) from rmapp_run_history h where h.run_id in (select id from ok))::float8 as history_rows,
    (select count(*) from rmapp_run_inbox i where i.run_id in (select id from ok))::float8 as signals,
    (select count(*) from rmapp_run_artifacts x where x.run_id in (select id from ok))::float8 as artifacts,
    (select coalesce(jsonb_object_agg(status, n), '{}'::jsonb) from (select status, count(*)::float8 as n from ok group by status) g) as by_status`;

interface BatchRow extends CountsRow {
  /** Ids of the runs the batch deleted (jsonb; a string from drivers that do not parse it). */
  ids: string[] | string;
}

interface CountsRow {
  runs: number;
  history_rows: number;
  signals: number;
  artifacts: number;
  by_status: Record<string, number> | string;
}

/**
 * Deletes finished runs older than the policy's age for their status, with their history and inbox
 * rows, so the tables of a long-lived deployment stop growing. Works in batches of at most
 * `batchSize` runs of one status, oldest first, until a round over the three statuses deletes nothing.
 * Each batch is a scan ({@link SCAN_BATCH}) and then one transaction that locks what it found with
 * `FOR UPDATE SKIP LOCKED` and deletes those that may still go, checked again after the lock
 * ({@link deleteLocked}): a run someone is touching is left for the next call rather than waited on,
 * and pending, running and waiting runs are never selected.
 *
 * Trees (`parent_run_id`) go top-down: a run is deleted only once its parent is gone, so the child of
 * a kept parent is kept; and a parent is kept while one of its children is kept (active or too
 * young), so an active child does not lose its parent. The latter looks at direct children only: an
 * active grandchild under a finished child does not hold back its grandparent.
 *
 * Pass the {@link Database} itself, not a transaction: inside one transaction every batch would hold
 * its locks until the end.
 *
 * While a dashboard's live stream watches run changes, each batch's deleted runs are announced to it by
 * migration 0018's trigger (src/rmapp/server/stream.ts), so it stops showing them.
 */
export async function pruneRuns(db: PruneStore, policy: RetentionPolicy, options: PruneOptions = {}): Promise<PruneResult> {
  const batchSize = options.batchSize ?? 500;
  if (!Number.isInteger(batchSize) || batchSize <= 0) throw new Error(`batchSize must be a positive integer (got ${batchSize}).`);
  const all = cutoffs(policy, options.now ?? new Date());
  const total: PruneResult = { runs: 0, historyRows: 0, signals: 0, artifacts: 0, byStatus: countsByFinalStatus() };
  const add = (row: CountsRow | undefined): number => {
    if (!row) return 0;
    total.runs += Number(row.runs);
    total.historyRows += Number(row.history_rows);
    total.signals += Number(row.signals);
    total.artifacts += Number(row.artifacts);
    const byStatus = typeof row.by_status === 'string' ? (JSON.parse(row.by_status) as Record<string, number>) : row.by_status;
    for (const [status, n] of Object.entries(byStatus)) total.byStatus[status] = (total.byStatus[status] ?? 0) + Number(n);
    return Number(row.runs);
  };
  if (options.dryRun) {
    add((await db.query<CountsRow>(DRY_RUN, all, SWEEP_TIMEOUT))[0]);
    return total;
  }
  // Rounds over the statuses: a child of another status than its parent becomes deletable only
  // after its parent's batch, so repeat until a whole round deletes nothing.
  let progress = true;
  while (progress && !options.signal?.aborted) {
    progress = false;
    for (const [i, status] of FINAL_STATUSES.entries()) {
      const cutoff = all[i];
      if (cutoff === null || cutoff === undefined) continue;
      // Runs a batch found and did not delete — a compaction held them, another transaction held their
      // row (another prune's batch, a worker finishing), or a child came after the scan — left out of
      // the next batches of this call (a later call takes them), so that its scans move on past them.
      const skipped: string[] = [];
      while (!options.signal?.aborted) {
        const scanned = await db.query<{ id: string }>(SCAN_BATCH, [status, cutoff, ...all, batchSize, skipped], SWEEP_TIMEOUT);
        if (!scanned.length) break;
        const row = await lockAndDeleteBatch(
          db,
          scanned.map((r) => r.id),
          status,
          all,
        );
        const deleted = add(row);
        const ids = typeof row?.ids === 'string' ? (JSON.parse(row.ids) as string[]) : (row?.ids ?? []);
        const gone = new Set(ids);
        skipped.push(...scanned.map((r) => r.id).filter((id) => !gone.has(id)));
        if (deleted > 0) {
          progress = true;
          // An artifact a step saved while this batch deleted its run (the save read the run before the
          // batch committed) landed after the batch's delete: removed now (persistence/artifacts.ts).
          const late = await db.query<{ n: number }>(
            `with x as (delete from rmapp_run_artifacts a where a.run_id = any($1::text[])
               and not exists (select 1 from rmapp_runs r where r.id = a.run_id) returning 1)
             select count(*)::float8 as n from x`,
            [ids],
          );
          total.artifacts += Number(late[0]?.n ?? 0);
        }
        // A full scan: more may be left (every run it found is now deleted or left out).
        if (scanned.length < batchSize) break;
      }
    }
  }
  return total;
}

/** Options of {@link compactHistory}. */
export interface CompactHistoryOptions {
  /** Newest history rows left as they are. */
  keepLast: number;
}

/** What {@link compactHistory} folded into the summary row by this call. */
export interface CompactHistoryResult {
  /** History rows (not counting an earlier summary) folded into the summary; 0 when nothing was done. */
  compactedRows: number;
  /** Events those rows held. */
  compactedEvents: number;
  /** Rows deleted (the folded ones but the one rewritten as the summary). */
  deletedRows: number;
}

/** The event type of a summary row; its `data` holds the counts of what it replaced. */
export const HISTORY_COMPACTED = 'history.compacted';

/**
 * One statement, so one transaction on any {@link Queryable}. It first takes the run's compaction
 * lock ({@link compactLockKey}). The cutoff is the id of the newest row to fold (the `keepLast + 1`-th
 * newest in this statement's snapshot): rows a worker appends meanwhile have larger ids and are not
 * touched. The folded rows are locked in id order first, so a concurrent compaction of the same run
 * waits and then sees the updated summary instead of the rows that are gone. The oldest folded row is
 * rewritten in place as the summary (its id keeps it first); the others are deleted. An earlier summary
 * among them adds its counts.
 */
const COMPACT = `with held as materialized (select pg_advisory_xact_lock(${compactLockKey('$1')})),
  target as (
    select id from rmapp_run_history where run_id = $1 and exists (select 1 from held) order by id desc offset $2 limit 1),
  old as (
    select h.id, h.at, ${historyEventsSql('h')} as events from rmapp_run_history h
    where h.run_id = $1 and h.id <= (select id from target)
    order by h.id
    for update),
  o as (
    select id, at, events,
      (jsonb_typeof(events) = 'array' and jsonb_array_length(events) = 1 and events->0->>'type' = '${HISTORY_COMPACTED}') as summary
    from old),
  stats as (
    select count(*) as physical, min(id) as first_id,
      count(*) filter (where not summary) as new_rows,
      coalesce(sum(jsonb_array_length(events)) filter (where not summary), 0) as new_events,
      coalesce(sum(case when summary then coalesce((events->0->'data'->>'rows')::bigint, 0) else 1 end), 0) as total_rows,
      coalesce(sum(case when summary then coalesce((events->0->'data'->>'events')::bigint, 0) else jsonb_array_length(events) end), 0) as total_events,
      min(case when summary then coalesce((events->0->'data'->>'from')::timestamptz, at) else at end) as from_at,
      max(case when summary then coalesce((events->0->'data'->>'to')::timestamptz, at) else at end) as to_at
    from o),
  by_type as (
    select coalesce(jsonb_object_agg(t, n order by t), '{}'::jsonb) as j from (
      select t, sum(n) as n from (
        select e->>'type' as t, 1::bigint as n from o cross join lateral jsonb_array_elements(o.events) e where not o.summary
        union all
        select b.key, b.value::bigint from o cross join lateral jsonb_each_text(coalesce(o.events->0->'data'->'byType', '{}'::jsonb)) b where o.summary
      ) x group by t) y),
  compactable as (select * from stats where physical >= 2 and new_rows >= 1),
  upd as (
    update rmapp_run_history h set worker = null, lease_epoch = null, at = compactable.to_at, log = null,
      events = jsonb_build_array(jsonb_build_object('type', '${HISTORY_COMPACTED}', 'data', jsonb_build_object(
        'events', compactable.total_events, 'rows', compactable.total_rows, 'byType', (select j from by_type),
        'from', to_char(compactable.from_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'to', to_char(compactable.to_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))))
    from compactable where h.run_id = $1 and h.id = compactable.first_id
    returning h.id),
  del as (
    delete from rmapp_run_history h using compactable
    where h.run_id = $1 and h.id in (select id from old) and h.id <> compactable.first_id
    returning h.id),
  counted as (
    update rmapp_runs r set history_rows = greatest(0, r.history_rows - (select count(*) from del)::int)
    where r.id = $1 and exists (select 1 from del))
  select (select count(*) from upd)::float8 as updated, (select count(*) from del)::float8 as deleted,
    coalesce((select new_rows from compactable), 0)::float8 as new_rows, coalesce((select new_events from compactable), 0)::float8 as new_events`;

/**
 * Bounds one run's history: when it has more than `keepLast` rows, every row but the newest
 * `keepLast` is replaced by one `history.compacted` row placed first, whose `data` is
 * `{ events, rows, byType, from, to }` (cumulative over earlier compactions). A run that loops for
 * months keeps its recent history readable and its table rows bounded. Safe while a worker appends
 * to the run: only rows up to a cutoff read in the same statement are touched. Folding a single row
 * into a summary would not shrink anything, so fewer than two rows to fold is a no-op.
 */
export async function compactHistory(db: Queryable, runId: string, options: CompactHistoryOptions): Promise<CompactHistoryResult> {
  const { keepLast } = options;
  if (!Number.isInteger(keepLast) || keepLast < 0) throw new Error(`keepLast must be an integer >= 0 (got ${keepLast}).`);
  const rows = await db.query<{ updated: number; deleted: number; new_rows: number; new_events: number }>(COMPACT, [runId, keepLast]);
  const row = rows[0];
  if (!row || Number(row.updated) === 0) return { compactedRows: 0, compactedEvents: 0, deletedRows: 0 };
  return { compactedRows: Number(row.new_rows), compactedEvents: Number(row.new_events), deletedRows: Number(row.deleted) };
}

/**
 * The history bound of a run, under one name everywhere (`createEngine({ history })`, the worker's own
 * compaction, the retention job): a run with more than `maxRows` history rows (one per commit) is
 * compacted to its newest `keepLast` rows plus one summary row.
 */
export interface HistoryBound {
  /** Runs with more history rows than this are compacted. Must exceed `keepLast`. */
  maxRows: number;
  /** Newest rows each compacted run keeps (see {@link compactHistory}). */
  keepLast: number;
}

/** Options of {@link compactLongHistories}. */
export interface CompactLongHistoriesOptions extends HistoryBound {
  /** At most this many runs per call. Default 100. */
  limit?: number | undefined;
  /** Stops between runs (e.g. on shutdown). */
  signal?: AbortSignal | undefined;
}

/**
 * Finds runs whose history exceeds `maxRows` rows and compacts each to `keepLast` rows plus a
 * summary, so no single run's history grows without bound. One grouped scan of the history primary
 * key per call; after compaction a run has `keepLast + 1` rows, so it is not found again until it
 * grows past `maxRows` anew. Returns how many runs were compacted.
 */
export async function compactLongHistories(db: Queryable, options: CompactLongHistoriesOptions): Promise<number> {
  const { maxRows, keepLast, limit = 100 } = options;
  if (!Number.isInteger(maxRows) || !Number.isInteger(keepLast) || keepLast < 0 || maxRows <= keepLast) {
    throw new Error(`maxRows must be an integer greater than keepLast (got maxRows ${maxRows}, keepLast ${keepLast}).`);
  }
  if (!Number.isInteger(limit) || limit <= 0) throw new Error(`limit must be a positive integer (got ${limit}).`);
  const long = await db.query<{ run_id: string }>(
    `select run_id from rmapp_run_history group by run_id having count(*) > $1 limit $2`,
    [maxRows, limit],
    SWEEP_TIMEOUT,
  );
  let compacted = 0;
  for (const { run_id } of long) {
    if (options.signal?.aborted) break;
    const result = await compactHistory(db, run_id, { keepLast });
    if (result.compactedRows > 0) compacted++;
  }
  return compacted;
}
