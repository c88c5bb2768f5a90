/**
 * Retention and bounded history: pruning finished runs and compacting long histories, on real
 * Postgres (postgres.js) and PGlite, plus the background job and the `rmapp prune` command.
 * Runs and history rows are inserted with SQL: no engine is involved.
 */
import { Command } from 'commander';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { openDatabase, type Database, type Queryable } from '../src/persistence/database.ts';
import { migrate } from '../src/persistence/migrate.ts';
import {
  compactHistory,
  compactLongHistories,
  DEFAULT_RETENTION,
  HISTORY_COMPACTED,
  parseDuration,
  pruneRuns,
  type PruneStore,
  type RetentionPolicy,
} from '../src/persistence/retention.ts';
import { startRetentionJob } from '../src/persistence/retention-job.ts';
import { getHistory } from '../src/persistence/runs.ts';
import { addPruneCommand } from '../src/rmapp/cli/prune-command.ts';
import { createTestDatabase, rawTransaction, type TestDatabase } from './helpers/postgres.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = new Date('2025-06-01T12:00:00.000Z');
const POLICY: RetentionPolicy = { succeededMs: 7 * DAY, failedMs: 30 * DAY, cancelledMs: 1 * DAY };

let testDb: TestDatabase;

beforeAll(async () => {
  testDb = await createTestDatabase();
});

afterAll(async () => {
  await testDb?.drop();
});

async function openStore(kind: 'postgres' | 'pglite'): Promise<Database> {
  const db = kind === 'postgres' ? await openDatabase({ url: testDb.url }) : await openDatabase({ url: '', dataDir: 'memory://' });
  await migrate(db);
  return db;
}

async function clear(db: Queryable): Promise<void> {
  await db.query('truncate rmapp_runs, rmapp_run_history, rmapp_run_inbox, rmapp_run_artifacts');
}

interface Fixture {
  id: string;
  status: 'pending' | 'running' | 'waiting' | 'succeeded' | 'failed' | 'cancelled';
  /** How long before NOW it finished; null: not finished. */
  finishedAgo: number | null;
  parent?: string;
  history: number;
  inbox: number;
  deleted: boolean;
}

/** Inserts a run created an hour before it finished (or 100 days ago when it has not), with history and inbox rows. */
async function insertFixture(db: Queryable, f: Fixture): Promise<void> {
  const finishedAt = f.finishedAgo === null ? null : new Date(NOW.getTime() - f.finishedAgo);
  const createdAt = new Date((finishedAt?.getTime() ?? NOW.getTime() - 100 * DAY) - HOUR);
  await db.query(
    `insert into rmapp_runs (id, workflow, workflow_version, status, created_at, updated_at, finished_at, parent_run_id)
     values ($1, 'test.retention', 'v1', $2, $3::timestamptz, $3::timestamptz, $4::timestamptz, $5)`,
    [f.id, f.status, createdAt.toISOString(), finishedAt?.toISOString() ?? null, f.parent ?? null],
  );
  if (f.history > 0) {
    await db.query(
      `insert into rmapp_run_history (run_id, events) select $1, '[{"type":"step.succeeded"}]'::jsonb from generate_series(1, $2::int)`,
      [f.id, f.history],
    );
  }
  await db.query(`insert into rmapp_run_artifacts (run_id, name, value, bytes) values ($1, 'plan', '"a plan"', 8)`, [f.id]);
  if (f.inbox > 0) {
    await db.query(`insert into rmapp_run_inbox (run_id, event) select $1, '{"type":"poke"}'::jsonb from generate_series(1, $2::int)`, [
      f.id,
      f.inbox,
    ]);
  }
}

/** The scenario of the pruning tests: every rule of the policy, and every kind of parent/child relation. */
const FIXTURES: Fixture[] = [
  { id: 'succeeded-old', status: 'succeeded', finishedAgo: 8 * DAY, history: 3, inbox: 2, deleted: true },
  { id: 'succeeded-new', status: 'succeeded', finishedAgo: 6 * DAY, history: 2, inbox: 1, deleted: false },
  { id: 'failed-8d', status: 'failed', finishedAgo: 8 * DAY, history: 4, inbox: 1, deleted: false },
  { id: 'failed-31d', status: 'failed', finishedAgo: 31 * DAY, history: 1, inbox: 0, deleted: true },
  { id: 'cancelled-2d', status: 'cancelled', finishedAgo: 2 * DAY, history: 2, inbox: 1, deleted: true },
  { id: 'cancelled-1h', status: 'cancelled', finishedAgo: HOUR, history: 1, inbox: 0, deleted: false },
  // Active runs stay, however old, even with a stale finished_at (a failed run that was retried).
  { id: 'pending-old', status: 'pending', finishedAgo: null, history: 0, inbox: 1, deleted: false },
  { id: 'running-old', status: 'running', finishedAgo: null, history: 5, inbox: 0, deleted: false },
  { id: 'waiting-stale-finish', status: 'waiting', finishedAgo: 100 * DAY, history: 2, inbox: 2, deleted: false },
  // A child of a kept parent stays.
  { id: 'parent-running', status: 'running', finishedAgo: null, history: 1, inbox: 0, deleted: false },
  { id: 'child-of-running', status: 'succeeded', finishedAgo: 100 * DAY, parent: 'parent-running', history: 2, inbox: 1, deleted: false },
  { id: 'parent-young', status: 'succeeded', finishedAgo: DAY, history: 1, inbox: 0, deleted: false },
  { id: 'child-of-young', status: 'failed', finishedAgo: 40 * DAY, parent: 'parent-young', history: 1, inbox: 0, deleted: false },
  // A whole old tree goes (top-down, over several batches).
  { id: 'tree-root', status: 'succeeded', finishedAgo: 50 * DAY, history: 2, inbox: 0, deleted: true },
  { id: 'tree-child', status: 'succeeded', finishedAgo: 50 * DAY, parent: 'tree-root', history: 3, inbox: 1, deleted: true },
  { id: 'tree-grandchild', status: 'failed', finishedAgo: 40 * DAY, parent: 'tree-child', history: 1, inbox: 1, deleted: true },
  // A parent stays while a child is kept (here: still waiting), and keeps its other, old children with it.
  { id: 'keeper-root', status: 'succeeded', finishedAgo: 50 * DAY, history: 1, inbox: 0, deleted: false },
  { id: 'keeper-child', status: 'waiting', finishedAgo: null, parent: 'keeper-root', history: 1, inbox: 1, deleted: false },
  { id: 'keeper-sibling', status: 'cancelled', finishedAgo: 50 * DAY, parent: 'keeper-root', history: 1, inbox: 0, deleted: false },
  // A child whose parent was pruned before is an ordinary old run.
  { id: 'orphan', status: 'succeeded', finishedAgo: 9 * DAY, parent: 'pruned-long-ago', history: 2, inbox: 0, deleted: true },
];

const expectedPrune = () => {
  const gone = FIXTURES.filter((f) => f.deleted);
  const byStatus = { succeeded: 0, failed: 0, cancelled: 0 } as Record<string, number>;
  for (const f of gone) byStatus[f.status] = (byStatus[f.status] ?? 0) + 1;
  return {
    runs: gone.length,
    historyRows: gone.reduce((n, f) => n + f.history, 0),
    signals: gone.reduce((n, f) => n + f.inbox, 0),
    artifacts: gone.length,
    byStatus,
  };
};

async function tableCounts(db: Queryable): Promise<{ runs: number; history: number; inbox: number; artifacts: number }> {
  const [row] = await db.query<{ runs: number; history: number; inbox: number; artifacts: number }>(
    `select (select count(*) from rmapp_runs)::int as runs, (select count(*) from rmapp_run_history)::int as history,
       (select count(*) from rmapp_run_inbox)::int as inbox, (select count(*) from rmapp_run_artifacts)::int as artifacts`,
  );
  return row as { runs: number; history: number; inbox: number; artifacts: number };
}

/** Ids of runs that have any row left in any of the three tables. */
async function presentIds(db: Queryable): Promise<Set<string>> {
  const rows = await db.query<{ id: string }>(
    `select id from rmapp_runs union select run_id from rmapp_run_history union select run_id from rmapp_run_inbox
     union select run_id from rmapp_run_artifacts`,
  );
  return new Set(rows.map((r) => r.id));
}

/** The events a history row generated by {@link insertLongHistory} holds, by its sequence number `g`. */
function eventsOf(g: number): string[] {
  if (g % 10 === 0) return ['step.started', 'step.succeeded'];
  if (g % 3 === 0) return ['step.failed'];
  return ['state.entered'];
}

const HISTORY_BASE = new Date('2025-01-01T00:00:00.000Z');
const atOf = (g: number) => new Date(HISTORY_BASE.getTime() + g * 1_000).toISOString();

/** Appends rows g = from..to to a run's history in one statement, `at` one second apart. */
async function insertLongHistory(db: Queryable, runId: string, from: number, to: number): Promise<void> {
  await db.query(
    `insert into rmapp_run_history (run_id, worker, lease_epoch, at, events)
     select $1, 'worker-1', 3, $2::timestamptz + make_interval(secs => g),
       case when g % 10 = 0 then '[{"type":"step.started","step":"a"},{"type":"step.succeeded","step":"a"}]'::jsonb
            when g % 3 = 0 then '[{"type":"step.failed","step":"b","attempt":2}]'::jsonb
            else '[{"type":"state.entered","state":"s"}]'::jsonb end
     from generate_series($3::int, $4::int) g`,
    [runId, HISTORY_BASE.toISOString(), from, to],
  );
}

/** Expected summary for rows g = 1..last. */
function expectedSummary(last: number) {
  const byType: Record<string, number> = {};
  let events = 0;
  for (let g = 1; g <= last; g++) {
    for (const t of eventsOf(g)) {
      byType[t] = (byType[t] ?? 0) + 1;
      events++;
    }
  }
  return { events, rows: last, byType, from: atOf(1), to: atOf(last) };
}

interface HistoryRowOut {
  id: number;
  at: string;
  worker: string | null;
  events: { type: string; data?: Record<string, unknown> }[];
}

async function historyRows(db: Queryable, runId: string): Promise<HistoryRowOut[]> {
  const rows = await db.query<{ id: number; at: string; worker: string | null; events: unknown }>(
    `select id::float8 as id, to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as at, worker, events
     from rmapp_run_history where run_id = $1 order by id`,
    [runId],
  );
  return rows.map((r) => ({ ...r, events: (typeof r.events === 'string' ? JSON.parse(r.events) : r.events) as HistoryRowOut['events'] }));
}

async function insertRunRow(db: Queryable, id: string, status = 'running'): Promise<void> {
  await db.query(`insert into rmapp_runs (id, workflow, workflow_version, status) values ($1, 'test.retention', 'v1', $2)`, [id, status]);
}

describe.each(['postgres', 'pglite'] as const)('retention on %s', (kind) => {
  let db: Database;

  beforeAll(async () => {
    db = await openStore(kind);
  });

  afterAll(async () => {
    await db?.close();
  });

  beforeEach(async () => {
    await clear(db);
  });

  it('prunes exactly the finished runs older than their status allows, with their history and inbox rows', async () => {
    for (const f of FIXTURES) await insertFixture(db, f);
    const before = await tableCounts(db);

    const result = await pruneRuns(db, POLICY, { now: NOW, batchSize: 2 });

    const expected = expectedPrune();
    expect(result).toEqual(expected);
    const present = await presentIds(db);
    for (const f of FIXTURES) expect({ id: f.id, present: present.has(f.id) }).toEqual({ id: f.id, present: !f.deleted });
    expect(await tableCounts(db)).toEqual({
      runs: before.runs - expected.runs,
      history: before.history - expected.historyRows,
      inbox: before.inbox - expected.signals,
      artifacts: before.artifacts - expected.artifacts,
    });
    // Nothing is left to do.
    expect((await pruneRuns(db, POLICY, { now: NOW })).runs).toBe(0);
  });

  it('with dryRun deletes nothing and reports what a real prune then deletes', async () => {
    for (const f of FIXTURES) await insertFixture(db, f);
    const before = await tableCounts(db);

    const dry = await pruneRuns(db, POLICY, { now: NOW, dryRun: true });

    expect(dry).toEqual(expectedPrune());
    expect(await tableCounts(db)).toEqual(before);
    const real = await pruneRuns(db, POLICY, { now: NOW, batchSize: 3 });
    expect(real).toEqual(dry);
  });

  it('keeps every status whose age is Infinity and ages from `now`', async () => {
    for (const f of FIXTURES) await insertFixture(db, f);
    const keepAll = await pruneRuns(db, { succeededMs: Infinity, failedMs: Infinity, cancelledMs: Infinity }, { now: NOW });
    expect(keepAll.runs).toBe(0);
    // Seen from 60 days earlier nothing had finished long enough ago.
    const earlier = await pruneRuns(db, POLICY, { now: new Date(NOW.getTime() - 200 * DAY), dryRun: true });
    expect(earlier.runs).toBe(0);
    expect((await tableCounts(db)).runs).toBe(FIXTURES.length);
  });

  it('keeps every run under an age reaching before year 1 (800000d), dry or not, instead of failing on the date', async () => {
    for (const f of FIXTURES) await insertFixture(db, f);
    for (const age of ['800000d', '100000000d', `${Number.MAX_SAFE_INTEGER}ms`]) {
      const ms = parseDuration(age);
      const policy = { succeededMs: ms, failedMs: ms, cancelledMs: ms };
      expect((await pruneRuns(db, policy, { now: NOW, dryRun: true })).runs, `${age}, dry run`).toBe(0);
      expect((await pruneRuns(db, policy, { now: NOW })).runs, age).toBe(0);
    }
    expect((await tableCounts(db)).runs).toBe(FIXTURES.length);
  });

  it('rejects a policy that is not a number of milliseconds', async () => {
    await expect(pruneRuns(db, { ...POLICY, failedMs: Number.NaN })).rejects.toThrow(/failedMs/);
    await expect(pruneRuns(db, { ...POLICY, succeededMs: -1 })).rejects.toThrow(/succeededMs/);
  });

  it('compacts 5,000 history rows into one summary plus the newest 100, cumulatively on repeat', async () => {
    await insertRunRow(db, 'long');
    await insertRunRow(db, 'neighbour');
    await insertLongHistory(db, 'long', 1, 5_000);
    await insertLongHistory(db, 'neighbour', 1, 300);
    const before = await historyRows(db, 'long');
    expect(before).toHaveLength(5_000);

    const first = await compactHistory(db, 'long', { keepLast: 100 });

    const summary1 = expectedSummary(4_900);
    expect(first).toMatchObject({ compactedRows: 4_900, compactedEvents: summary1.events });
    const after = await historyRows(db, 'long');
    expect(after).toHaveLength(101);
    expect(after[0]?.id).toBe(before[0]?.id);
    expect(after[0]?.events).toEqual([{ type: HISTORY_COMPACTED, data: summary1 }]);
    expect(after[0]?.at).toBe(summary1.to);
    expect(after.slice(1)).toEqual(before.slice(-100));
    // Another run's history is untouched.
    expect(await historyRows(db, 'neighbour')).toHaveLength(300);
    // The flattened history starts with the summary event.
    const flat = await getHistory(db, 'long');
    expect(flat[0]?.type).toBe(HISTORY_COMPACTED);
    expect(flat).toHaveLength(1 + (expectedSummary(5_000).events - summary1.events));

    // Nothing more to fold: a no-op.
    expect(await compactHistory(db, 'long', { keepLast: 100 })).toMatchObject({ compactedRows: 0, compactedEvents: 0 });
    expect(await historyRows(db, 'long')).toEqual(after);

    // 1,000 more rows, compacted again: still one summary, with counts that add up.
    await insertLongHistory(db, 'long', 5_001, 6_000);
    const beforeSecond = await historyRows(db, 'long');
    const second = await compactHistory(db, 'long', { keepLast: 100 });
    const summary2 = expectedSummary(5_900);
    expect(second).toMatchObject({ compactedRows: 1_000, compactedEvents: summary2.events - summary1.events });
    const final = await historyRows(db, 'long');
    expect(final).toHaveLength(101);
    expect(final[0]?.id).toBe(before[0]?.id);
    expect(final[0]?.events).toEqual([{ type: HISTORY_COMPACTED, data: summary2 }]);
    expect(final.filter((r) => r.events[0]?.type === HISTORY_COMPACTED)).toHaveLength(1);
    expect(final.slice(1)).toEqual(beforeSecond.slice(-100));
    const data = final[0]?.events[0]?.data as { events: number; byType: Record<string, number> };
    expect(Object.values(data.byType).reduce((a, b) => a + b, 0)).toBe(data.events);
  });

  it('compacts only runs longer than maxRows', async () => {
    for (const [id, rows] of [
      ['r1', 300],
      ['r2', 50],
      ['r3', 250],
    ] as const) {
      await insertRunRow(db, id);
      await insertLongHistory(db, id, 1, rows);
    }
    expect(await compactLongHistories(db, { maxRows: 200, keepLast: 20 })).toBe(2);
    expect(await historyRows(db, 'r1')).toHaveLength(21);
    expect(await historyRows(db, 'r2')).toHaveLength(50);
    expect(await historyRows(db, 'r3')).toHaveLength(21);
    expect(await compactLongHistories(db, { maxRows: 200, keepLast: 20 })).toBe(0);
    await expect(compactLongHistories(db, { maxRows: 20, keepLast: 20 })).rejects.toThrow(/maxRows/);
  });

  it('runs prune and compaction as a job pass', async () => {
    for (const f of FIXTURES) await insertFixture(db, f);
    await insertLongHistory(db, 'running-old', 1, 400);
    const errors: unknown[] = [];
    const job = startRetentionJob(db, {
      policy: { succeededMs: 0, failedMs: 0, cancelledMs: 0 },
      intervalMs: 3_600_000,
      history: { maxRows: 100, keepLast: 10 },
      onError: (err) => errors.push(err),
    });
    try {
      const pass = await job.runOnce();
      // Age 0: every finished run goes but the keeper tree and the child of an active parent.
      const stays = new Set(['child-of-running', 'keeper-root', 'keeper-sibling']);
      const finished = FIXTURES.filter((f) => ['succeeded', 'failed', 'cancelled'].includes(f.status) && !stays.has(f.id));
      expect(pass.pruned.runs).toBe(finished.length);
      expect(pass.compactedRuns).toBe(1);
      expect(await historyRows(db, 'running-old')).toHaveLength(11);
      expect(errors).toEqual([]);
    } finally {
      await job.stop();
    }
    await expect(job.runOnce()).rejects.toThrow(/stopped/);
  });
});

describe('on Postgres with concurrent writers', () => {
  let db: Database;
  const extra: Database[] = [];

  /** A second connection of its own; `lock_timeout` turns any lock wait into an error instead of a hang. */
  async function connection(): Promise<Database> {
    const c = await openDatabase({ url: testDb.url, maxConnections: 1 });
    await c.query(`set lock_timeout = '5s'`);
    extra.push(c);
    return c;
  }

  beforeAll(async () => {
    db = await openStore('postgres');
  });

  afterEach(async () => {
    while (extra.length) await extra.pop()?.close();
  });

  afterAll(async () => {
    await db?.close();
  });

  beforeEach(async () => {
    await clear(db);
  });

  it('prunes while a writer updates active runs and appends their history, neither blocking the other', async () => {
    const active = ['active-0', 'active-1', 'active-2', 'active-3', 'active-4'];
    for (const id of active) await insertRunRow(db, id);
    await db.query(
      `insert into rmapp_runs (id, workflow, workflow_version, status, created_at, finished_at)
       select 'old-' || g, 'test.retention', 'v1', (array['succeeded','failed','cancelled'])[1 + g % 3],
         now() - interval '101 days', now() - interval '100 days'
       from generate_series(1, 600) g`,
    );
    await db.query(
      `insert into rmapp_run_history (run_id, events) select 'old-' || g, '[{"type":"x"}]'::jsonb from generate_series(1, 600) g, generate_series(1, 4)`,
    );
    await db.query(
      `insert into rmapp_run_inbox (run_id, event) select 'old-' || g, '{"type":"poke"}'::jsonb from generate_series(1, 600) g`,
    );

    const writerDb = await connection();
    const prunerDb = await connection();
    const ITERATIONS = 400;
    let completed = 0;
    const writer = (async () => {
      for (let i = 0; i < ITERATIONS; i++) {
        const id = active[i % active.length] as string;
        const updated = await writerDb.query(
          `update rmapp_runs set version = version + 1, updated_at = now(), state_value = $2::jsonb where id = $1 and status = 'running' returning id`,
          [id, JSON.stringify({ i })],
        );
        if (updated.length !== 1) throw new Error(`update of ${id} found no row at iteration ${i}`);
        await writerDb.query(`insert into rmapp_run_history (run_id, events) values ($1, $2::jsonb)`, [
          id,
          JSON.stringify([{ type: 'tick', data: { i } }]),
        ]);
        completed++;
      }
    })();
    const pruning = pruneRuns(prunerDb, { succeededMs: DAY, failedMs: DAY, cancelledMs: DAY }, { batchSize: 10 });

    const [, pruned] = await Promise.all([writer, pruning]);

    expect(completed).toBe(ITERATIONS);
    expect(pruned).toEqual({
      runs: 600,
      historyRows: 2_400,
      signals: 600,
      artifacts: 0,
      byStatus: { succeeded: 200, failed: 200, cancelled: 200 },
    });
    const left = await db.query<{ n: number }>(
      `select ((select count(*) from rmapp_runs where id like 'old-%') + (select count(*) from rmapp_run_history where run_id like 'old-%')
        + (select count(*) from rmapp_run_inbox where run_id like 'old-%'))::int as n`,
    );
    expect(left[0]?.n).toBe(0);
    const versions = await db.query<{ v: number; h: number }>(
      `select sum(version)::int as v, (select count(*) from rmapp_run_history where run_id like 'active-%')::int as h
       from rmapp_runs where id like 'active-%'`,
    );
    expect(versions[0]).toEqual({ v: ITERATIONS, h: ITERATIONS });
  });

  it('skips a run another transaction holds instead of waiting for it, and deletes it on a later pass', async () => {
    for (const id of ['held', 'free-1', 'free-2']) {
      await insertFixture(db, { id, status: 'succeeded', finishedAgo: 100 * DAY, history: 2, inbox: 1, deleted: true });
    }
    const prunerDb = await connection();
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const holder = rawTransaction(testDb.url, async (tx) => {
      await tx.query(`select id from rmapp_runs where id = 'held' for update`);
      locked();
      await released;
    });
    await isLocked;

    const first = await pruneRuns(prunerDb, POLICY, { now: NOW });
    expect(first.runs).toBe(2);
    expect([...(await presentIds(db))].sort()).toEqual(['held']);
    expect((await tableCounts(db)).history).toBe(2);

    release();
    await holder;
    const second = await pruneRuns(prunerDb, POLICY, { now: NOW });
    expect(second).toMatchObject({ runs: 1, historyRows: 2, signals: 1 });
    expect((await presentIds(db)).size).toBe(0);
  });

  it('compacts while a worker keeps appending to the same run, losing no event', async () => {
    await insertRunRow(db, 'busy');
    await insertLongHistory(db, 'busy', 1, 500);
    const initialEvents = expectedSummary(500).events;
    const appenderDb = await connection();
    const APPENDS = 300;
    let appending = true;
    const appender = (async () => {
      for (let i = 0; i < APPENDS; i++) {
        await appenderDb.query(`insert into rmapp_run_history (run_id, events) values ('busy', $1::jsonb)`, [
          JSON.stringify([{ type: 'tick' }, { type: 'tock' }]),
        ]);
      }
      appending = false;
    })();
    let compactions = 0;
    let foldedRows = 0;
    while (appending) {
      const r = await compactHistory(db, 'busy', { keepLast: 10 });
      foldedRows += r.compactedRows;
      compactions++;
    }
    await appender;
    const last = await compactHistory(db, 'busy', { keepLast: 10 });
    foldedRows += last.compactedRows;

    const rows = await historyRows(db, 'busy');
    expect(compactions).toBeGreaterThan(0);
    expect(rows).toHaveLength(11);
    const summaries = rows.filter((r) => r.events[0]?.type === HISTORY_COMPACTED);
    expect(summaries).toHaveLength(1);
    expect(rows[0]?.events[0]?.type).toBe(HISTORY_COMPACTED);
    const data = rows[0]?.events[0]?.data as { events: number; rows: number; byType: Record<string, number> };
    const keptEvents = rows.slice(1).reduce((n, r) => n + r.events.length, 0);
    expect(data.events + keptEvents).toBe(initialEvents + 2 * APPENDS);
    expect(data.rows + 10).toBe(500 + APPENDS);
    expect(data.rows).toBe(foldedRows);
    expect((data.byType.tick ?? 0) + rows.slice(1).filter((r) => r.events[0]?.type === 'tick').length).toBe(APPENDS);
  });

  it('two compactions of one run at once keep one summary whose counts add up', async () => {
    await insertRunRow(db, 'twice');
    await insertLongHistory(db, 'twice', 1, 300);
    const bDb = await connection();
    const [bPid] = await bDb.query<{ pid: number }>('select pg_backend_pid() as pid');
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let compactedA!: () => void;
    const aDone = new Promise<void>((resolve) => (compactedA = resolve));
    // A compacts inside a transaction it keeps open: rows 1..200 are locked, folded, not yet committed.
    const a = rawTransaction(testDb.url, async (tx) => {
      const r = await compactHistory(tx, 'twice', { keepLast: 100 });
      compactedA();
      await released;
      return r;
    });
    await aDone;
    await insertLongHistory(db, 'twice', 301, 350);
    // B starts from a snapshot without A's summary and must wait for A's locks.
    const b = compactHistory(bDb, 'twice', { keepLast: 100 });
    for (;;) {
      const [w] = await db.query<{ n: number }>(`select count(*)::int as n from pg_locks where pid = $1 and not granted`, [bPid?.pid]);
      if ((w?.n ?? 0) > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    release();
    const [ra, rb] = await Promise.all([a, b]);

    expect(ra).toMatchObject({ compactedRows: 200, compactedEvents: expectedSummary(200).events });
    expect(rb.compactedRows).toBe(50);
    const rows = await historyRows(db, 'twice');
    expect(rows).toHaveLength(101);
    expect(rows.filter((r) => r.events[0]?.type === HISTORY_COMPACTED)).toHaveLength(1);
    expect(rows[0]?.events).toEqual([{ type: HISTORY_COMPACTED, data: expectedSummary(250) }]);
  });

  it('rmapp prune prints what it would delete and what it deleted, and rejects a bad age in one line', async () => {
    for (const f of FIXTURES) await insertFixture(db, f);
    const out: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
    const errors: string[] = [];
    const errSpy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      errors.push(String(chunk));
      return true;
    });
    const cli = () => {
      const program = new Command().exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
      addPruneCommand(program, () => openDatabase({ url: testDb.url, maxConnections: 1 }));
      return program;
    };
    try {
      // Ages measured from the real clock: the fixtures finished long before NOW, which is in the past.
      await cli().parseAsync(['prune', '--dry-run', '--json', '--failed', '365d'], { from: 'user' });
      const dry = JSON.parse(out.join('')) as { dryRun: boolean; runs: number; policy: Record<string, number | null> };
      expect(dry.dryRun).toBe(true);
      expect(dry.policy).toEqual({
        succeededMs: DEFAULT_RETENTION.succeededMs,
        failedMs: 365 * DAY,
        cancelledMs: DEFAULT_RETENTION.cancelledMs,
      });
      const finishedCount = (await tableCounts(db)).runs;
      expect(dry.runs).toBeGreaterThan(0);
      expect(finishedCount).toBe(FIXTURES.length);

      out.length = 0;
      await cli().parseAsync(['prune', '--failed', 'never', '--succeeded', '1h', '--cancelled', '1h'], { from: 'user' });
      expect(out.join('')).toMatch(
        /^Deleted \d+ finished runs \(succeeded \d+, failed 0, cancelled \d+\), \d+ history rows, \d+ signals and \d+ artifacts; kept: succeeded 1h, failed forever, cancelled 1h after finishing\.\n$/,
      );
      // Runs kept less than webhook deliveries are accepted: a copy of a pruned delivery's body would be new again.
      expect(errors.join('')).toMatch(
        /^rmapp prune: finished runs kept 1h, less than the 73h in which GitHub webhook deliveries are accepted.*\.\n$/,
      );
      const failedLeft = await db.query<{ n: number }>(`select count(*)::int as n from rmapp_runs where status = 'failed'`);
      expect(failedLeft[0]?.n).toBe(FIXTURES.filter((f) => f.status === 'failed').length);

      const bad = await cli()
        .parseAsync(['prune', '--failed', 'soon'], { from: 'user' })
        .catch((e: unknown) => e as Error);
      expect(bad).toBeInstanceOf(Error);
      expect((bad as Error).message).toContain('"soon"');
      expect((bad as Error).message).not.toContain('\n');
    } finally {
      spy.mockRestore();
      errSpy.mockRestore();
    }
  });
});

describe('parseDuration', () => {
  it('reads each unit', () => {
    expect(parseDuration('7d')).toBe(7 * DAY);
    expect(parseDuration('12h')).toBe(12 * HOUR);
    expect(parseDuration('30m')).toBe(30 * 60_000);
    expect(parseDuration('45s')).toBe(45_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration(' 0s ')).toBe(0);
  });

  it.each(['7', '7 days', '1.5h', '-1d', 'd', '', '7w', '10y'])('rejects %j naming the value and the accepted forms', (bad) => {
    expect(() => parseDuration(bad)).toThrow(`Invalid duration ${JSON.stringify(bad)}`);
    expect(() => parseDuration(bad)).toThrow(/7d, 12h, 30m, 45s, 500ms/);
  });

  it('a whole number with a unit that is only too large is told so, not that it is no whole number', () => {
    expect(() => parseDuration('99999999999999d')).toThrow('Invalid duration "99999999999999d": too long; at most 104249991d.');
    expect(parseDuration('104249991d')).toBe(104249991 * DAY);
  });
});

describe('retention job scheduling', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A store whose first query blocks until released; every statement reports an empty result. */
  function blockingStore() {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let calls = 0;
    const db: PruneStore = {
      async query<T>(text: string): Promise<T[]> {
        calls++;
        if (calls === 1) await gate;
        // The prune's scan, and the compaction's list of long histories, find nothing.
        if (text.includes('group by run_id') || text.startsWith('select r.id from rmapp_runs')) return [];
        return [{ runs: 0, history_rows: 0, signals: 0, artifacts: 0, by_status: {} }] as T[];
      },
      async script<T>(): Promise<T[]> {
        return [{ runs: 0, history_rows: 0, signals: 0, artifacts: 0, by_status: {}, ids: [] }] as T[];
      },
    };
    return { db, release, calls: () => calls };
  }

  const options = { policy: DEFAULT_RETENTION, history: { maxRows: 1_000, keepLast: 100 } };

  it('never overlaps a running pass, and stop() waits for it', async () => {
    vi.useFakeTimers();
    const store = blockingStore();
    const job = startRetentionJob(store.db, { ...options, intervalMs: 1_000 });
    vi.advanceTimersByTime(1_000); // first scheduled pass starts and blocks
    const pass = job.runOnce();
    expect(job.runOnce()).toBe(pass);
    vi.advanceTimersByTime(10_000); // ten more ticks while it runs
    expect(store.calls()).toBe(1);
    let stopped = false;
    const stopping = job.stop().then(() => (stopped = true));
    await Promise.resolve();
    expect(stopped).toBe(false);
    store.release();
    await stopping;
    expect(stopped).toBe(true);
    // Stopped during pruning: it ends at the batch boundary and compaction does not start.
    expect(await pass).toEqual({
      pruned: { runs: 0, historyRows: 0, signals: 0, artifacts: 0, byStatus: { succeeded: 0, failed: 0, cancelled: 0 } },
      compactedRuns: 0,
    });
  });

  it('reports a failing scheduled pass through onError and goes on', async () => {
    vi.useFakeTimers();
    const errors: unknown[] = [];
    let calls = 0;
    const db: PruneStore = {
      async query() {
        calls++;
        throw new Error(`connection refused #${calls}`);
      },
      async script() {
        calls++;
        throw new Error(`connection refused #${calls}`);
      },
    };
    const job = startRetentionJob(db, { ...options, intervalMs: 1_000, onError: (err) => errors.push(err) });
    await vi.advanceTimersByTimeAsync(1_000);
    await vi.advanceTimersByTimeAsync(1_000);
    await job.stop();
    expect(errors).toHaveLength(2);
    expect(errors[0]).toBeInstanceOf(AggregateError);
    expect((errors[0] as Error).message).toMatch(/connection refused #1; connection refused #2/);
  });

  it('reports through its logger in one line when no onError is given', async () => {
    vi.useFakeTimers();
    const lines: string[] = [];
    const logger = { error: (_fields: unknown, message?: string) => void lines.push(String(message)), warn: () => {} };
    const db: PruneStore = {
      async query() {
        throw new Error('boom\nwith a second line');
      },
      async script() {
        throw new Error('boom\nwith a second line');
      },
    };
    const job = startRetentionJob(db, { ...options, intervalMs: 1_000, logger });
    await vi.advanceTimersByTimeAsync(1_000);
    await job.stop();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^rmapp retention: pass failed: .*boom/);
    expect(lines[0]).not.toContain('\n');
  });
});
