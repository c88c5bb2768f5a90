/**
 * A retried run queued for a slot of its concurrency key is cancelled in place (state_machine/pending-cancel.ts),
 * and the call never learns the outcome: every answer to the cancellation is lost, or its process is
 * killed after the statement was applied. The cancellation used to throw the last connection error after
 * five sendings; the run was cancelled, its definition's cleanup never ran, and a cancel called again
 * answered "already finished". Now the call gives up with a retryable `CANCEL_OUTCOME_UNKNOWN`, the run
 * carries the mark that its cleanup is owed, and the next cancel runs it — once. Real Postgres; the
 * cleanups are counted in a ledger file outside the engine; the killed process is a real one.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createEngine, openDatabase, type Database, type Engine } from '../src/index.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { hookedStore } from './helpers/hooked-store.ts';
import { runRmapp, until } from './helpers/processes.ts';
import { spawnHeldCanceller } from './helpers/held-canceller.ts';
import { failingKeys, queuedCleanup } from './fixtures/h2-queued-cleanup.ts';
import { readJsonLines } from './helpers/ledger.ts';

/** The in-place cancellation of a pending run (persistence/run-admin.ts `cancelPendingRun`). */
const isPendingCancel = (sql: string) => sql.includes("set status = 'cancelled'") && sql.includes("status = 'pending'");
const lostReply = () => Object.assign(new Error('connection reset after COMMIT (test)'), { code: 'ECONNRESET' });

let testDb: TestDatabase;
let dir: string;
let ledger: string;
const closers: (() => Promise<unknown>)[] = [];

beforeEach(async () => {
  testDb = await createTestDatabase();
  dir = mkdtempSync(join(tmpdir(), 'h2-cleanup-'));
  ledger = join(dir, 'cleanups.jsonl');
  process.env.H2_CLEANUP_LEDGER = ledger;
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => {});
  delete process.env.H2_CLEANUP_LEDGER;
  await testDb.drop();
  rmSync(dir, { recursive: true, force: true });
});

/** The cleanups the ledger saw, of run `runId`. */
function cleanupsOf(runId: string): { runId: string; pid: number; reason: string; context: unknown }[] {
  return readJsonLines<{ runId: string; pid: number; reason: string; context: unknown }>(ledger).filter((c) => c.runId === runId);
}

/** A run of `key` that failed, then retried with no worker running: it waits in its key's queue (pending, with a snapshot). */
async function queuedRetriedRun(key: string): Promise<string> {
  const worker = createEngine({ database: testDb.url, workflows: [queuedCleanup], pollMs: 50 });
  failingKeys.add(key);
  let id: string;
  try {
    await worker.startWorker();
    id = await worker.start(queuedCleanup, { key });
    expect((await worker.waitFor(id, { timeoutMs: 30_000 })).status).toBe('failed');
  } finally {
    failingKeys.delete(key);
    await worker.stop();
  }
  const client = createEngine({ database: testDb.url, workflows: [queuedCleanup] });
  try {
    expect((await client.retry(id)).status, 'the retried keyed run goes back to its queue').toBe('pending');
  } finally {
    await client.stop();
  }
  return id;
}

async function rowOf(db: Database, id: string) {
  const [row] = await db.query<{ status: string; status_message: string | null }>(
    'select status, status_message from rmapp_runs where id = $1',
    [id],
  );
  return row;
}

it('every answer lost: cancel throws a retryable CANCEL_OUTCOME_UNKNOWN, and the next cancel runs the owed cleanup once', async () => {
  const id = await queuedRetriedRun('lost');
  const store = await openDatabase({ url: testDb.url });
  closers.push(() => store.close());
  let losing = true;
  let sendings = 0;
  const db = hookedStore(
    store,
    () => {},
    (sql) => {
      if (!isPendingCancel(sql)) return;
      sendings += 1;
      if (losing) throw lostReply();
    },
  );
  const engine: Engine = createEngine({ database: db, workflows: [queuedCleanup] });
  closers.push(() => engine.stop());

  const first = await engine.cancel(id, 'not wanted').then(
    (r) => ({ returned: r }),
    (err: unknown) => ({ threw: err as { code?: string; category?: string; message: string } }),
  );
  expect('threw' in first ? first.threw : first, 'the cancel whose every answer was lost').toMatchObject({
    code: 'CANCEL_OUTCOME_UNKNOWN',
    category: 'transient',
  });
  expect(sendings, 'the cancellation was sent again while its outcome was unknown').toBeGreaterThan(1);
  const row = await rowOf(store, id);
  expect(row?.status, 'the statement was applied').toBe('cancelled');
  expect(row?.status_message, 'the run says its cleanup is owed').toMatch(/cleanup has not run yet/);
  expect(cleanupsOf(id), 'no cleanup ran: the call never learnt the run was cancelled').toEqual([]);

  losing = false;
  const again = await engine.cancel(id, 'not wanted');
  expect(again, 'the cancel called again finishes the work').toMatchObject({ cancelled: true, status: 'cancelled' });
  expect(
    cleanupsOf(id).map((c) => ({ reason: c.reason, context: c.context })),
    'the cleanup ran, once, with the run’s context',
  ).toEqual([{ reason: 'not wanted', context: { key: 'lost' } }]);
  expect((await rowOf(store, id))?.status_message, 'the mark is cleared').toBeNull();

  const third = await engine.cancel(id, 'not wanted');
  expect(third, 'a third cancel has nothing left to do').toMatchObject({ cancelled: false, status: 'cancelled' });
  expect(cleanupsOf(id), 'still one cleanup').toHaveLength(1);
  const history = await engine.history(id);
  expect(
    history.filter((h) => h.type === 'run.cancelled'),
    'one run.cancelled entry',
  ).toHaveLength(1);
}, 90_000);

it('a cancel answered at once runs the cleanup itself and leaves nothing owed', async () => {
  const id = await queuedRetriedRun('plain');
  const engine = createEngine({ database: testDb.url, workflows: [queuedCleanup] });
  closers.push(() => engine.stop());
  expect(await engine.cancel(id, 'plain')).toMatchObject({ cancelled: true, status: 'cancelled' });
  expect(cleanupsOf(id)).toHaveLength(1);
  const db = await engine.db();
  expect((await rowOf(db, id))?.status_message, 'nothing owed').toBeNull();
  expect(await engine.cancel(id, 'plain')).toMatchObject({ cancelled: false });
  expect(cleanupsOf(id), 'the cleanup ran once').toHaveLength(1);
}, 60_000);

it('the process cancelling is killed after its statement was applied: the next cancel, in another process, runs the cleanup once', async () => {
  const id = await queuedRetriedRun('killed');
  // A real process with the same definition, whose cancellation's answer is held back a minute: the run
  // is cancelled in the database before the process hears it.
  const { child, output, exited } = spawnHeldCanceller({
    fixture: 'test/fixtures/h2-queued-cleanup.ts',
    exportName: 'queuedCleanup',
    databaseUrl: testDb.url,
    runId: id,
    reason: 'from the killed process',
    env: { H2_CLEANUP_LEDGER: ledger },
  });
  closers.push(async () => {
    child.kill('SIGKILL');
    await exited;
  });
  const engine = createEngine({ database: testDb.url, workflows: [queuedCleanup] });
  closers.push(() => engine.stop());
  const db = await engine.db();
  await until(async () => (await rowOf(db, id))?.status === 'cancelled', 30_000, `the child's cancellation to be applied (${output()})`);
  child.kill('SIGKILL');
  expect(await exited, `the child was killed before its cancel returned (${output()})`).toBe('SIGKILL');
  expect(output()).not.toMatch(/returned/);
  expect(cleanupsOf(id), 'the killed process ran no cleanup').toEqual([]);
  expect((await rowOf(db, id))?.status_message).toMatch(/cleanup has not run yet/);

  expect(await engine.cancel(id, 'a second look')).toMatchObject({ cancelled: true, status: 'cancelled' });
  const ran = cleanupsOf(id);
  expect(
    ran.map((c) => ({ pid: c.pid, reason: c.reason })),
    'the cleanup ran once, here, with the reason of the cancellation that ended the run',
  ).toEqual([{ pid: process.pid, reason: 'from the killed process' }]);
  expect(await engine.cancel(id)).toMatchObject({ cancelled: false });
  expect(cleanupsOf(id)).toHaveLength(1);
}, 90_000);

it('rmapp runs cancel whose every sending fails unapplied (RMAPP_DB_FAULT=cancel:fail) exits with the retryable error; the run stays queued, and the next cancel cancels it and runs the cleanup once', async () => {
  const id = await queuedRetriedRun('unapplied');
  const out = await runRmapp(['runs', 'cancel', id, '--reason', 'from the CLI'], {
    DATABASE_URL: testDb.url,
    RMAPP_DB_FAULT: 'cancel:fail:1:600000',
  });
  expect(out.code, `${out.stdout}${out.stderr}`).not.toBe(0);
  expect(out.stdout + out.stderr, 'the operator is told the outcome is unknown and what to do').toMatch(
    /no answer came[\s\S]*Cancel it again/,
  );
  const engine = createEngine({ database: testDb.url, workflows: [queuedCleanup] });
  closers.push(() => engine.stop());
  const db = await engine.db();
  expect((await rowOf(db, id))?.status, 'nothing was applied').toBe('pending');
  expect(await engine.cancel(id, 'second try')).toMatchObject({ cancelled: true, status: 'cancelled' });
  expect(
    cleanupsOf(id).map((c) => c.reason),
    'the cleanup ran once',
  ).toEqual(['second try']);
  expect((await rowOf(db, id))?.status_message).toBeNull();
}, 90_000);
