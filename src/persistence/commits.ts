/**
 * The hot path: persisting macrosteps. All the writes a worker has ready are committed together in a
 * single statement (group commit): update each run fenced by its session — (run id, lease owner, lease
 * epoch) — and `version`, append its history, mark its consumed signals, in one round trip and one
 * commit. Every part of a write is matched to that write (by its index in the batch), never to another
 * write of the same run: a write whose fence fails is absent from the result and applied nothing.
 */
import type { Queryable } from './database.ts';
import type { HistoryEntry } from './runs.ts';
import { encodeHistory, historyEventsSql } from './history-codec.ts';
import { storedSnapshotJson } from './snapshot-codec.ts';
import type { SignalOutcome } from './inbox.ts';
import { isFinalStatus, type RunStatus } from './run-status.ts';

/** One run's new state, as the session that owns it built it. */
export interface RunWrite {
  id: string;
  expectedVersion: number;
  owner: string;
  epoch: number;
  status: RunStatus;
  snapshot: unknown;
  /** `snapshot` already serialized in its stored form (`storedSnapshotJson`; the session measured its size), to avoid doing it twice. */
  snapshotJson?: string | undefined;
  stateValue: unknown;
  output: unknown;
  error: unknown;
  timers: unknown[];
  steps: Record<string, unknown>;
  /**
   * Counts of finished executions to merge into `steps_done` (src/state_machine/step-book.ts), or null.
   * Only the batch statement merges them: a write carrying some never takes the single-run statements.
   */
  stepsDone: Record<string, number> | null;
  /** Next wake-up when the run is released into `waiting`; ignored while the lease is kept. */
  wakeAt: Date | null;
  /** Give the lease up (the run waits or has finished). */
  release: boolean;
  statusMessage: string | null;
  /** The run's `signal_seq` as of the session's last complete read of its inbox. */
  seenSignalSeq: number;
  /** Signals the run took in this write, with what became of each. */
  consumedSignals: [id: number, outcome: SignalOutcome][];
  /** Buffered signals this write's history reports kept (`signal.buffered`): marked so on their inbox rows. */
  reportedSignals: number[];
  history: HistoryEntry[];
}

/** Result per write that was applied; writes not listed lost their fence. */
export interface CommitResult {
  /** Index of the write in the batch. */
  index: number;
  id: string;
  version: number;
  /** History rows the run has now (see the schema's `history_rows`). */
  historyRows: number;
  /** True when a signal arrived while the run was being released: claim it again now. */
  wakeNow: boolean;
  /** The row's `updated_at` (its `finished_at` too for a final write); absent from the lean commit. */
  updatedAt?: Date | undefined;
}

/**
 * The common write — one run, lease kept, no signal consumed — without the inbox and release parts
 * of the general statement. Measured on this machine: 0.67 ms for the general statement against
 * 0.42 ms for an update plus history rows, per commit at concurrency 1.
 */
const LEAN_COMMIT = `with u as (
    update rmapp_runs r set snapshot = $2::jsonb, state_value = $3::jsonb, timers = $4::jsonb,
      steps = $5::jsonb, version = r.version + 1, status_message = null, updated_at = now(),
      history_rows = r.history_rows + (json_array_length($9::json) > 0)::int
    where r.id = $1 and r.version = $6 and r.lease_owner = $7 and r.lease_epoch = $8
    returning r.id, r.version, r.history_rows),
  h as (
    insert into rmapp_run_history (run_id, worker, lease_epoch, log)
    select u.id, $7, $8, $9::json from u where json_array_length($9::json) > 0)
  select id, version, history_rows, false as wake_now from u`;

function isLean(w: RunWrite): boolean {
  return (
    w.status === 'running' &&
    !w.release &&
    w.consumedSignals.length === 0 &&
    w.reportedSignals.length === 0 &&
    w.statusMessage === null &&
    w.stepsDone === null
  );
}

/**
 * One run given up — it finished, or it only waits — with no signal consumed: the general statement's
 * effect for that write, with plain parameters instead of `jsonb_to_recordset` and without its lock and
 * inbox parts. Every run's last write is one. Measured in the engine at concurrency 1 (same run, same
 * machine): 1.35 ms per final write through the general statement.
 */
const RELEASE_COMMIT = `with u as (
    update rmapp_runs r set status = $9, snapshot = $2::jsonb, state_value = $3::jsonb, output = $10::jsonb,
      error = $11::jsonb, timers = $4::jsonb, steps = $5::jsonb, version = r.version + 1, status_message = $12,
      history_rows = r.history_rows + (json_array_length($13::json) > 0)::int,
      lease_owner = null, lease_expires_at = null,
      wake_at = case when $14::boolean then null when $9 = 'waiting' and r.signal_seq > $15 then now() else $16::timestamptz end,
      updated_at = now(),
      finished_at = case when $14::boolean then now() else null end
    where r.id = $1 and r.version = $6 and r.lease_owner = $7 and r.lease_epoch = $8
    returning r.id, r.version, r.history_rows, r.updated_at, ($9 = 'waiting' and r.signal_seq > $15) as wake_now),
  h as (
    insert into rmapp_run_history (run_id, worker, lease_epoch, log)
    select u.id, $7, $8, $13::json from u where json_array_length($13::json) > 0)
  select id, version, history_rows, wake_now, updated_at from u`;

function isRelease(w: RunWrite): boolean {
  return w.release && w.consumedSignals.length === 0 && w.reportedSignals.length === 0 && w.stepsDone === null;
}

/** $1–$8 of the single-run statements: the run's new state and the fence it is written under. */
function fencedState(w: RunWrite): unknown[] {
  return [
    w.id,
    w.snapshotJson ?? storedSnapshotJson(w.snapshot ?? null),
    JSON.stringify(w.stateValue ?? null),
    JSON.stringify(w.timers),
    JSON.stringify(w.steps),
    w.expectedVersion,
    w.owner,
    w.epoch,
  ];
}

/** Commits a batch of run writes in one statement. */
export async function commitRunWrites(db: Queryable, writes: RunWrite[]): Promise<CommitResult[]> {
  if (writes.length === 0) return [];
  const single = writes[0] as RunWrite;
  if (writes.length === 1 && isLean(single)) {
    const params = serialized(() => [...fencedState(single), encodeHistory(single.history)]);
    const rows = await db.query<{ id: string; version: number; history_rows: number }>(LEAN_COMMIT, params);
    return rows.map((r) => ({ index: 0, id: r.id, version: Number(r.version), historyRows: Number(r.history_rows), wakeNow: false }));
  }
  if (writes.length === 1 && isRelease(single)) {
    const params = serialized(() => [
      ...fencedState(single),
      single.status,
      // SQL null, as the batch statement stores it (and the insert: src/persistence/runs.ts).
      single.output == null ? null : JSON.stringify(single.output),
      single.error == null ? null : JSON.stringify(single.error),
      single.statusMessage,
      encodeHistory(single.history),
      isFinalStatus(single.status),
      single.seenSignalSeq,
      single.wakeAt ? single.wakeAt.toISOString() : null,
    ]);
    const rows = await db.query<{ id: string; version: number; history_rows: number; wake_now: boolean; updated_at: unknown }>(
      RELEASE_COMMIT,
      params,
    );
    return rows.map(resultOf(0));
  }
  // Each write's object without its snapshot, which goes in as the session already serialized it (to
  // measure its size): serializing the batch whole wrote every snapshot a second time.
  const payload = serialized(
    () =>
      `[${writes
        .map((w, idx) => {
          const rest = JSON.stringify({
            idx,
            id: w.id,
            expected: w.expectedVersion,
            owner: w.owner,
            epoch: w.epoch,
            status: w.status,
            state_value: w.stateValue ?? null,
            output: w.output ?? null,
            error: w.error ?? null,
            timers: w.timers,
            steps: w.steps,
            steps_done: w.stepsDone,
            wake_at: w.wakeAt ? w.wakeAt.toISOString() : null,
            release: w.release,
            final: isFinalStatus(w.status),
            status_message: w.statusMessage,
            seen_signal_seq: w.seenSignalSeq,
            consumed: w.consumedSignals,
            reported: w.reportedSignals,
            // JSON text inside the payload: read as `text`, it is inserted as written (a jsonb value cast to
            // json would be re-printed with spaces).
            history: encodeHistory(w.history),
          });
          return `{"snapshot":${w.snapshotJson ?? storedSnapshotJson(w.snapshot ?? null)},${rest.slice(1)}`;
        })
        .join(',')}]`,
  );
  const rows = await db.query<{ idx: number; id: string; version: number; history_rows: number; wake_now: boolean; updated_at: unknown }>(
    `with w as (
       select * from jsonb_to_recordset($1::jsonb) as w(
         idx int, id text, expected int, owner text, epoch int, status text, snapshot jsonb, state_value jsonb,
         output jsonb, error jsonb, timers jsonb, steps jsonb, wake_at timestamptz, release boolean,
         final boolean, status_message text, seen_signal_seq int, consumed jsonb, reported jsonb, history text)),
     -- The runs updated one at a time in run-id order (rmapp_commit_runs, migrations 0015 and 0020): the lease
     -- renewal locks its runs in the same order (claims.ts), and the two, on separate connections,
     -- deadlocked when they locked in opposite orders (test/lock-order.test.ts). Each update takes its
     -- own row's lock; locking the batch first in a 'for no key update' CTE cost a WAL record per run
     -- (Heap/LOCK, 327 B per workflow at c=50, bench/README.md "WAL at c=50"). The update itself (its
     -- fence, the wake-on-signal rule, the merge of steps_done) is in those migrations: changing it takes a migration.
     u as materialized (
       select o_idx as idx, o_id as id, o_version as version, o_history_rows as history_rows,
         o_updated_at as updated_at, o_wake_now as wake_now
       from rmapp_commit_runs($1::jsonb)),
     h as (
       insert into rmapp_run_history (run_id, worker, lease_epoch, log)
       select w.id, w.owner, w.epoch, w.history::json from w join u on u.idx = w.idx
       where json_array_length(w.history::json) > 0),
     -- The inbox rows this batch changes, as narrow rows: those its runs took (with the outcome) and the
     -- buffered ones they report kept (outcome null). Materialized apart from w: an update joined to w
     -- itself carried w's whole row (snapshot, history, lists) on each of its k rows for its recheck, so k
     -- consumed signals cost O(k × (k + snapshot)) — 3,000 took 2.2 s, 5,000 passed the statement
     -- timeout on every retry (bench/README.md, "twelfth session"). A signal reported kept and taken in
     -- the same write is one row, the taking: an update joined to two rows for one target applies one.
     cs as materialized (
       select distinct on (run_id, signal_id) run_id, signal_id, outcome from (
         select w.id as run_id, (t.v->>0)::bigint as signal_id, t.v->>1 as outcome
         from w join u on u.idx = w.idx cross join lateral jsonb_array_elements(w.consumed) t(v)
         union all
         select w.id, (t.v #>> '{}')::bigint, null
         from w join u on u.idx = w.idx cross join lateral jsonb_array_elements(w.reported) t(v)) x
       order by run_id, signal_id, outcome is null),
     c as (
       -- An ignored signal frees its dedupe key: sending it again is not a duplicate of nothing.
       update rmapp_run_inbox i set reported = true,
         consumed_at = case when cs.outcome is null then i.consumed_at else now() end,
         outcome = coalesce(cs.outcome, i.outcome),
         dedupe_key = case when cs.outcome is null or cs.outcome = 'received' then i.dedupe_key else null end
       from cs where i.run_id = cs.run_id and i.id = cs.signal_id)
     select idx, id, version, history_rows, wake_now, updated_at from u`,
    [payload],
  );
  return rows.map((r) => resultOf(Number(r.idx))(r));
}

/**
 * Builds a statement's parameters; a failure here (JSON cannot write a value: a BigInt, a cycle, a
 * `toJSON` that throws) is the write's data, never the database's state, so it is raised as a
 * permanent error: the committer then sends the batch's writes one at a time and rejects this one
 * (src/state_machine/committer.ts, `refusesData`). A plain Error from a user's `toJSON` read as
 * transient there, and the whole batch was sent again forever (test/adv3-progress-later.test.ts).
 */
function serialized<T>(build: () => T): T {
  try {
    return build();
  } catch (err) {
    throw Object.assign(new Error(`A run write cannot be written as JSON: ${(err as Error)?.message ?? String(err)}`, { cause: err }), {
      code: 'UNWRITABLE_WRITE',
      category: 'permanent',
    });
  }
}

type ResultRow = { id: string; version: number; history_rows: number; wake_now: boolean; updated_at: unknown };

/** A returned row as the result of the write at `index` of the batch. */
function resultOf(index: number): (r: ResultRow) => CommitResult {
  return (r) => ({
    index,
    id: r.id,
    version: Number(r.version),
    historyRows: Number(r.history_rows),
    wakeNow: Boolean(r.wake_now),
    updatedAt: r.updated_at instanceof Date ? r.updated_at : new Date(String(r.updated_at)),
  });
}

/**
 * Whether a write whose reply was lost (the connection broke during the statement) was applied: the
 * run's row then carries that write's fence and exactly one version more. Nothing else moves the
 * version under an unchanged epoch while a session owns the run (a claim changes the epoch; the
 * session's own release waits for its writes), so the answer is certain. A write that gave the run up
 * may since have been followed by a claim (a new epoch): it was applied unless that claim took the run
 * from this owner at this epoch, which the claim records in the history (`lease.taken_over`). Null
 * when it was not applied.
 */
export async function landedWrite(db: Queryable, write: RunWrite): Promise<CommitResult | null> {
  const rows = await db.query<{
    version: number;
    lease_owner: string | null;
    lease_epoch: number;
    history_rows: number;
    status: string;
    signal_seq: number;
    taken: boolean;
  }>(
    `select version, lease_owner, lease_epoch, history_rows, status, signal_seq,
       $4::boolean and lease_epoch > $3 and exists (
         select 1 from rmapp_run_history h, jsonb_array_elements(${historyEventsSql('h')}) e
         where h.run_id = $1 and e->>'type' = 'lease.taken_over' and e->'data'->>'from' = $2 and (e->'data'->>'epoch')::int = $3) as taken
     from rmapp_runs where id = $1`,
    [write.id, write.owner, write.epoch, write.release],
  );
  const row = rows[0];
  if (!row) return null;
  const result = (version: number): CommitResult => ({
    index: 0,
    id: write.id,
    version,
    historyRows: Number(row.history_rows),
    wakeNow: write.release && write.status === 'waiting' && Number(row.signal_seq) > write.seenSignalSeq,
  });
  // Given up, then claimed by a worker that did not take it from this session: the release came first.
  if (write.release && Number(row.lease_epoch) > write.epoch)
    return row.taken ? null : { ...result(write.expectedVersion + 1), wakeNow: false };
  if (Number(row.version) !== write.expectedVersion + 1 || Number(row.lease_epoch) !== write.epoch) return null;
  if (row.lease_owner !== (write.release ? null : write.owner) || row.status !== write.status) return null;
  return result(Number(row.version));
}
