/**
 * A worker runs the cleanups owed by runs cancelled while queued (src/state_machine/owed-cleanups.ts)
 * without anyone cancelling them again — once, whatever races it: two workers sweeping at once with
 * cancels called meanwhile, the cancelling process SIGKILLed while it held the run's cleanup lock, the
 * sweep's backend terminated (pg_terminate_backend; Postgres is never restarted), a mark forged on a run
 * that never ran, and a sweep and a cancel of one engine on PGlite. Each cleanup writes its start and end
 * to a ledger file outside the engine (test/fixtures/owed-cleanup-sweep.ts); the sweep's query reads the
 * partial index of migration 0022.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createEngine, openDatabase, type Database, type Engine } from '../src/index.ts';
import { encodeHistory } from '../src/persistence/history-codec.ts';
import { CLEANUP_OWED, cancelPendingRun, owedCleanupRuns } from '../src/persistence/run-admin.ts';
import { sweptCleanup, sweptCleanupAt } from './fixtures/owed-cleanup-sweep.ts';
import { hookedStore } from './helpers/hooked-store.ts';
import { readJsonLines } from './helpers/ledger.ts';
import { createTestDatabase, rawTransaction, type TestDatabase } from './helpers/postgres.ts';
import { until } from './helpers/processes.ts';
import { spawnHeldCanceller } from './helpers/held-canceller.ts';

/** The sweep's query (persistence/run-admin.ts `owedCleanupRuns`), told apart from every other statement. */
const isSweep = (sql: string) => sql.includes("r.status = 'cancelled'") && sql.includes('jsonb_array_elements');
/** Sweeps every lease: the shortest lease the engine takes, so that a test sees several. */
const LEASE_MS = 600;

interface Entry {
  runId: string;
  phase: 'start' | 'end';
  pid: number;
  reason: string;
  context: unknown;
}

let dir: string;
let ledger: string;
const closers: (() => Promise<unknown>)[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'owed-sweep-'));
  ledger = join(dir, 'cleanups.jsonl');
  process.env.OWED_SWEEP_LEDGER = ledger;
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => {});
  delete process.env.OWED_SWEEP_LEDGER;
  rmSync(dir, { recursive: true, force: true });
});

function entriesOf(runId: string): Entry[] {
  return readJsonLines<Entry>(ledger).filter((e) => e.runId === runId);
}

/** What is wrong with run `runId`'s cleanups: not exactly one start followed by its end. */
function problemsOf(runId: string): string | null {
  const phases = entriesOf(runId).map((e) => `${e.phase}@${e.pid}`);
  return phases.length === 2 && phases[0]?.startsWith('start') && phases[1]?.startsWith('end') ? null : `${runId}: ${phases.join(' ')}`;
}

function engine(database: Database | string, options: { workflows?: unknown[]; logger?: Logs } = {}): Engine {
  const e = createEngine({
    database: typeof database === 'string' ? { url: database } : database,
    workflows: (options.workflows ?? [sweptCleanup]) as never,
    pollMs: 100,
    leaseMs: LEASE_MS,
    ...(options.logger ? { logger: options.logger } : {}),
  });
  closers.push(() => e.stop());
  return e;
}

/** A worker on a store of its own whose sweeps are counted; resolves, once it runs, to their count so far. */
async function sweepingWorker(url: string): Promise<() => number> {
  let sweeps = 0;
  const worker = engine(
    hookedStore(await openDatabase({ url }), (sql) => {
      if (isSweep(sql)) sweeps += 1;
    }),
  );
  await worker.startWorker();
  return () => sweeps;
}

/** A logger that keeps what it is told. */
type Logs = { error: (...a: unknown[]) => void; warn: (...a: unknown[]) => void; lines: string[] };
function logs(): Logs {
  const lines: string[] = [];
  const keep = (...a: unknown[]) => void lines.push(a.map((x) => (typeof x === 'string' ? x : '')).join(' '));
  return { error: keep, warn: keep, lines };
}

/**
 * `n` runs that failed and were retried into their keys' queues (pending, with a snapshot), made with
 * no worker left running: nothing takes them before the test cancels them.
 */
async function queuedRetriedRuns(db: Database, n: number, prefix: string): Promise<string[]> {
  const worker = createEngine({ database: db, workflows: [sweptCleanup], pollMs: 50 });
  const ids: string[] = [];
  try {
    await worker.startWorker();
    for (let i = 0; i < n; i++) ids.push(await worker.start(sweptCleanup, { key: `${prefix}-${i}` }));
    for (const id of ids) expect((await worker.waitFor(id, { timeoutMs: 30_000 })).status).toBe('failed');
  } finally {
    await worker.stop();
  }
  const client = createEngine({ database: db, workflows: [sweptCleanup] });
  try {
    for (const id of ids) expect((await client.retry(id)).status, 'the retried keyed run goes back to its queue').toBe('pending');
  } finally {
    await client.stop();
  }
  return ids;
}

/**
 * Cancels pending run `id` in place with its cleanup owed, as `engine.cancel` does — the statement
 * applied, and its caller gone before it ran the cleanup (persistence/run-admin.ts `cancelPendingRun`).
 */
async function cancelledCallerGone(db: Database, id: string, reason: string): Promise<void> {
  const [row] = await db.query<{ version: number }>('select version from rmapp_runs where id = $1', [id]);
  const history = encodeHistory([{ type: 'run.cancelled', data: { reason } }]);
  const error = { name: 'WorkflowError', message: reason, code: 'CANCELLED', category: 'cancelled' };
  const done = await cancelPendingRun(db, { id, version: Number(row?.version), error, history, worker: 'gone', cleanupOwed: true });
  expect(done, `run ${id} cancelled in place`).toBe('cancelled');
}

async function messageOf(db: Database, id: string): Promise<string | null | undefined> {
  const [row] = await db.query<{ status_message: string | null }>('select status_message from rmapp_runs where id = $1', [id]);
  return row?.status_message;
}

describe('owed cleanups on Postgres', () => {
  let testDb: TestDatabase;
  let store: Database;
  beforeEach(async () => {
    testDb = await createTestDatabase();
    store = await openDatabase({ url: testDb.url });
    closers.push(() => testDb.drop());
    closers.push(() => store.close());
  });

  it('two workers sweeping at once, with cancels called meanwhile, run each owed cleanup exactly once', async () => {
    const ids = await queuedRetriedRuns(store, 8, 'two');
    for (const id of ids) await cancelledCallerGone(store, id, 'caller gone');
    // Two workers on stores of their own (two sessions: the cleanup lock tells them apart), started together.
    const a = engine(testDb.url);
    const b = engine(testDb.url);
    await Promise.all([a.startWorker(), b.startWorker()]);
    // And an operator cancelling every run again meanwhile, from a third engine.
    const c = engine(testDb.url);
    const answers = await Promise.all(ids.map((id) => c.cancel(id, 'again')));
    await until(async () => ids.every((id) => entriesOf(id).some((e) => e.phase === 'end')), 60_000, 'every owed cleanup ran');
    // Several more sweeps of both workers: nothing runs again.
    await sleep(4 * LEASE_MS);
    const problems = ids.map(problemsOf).filter((p) => p !== null);
    expect(problems, `runs whose cleanup did not run exactly once (cancels said: ${answers.map((x) => x.message).join(' | ')})`).toEqual(
      [],
    );
    for (const id of ids) {
      expect(await messageOf(store, id), `the mark of run ${id} is cleared`).toBeNull();
      expect(entriesOf(id)[0], 'with the reason of the cancellation that ended the run and its context').toMatchObject({
        reason: 'caller gone',
        context: { key: expect.stringMatching(/^two-/) },
      });
    }
  }, 120_000);

  it('a cancel that read the run as owed just before a worker ran its cleanup reads it again once it holds the lock: nothing runs twice', async () => {
    const [id] = await queuedRetriedRuns(store, 1, 'read-before');
    if (!id) throw new Error('no run');
    await cancelledCallerGone(store, id, 'read before');
    // The cancel's read of the run is answered only once a worker's sweep has run the cleanup and let
    // go of its lock: the cancel then holds the lock with a stale view of the run.
    let read = false;
    let letGo: () => void = () => {};
    const held = new Promise<void>((resolve) => (letGo = resolve));
    const c = engine(
      hookedStore(
        await openDatabase({ url: testDb.url }),
        () => {},
        async (sql) => {
          if (read || !sql.includes('status_message, snapshot') || !sql.includes('where id = $1')) return;
          read = true;
          await held;
        },
      ),
    );
    const answer = c.cancel(id, 'again');
    await until(() => read, 30_000, "the cancel's read");
    const worker = engine(testDb.url);
    await worker.startWorker();
    await until(async () => (await messageOf(store, id)) === null, 30_000, "the worker's sweep ran the cleanup and cleared the mark");
    letGo();
    const said = await answer;
    expect(problemsOf(id), `the cleanup ran exactly once (the cancel said: ${said.message})`).toBeNull();
    expect(said).toMatchObject({ cancelled: false, status: 'cancelled' });
  }, 60_000);

  it('the cancelling process SIGKILLed while it held the cleanup lock: a worker runs the cleanup once, after the kill, with no cancel', async () => {
    const [id] = await queuedRetriedRuns(store, 1, 'killed');
    if (!id) throw new Error('no run');
    // A real process whose cancellation is applied and whose answer is held back a minute: it holds the
    // run's cleanup lock, the run shows the mark.
    const { child, output, exited } = spawnHeldCanceller({
      fixture: 'test/fixtures/owed-cleanup-sweep.ts',
      exportName: 'sweptCleanup',
      databaseUrl: testDb.url,
      runId: id,
      reason: 'from the killed process',
    });
    closers.push(async () => {
      child.kill('SIGKILL');
      await exited;
    });
    await until(async () => (await messageOf(store, id)) === CLEANUP_OWED, 30_000, `the child's cancellation to be applied (${output()})`);

    const sweeps = await sweepingWorker(testDb.url);
    await until(() => sweeps() >= 3, 30_000, 'three sweeps');
    expect(entriesOf(id), 'no cleanup while the cancelling process lives and holds the lock').toEqual([]);

    child.kill('SIGKILL');
    expect(await exited, `the child was killed before its cancel returned (${output()})`).toBe('SIGKILL');
    expect(output()).not.toMatch(/returned/);
    await until(() => entriesOf(id).some((e) => e.phase === 'end'), 30_000, 'the owed cleanup run by the worker');
    const after = sweeps();
    await until(() => sweeps() >= after + 3, 30_000, 'three more sweeps');
    expect(problemsOf(id), 'the cleanup ran exactly once').toBeNull();
    expect(entriesOf(id)[0], 'here, with the killed cancellation’s reason').toMatchObject({
      pid: process.pid,
      reason: 'from the killed process',
    });
    expect(await messageOf(store, id)).toBeNull();
  }, 120_000);

  it('a mark forged on a cancelled run that never ran: no worker runs a cleanup, and the run is left as it is', async () => {
    const client = engine(testDb.url);
    const id = await client.start(sweptCleanup, { key: 'never-ran' });
    expect((await client.cancel(id, 'before it ran')).cancelled).toBe(true);
    await store.query('update rmapp_runs set status_message = $2 where id = $1', [id, CLEANUP_OWED]);
    const sweeps = await sweepingWorker(testDb.url);
    await until(() => sweeps() >= 3, 30_000, 'three sweeps');
    expect(entriesOf(id), 'cleanups of a run that never ran').toEqual([]);
    expect(await messageOf(store, id), 'the sweep left the forged message alone').toBe(CLEANUP_OWED);
    expect((await client.cancel(id, 'again')).cancelled, 'nor does a cancel run one').toBe(false);
    expect(entriesOf(id)).toEqual([]);
  }, 60_000);

  it("the sweep's backend terminated mid-query (pg_terminate_backend): the failure is logged, and the next sweep runs the cleanup once", async () => {
    const [id] = await queuedRetriedRuns(store, 1, 'terminated');
    if (!id) throw new Error('no run');
    await cancelledCallerGone(store, id, 'terminated');
    const log = logs();
    // The worker's first sweep is held back until the table is locked: its query then waits on the lock,
    // and its backend is terminated while it waits. Everything else the worker sends meanwhile waits too.
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => (open = resolve));
    const worker = engine(
      hookedStore(await openDatabase({ url: testDb.url }), (sql) => (isSweep(sql) ? gate : undefined)),
      { logger: log },
    );
    await worker.startWorker();
    const terminated = await rawTransaction(testDb.url, async (tx) => {
      await tx.query('lock table rmapp_runs in access exclusive mode');
      open();
      let pids: number[] = [];
      await until(
        async () => {
          const rows = await store.query<{ pid: number; query: string }>(
            `select pid, query from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
          );
          pids = rows.filter((r) => isSweep(r.query)).map((r) => r.pid);
          return pids.length > 0;
        },
        30_000,
        "the sweep's query waiting on the lock",
      );
      // Its LISTEN connection, which holds the cleanup locks, goes too.
      const listeners = await store.query<{ pid: number }>(
        `select pid from pg_stat_activity where datname = current_database() and query like 'LISTEN%' and pid <> pg_backend_pid()`,
      );
      const all = [...pids, ...listeners.map((l) => l.pid)];
      await store.query('select pg_terminate_backend(pid) from unnest($1::int[]) pid', [all]);
      return pids;
    });
    expect(terminated.length, 'the sweep backend terminated').toBeGreaterThan(0);
    await until(() => entriesOf(id).some((e) => e.phase === 'end'), 60_000, 'the owed cleanup run after the termination');
    await sleep(4 * LEASE_MS);
    expect(problemsOf(id), 'the cleanup ran exactly once').toBeNull();
    expect(await messageOf(store, id)).toBeNull();
    expect(
      log.lines.filter((l) => /could not run the cleanups owed/.test(l)),
      `the terminated sweep is reported (logged: ${log.lines.join(' | ')})`,
    ).not.toEqual([]);
  }, 120_000);

  it("an engine without the run's version says the cleanup is owed and which version's worker runs it", async () => {
    const [id] = await queuedRetriedRuns(store, 1, 'other-version');
    if (!id) throw new Error('no run');
    await cancelledCallerGone(store, id, 'owed');
    const other = engine(testDb.url, { workflows: [sweptCleanupAt('2')] });
    await other.startWorker();
    const answer = await other.cancel(id, 'again');
    expect(answer).toMatchObject({ cancelled: false, status: 'cancelled' });
    expect(answer.message).toMatch(/cleanup is still owed/);
    expect(answer.message).toContain('owed.swept-cleanup@1');
    expect(answer.message).not.toMatch(/already finished/);
    expect(entriesOf(id), 'no cleanup by a worker of another version').toEqual([]);
    expect(await messageOf(store, id)).toBe(CLEANUP_OWED);
  }, 60_000);

  it("the sweep's query reads the partial index among many cancelled runs, in a custom and a generic plan", async () => {
    await store.query(
      `insert into rmapp_runs (id, workflow, workflow_version, status, snapshot, finished_at)
       select 'bulk-' || g, 'owed.swept-cleanup', '1', 'cancelled', '{}'::jsonb, now() from generate_series(1, 20000) g`,
    );
    await store.query(`update rmapp_runs set status_message = $1 where id in ('bulk-17', 'bulk-4242')`, [CLEANUP_OWED]);
    await store.query('analyze rmapp_runs');
    let sql = '';
    let params: readonly unknown[] = [];
    const seen = hookedStore(store, (text, p) => {
      sql = text;
      params = p ?? [];
    });
    expect((await owedCleanupRuns(seen, [['owed.swept-cleanup', '1']], 100)).map((r) => r.id)).toEqual(['bulk-17', 'bulk-4242']);
    for (const mode of ['force_custom_plan', 'force_generic_plan']) {
      const plan = await rawTransaction(testDb.url, async (tx) => {
        await tx.query(`set local plan_cache_mode = ${mode}`);
        const rows = await tx.query<Record<string, unknown>>(`explain (format json) ${sql}`, params);
        return JSON.stringify(rows);
      });
      expect(plan, `the ${mode} plan`).toContain('rmapp_runs_cleanup_owed_idx');
    }
  }, 60_000);
});

describe('owed cleanups on PGlite', () => {
  it('a sweep and cancels of the same engine and of another run the owed cleanup once; the index is there', async () => {
    const db = await openDatabase({ url: '', dataDir: 'memory://' });
    closers.push(() => db.close());
    const [id, unattended] = await queuedRetriedRuns(db, 2, 'pglite');
    if (!id || !unattended) throw new Error('no run');
    await cancelledCallerGone(db, id, 'pglite');
    // Cancelled again by nobody: the sweep alone runs its cleanup.
    await cancelledCallerGone(db, unattended, 'pglite');
    const a = engine(db);
    const b = engine(db);
    await a.startWorker();
    const answers = await Promise.all([a.cancel(id, 'again'), b.cancel(id, 'again'), a.cancel(id, 'again')]);
    await until(() => entriesOf(id).some((e) => e.phase === 'end'), 30_000, 'the owed cleanup ran');
    await sleep(4 * LEASE_MS);
    expect(problemsOf(id), `the cleanup ran exactly once (cancels said: ${answers.map((x) => x.message).join(' | ')})`).toBeNull();
    expect(await messageOf(db, id)).toBeNull();
    await until(() => entriesOf(unattended).some((e) => e.phase === 'end'), 30_000, 'the sweep ran the unattended cleanup');
    expect(problemsOf(unattended), 'the cleanup nobody cancelled again ran exactly once').toBeNull();
    const indexes = await db.query<{ indexdef: string }>(`select indexdef from pg_indexes where indexname = 'rmapp_runs_cleanup_owed_idx'`);
    expect(indexes.map((i) => i.indexdef).join(), 'migration 0022 on PGlite').toMatch(/WHERE .*status_message IS NOT NULL/i);
  }, 60_000);
});
