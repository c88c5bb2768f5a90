/**
 * Ownership edge cases found by trying to break the lease rules (issue 19's review): a step waking from
 * a durable sleep after its worker lost the database, a renewal at an epoch the worker no longer holds,
 * and a commit the server cancels. Each builds the exact interleaving with two engines in this process.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, openDatabase, step, type Database } from '../src/index.ts';
import { claimRuns, renewLeases } from '../src/persistence/claims.ts';
import { insertRun } from '../src/persistence/runs.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { until } from './helpers/processes.ts';
import { hookedStore } from './helpers/hooked-store.ts';

let testDb: TestDatabase;
let db: Database;
beforeAll(async () => {
  testDb = await createTestDatabase();
  db = await openDatabase({ url: testDb.url });
  await createEngine({ database: db, workflows: [] }).db();
});
afterAll(async () => {
  await db.close();
  await testDb.drop();
});

/** A store whose statements all fail like a lost network while `cut()` says so. */
function partitioned(store: Database, cut: () => boolean): Database {
  return hookedStore(store, () => {
    if (cut()) throw Object.assign(new Error('network partition (test)'), { code: 'ECONNRESET' });
  });
}

it('a step waking from ctx.sleep after its worker lost the database does not resume there: only the new owner runs the rest', async () => {
  const who = new AsyncLocalStorage<string>();
  const resumedBy: string[] = [];
  const work = step(async (ctx) => {
    await ctx.sleep(2_500);
    resumedBy.push(`${who.getStore()} attempt ${ctx.attempt}`);
    return 1;
  });
  const machine = setup({ actors: { work } }).createMachine({
    id: 'sleeper',
    initial: 'a',
    states: { a: { invoke: { src: 'work', onDone: 'done' } }, done: { type: 'final' } },
  });
  const workflows = [defineWorkflow({ name: 'edge.sleep', machine, input: z.object({}) })];
  let cut = false;
  const storeA = await openDatabase({ url: testDb.url });
  const options = { workflows, leaseMs: 600, pollMs: 100, evictAfterMs: 60_000 };
  const a = createEngine({ ...options, database: partitioned(storeA, () => cut), workerId: 'A' });
  const b = createEngine({ ...options, database: testDb.url, workerId: 'B' });
  try {
    await who.run('A', () => a.startWorker());
    const id = await who.run('A', () => a.start('edge.sleep', {}));
    await until(async () => (await b.history(id)).some((h) => h.type === 'step.sleeping'), 10_000, 'the step to sleep durably');
    cut = true;
    await who.run('B', () => b.startWorker());
    const run = await b.waitFor(id, { timeoutMs: 20_000 });
    expect(run.status).toBe('succeeded');
    // A's own sleep ends while it cannot reach the database: it must not resume the work.
    await new Promise((r) => setTimeout(r, 500));
    expect(resumedBy, 'workers that ran the work after the sleep').toEqual(['B attempt 1']);
  } finally {
    a.simulateCrash();
    cut = false;
    await b.stop();
    await storeA.close();
  }
});

it('a renewal at an epoch the worker no longer holds (it claimed the run again after its lease expired) does not hold the run', async () => {
  const owner = 'edge:0000beef';
  const { id } = await insertRun(db, { id: 'edge-epoch', workflow: 'edge.none', workflowVersion: 'v', input: {} });
  const [first] = await claimRuns(db, { owner, leaseMs: 60_000, limit: 1, definitions: [['edge.none', 'v']] });
  await db.query(`update rmapp_runs set lease_expires_at = now(), wake_at = now() where id = $1`, [id]);
  const [second] = await claimRuns(db, { owner, leaseMs: 60_000, limit: 1, definitions: [['edge.none', 'v']] });
  expect([first?.leaseEpoch, second?.leaseEpoch], 'epochs of the two claims').toEqual([1, 2]);
  const old = await renewLeases(db, { owner, leaseMs: 60_000, runs: [{ id, epoch: 1 }] });
  expect([...old.held], 'runs held by the session of the first claim').toEqual([]);
  const current = await renewLeases(db, { owner, leaseMs: 60_000, runs: [{ id, epoch: 2 }] });
  expect([...current.held], 'runs held by the session of the second claim').toEqual([id]);
});

it('a renewal that queued behind a lock and commits after a later one does not move the lease back (another worker could claim the run)', async () => {
  const owner = 'edge:0000cafe';
  const { id } = await insertRun(db, { id: 'edge-backwards', workflow: 'edge.later', workflowVersion: 'v', input: {} });
  const [claimed] = await claimRuns(db, { owner, leaseMs: 60_000, limit: 1, definitions: [['edge.later', 'v']] });
  const runs = [{ id, epoch: claimed?.leaseEpoch ?? 0 }];
  const leaseOf = async () =>
    (
      await db.query<{ expires: Date; wake: Date }>(`select lease_expires_at as expires, wake_at as wake from rmapp_runs where id = $1`, [
        id,
      ])
    )[0];
  // The stale renewal's transaction began first: its now() is from before the later renewal was sent,
  // as for a renewal that waited on a lock while the worker sent the next one.
  const stale = new pg.Client({ connectionString: testDb.url });
  await stale.connect();
  try {
    await stale.query('begin');
    await stale.query('select now()');
    await new Promise((r) => setTimeout(r, 500));
    const later = await renewLeases(db, { owner, leaseMs: 2_000, runs });
    expect([...later.held], 'runs held after the later renewal').toEqual([id]);
    const trusted = await leaseOf();
    const staleDb = {
      query: async <T>(text: string, params?: readonly unknown[]) => (await stale.query(text, params as unknown[])).rows as T[],
    };
    const late = await renewLeases(staleDb, { owner, leaseMs: 2_000, runs });
    await stale.query('commit');
    expect([...late.held], 'runs held after the stale renewal').toEqual([id]);
    const after = await leaseOf();
    expect(after?.expires.getTime(), 'lease expiry after the stale renewal committed (it was moved back)').toBeGreaterThanOrEqual(
      trusted?.expires.getTime() ?? Infinity,
    );
    expect(after?.wake.getTime(), 'wake_at (when other workers may claim the run) after the stale renewal').toBeGreaterThanOrEqual(
      trusted?.wake.getTime() ?? Infinity,
    );
  } finally {
    await stale.end();
  }
});

it('a commit the server cancels (57014, as statement_timeout gives) is sent again: the run does not fail', async () => {
  const work = step(async () => {
    await new Promise((r) => setTimeout(r, 800));
    return 1;
  });
  const machine = setup({ actors: { work } }).createMachine({
    id: 'two',
    initial: 'a',
    states: { a: { invoke: { src: 'work', onDone: 'b' } }, b: { invoke: { src: 'work', onDone: 'done' } }, done: { type: 'final' } },
  });
  const engine = createEngine({
    database: testDb.url,
    workflows: [defineWorkflow({ name: 'edge.cancel', machine, input: z.object({}) })],
    leaseMs: 10_000,
  });
  const holder = await openDatabase({ url: testDb.url, maxConnections: 1 });
  try {
    await engine.startWorker();
    const id = await engine.start('edge.cancel', {});
    await until(async () => (await engine.history(id)).some((h) => h.type === 'step.started'), 10_000, 'the first step to start');
    // Another session holds the run's row: the commit that ends step a waits on it, and is cancelled.
    const [{ ok } = { ok: false }] = await holder.script<{ ok: boolean }>([
      'begin',
      `select true as ok from rmapp_runs where id = '${id}' for update`,
    ]);
    expect(ok).toBe(true);
    await until(
      async () =>
        (await db.query(`select pid from pg_stat_activity where datname = $1 and wait_event_type = 'Lock'`, [testDb.name])).length > 0,
      10_000,
      'the commit to wait on the row lock',
    );
    await db.query(`select pg_cancel_backend(pid) from pg_stat_activity where datname = $1 and wait_event_type = 'Lock'`, [testDb.name]);
    await holder.script(['commit']);
    const run = await engine.waitFor(id, { timeoutMs: 20_000 });
    expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
  } finally {
    await engine.stop();
    await holder.close();
  }
});
