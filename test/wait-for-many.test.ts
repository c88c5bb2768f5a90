/**
 * Many callers waiting at once: `waitFor` on runs that are not executing in the caller's process reads
 * the database while it waits. One statement per caller per poll took the pool from the worker and
 * delayed the runs themselves by minutes (bench/many-waits.ts); the reads of one turn share a statement
 * (src/state_machine/status-reads.ts), and a run that finishes in the caller's own process is answered
 * from its final commit.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, openDatabase, RunNotFoundError, type Database } from '../src/index.ts';
import { RUN_COLUMNS } from '../src/persistence/rows.ts';
import { hookedStore } from './helpers/hooked-store.ts';
import { createTestDatabase, engineDatabaseFor } from './helpers/postgres.ts';

const machine = setup({ types: {} as { input: { n: number } } }).createMachine({
  id: 'waitsForGo',
  context: ({ input }) => ({ n: input.n }),
  initial: 'waiting',
  states: { waiting: { on: { go: 'done' } }, done: { type: 'final' } },
  output: ({ context }) => ({ n: context.n }),
});
const workflow = defineWorkflow({ name: 'test.wait-for-many', machine, input: z.object({ n: z.number() }) });

/** Statements through `db`, sorted: a batched status read (with its ids), a read of one whole run, the rest. */
function counted(db: Database) {
  const seen = { statusReads: [] as number[], runReads: 0 };
  const store = hookedStore(db, (sql, params) => {
    if (/from rmapp_runs where id = any\(\$1/.test(sql)) seen.statusReads.push((params?.[0] as unknown[]).length);
    else if (sql.includes(`${RUN_COLUMNS} from rmapp_runs where id = $1`)) seen.runReads++;
  });
  return { store, seen };
}

const RUNS = 100;

describe('waits on runs another process executes', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it(
    'share their reads: a statement per poll for every caller, the run itself read once it has finished',
    { timeout: 120_000 },
    async () => {
      const testDb = await createTestDatabase();
      cleanups.push(() => testDb.drop());
      const worker = createEngine({ database: testDb.url, workflows: [workflow], evictAfterMs: 0, pollMs: 20 });
      cleanups.push(() => worker.stop());
      await worker.startWorker();
      const ids = [];
      for (let n = 0; n < RUNS; n++) ids.push(await worker.start(workflow, { n }));
      await expect.poll(async () => (await worker.list({ status: 'waiting' })).length, { timeout: 30_000 }).toBe(RUNS);

      const db = await openDatabase({ url: testDb.url });
      cleanups.push(() => db.close());
      const { store, seen } = counted(db);
      const client = createEngine({ database: store, workflows: [workflow] });
      cleanups.push(() => client.stop());
      await client.db();
      const waits = ids.map((id) => client.waitFor(id, { pollMs: 30 }));
      // Each caller has read its run five times.
      await expect.poll(() => seen.statusReads.reduce((a, b) => a + b, 0), { timeout: 30_000 }).toBeGreaterThanOrEqual(5 * RUNS);
      const statements = seen.statusReads.length;
      const perStatement = seen.statusReads.reduce((a, b) => a + b, 0) / statements;
      expect(perStatement, `runs read per statement (${statements} statements: ${seen.statusReads.join(' ')})`).toBeGreaterThanOrEqual(
        RUNS / 2,
      );
      expect(seen.runReads, 'runs read whole while they waited').toBe(0);

      for (const id of ids) await worker.send(id, { type: 'go' });
      const answers = await Promise.all(waits);
      expect(answers.map((a) => [a.status, (a.output as { n: number }).n])).toEqual(ids.map((_, n) => ['succeeded', n]));
      expect(seen.runReads, 'runs read whole: once each, when it had finished').toBe(RUNS);
    },
  );

  it('a wait on a run that does not exist fails alone, whatever it shares its read with', { timeout: 60_000 }, async () => {
    const testDb = await createTestDatabase();
    cleanups.push(() => testDb.drop());
    const engine = createEngine({ database: testDb.url, workflows: [workflow], evictAfterMs: 0 });
    cleanups.push(() => engine.stop());
    await engine.startWorker();
    const id = await engine.start(workflow, { n: 7 });
    await expect.poll(async () => (await engine.get(id)).status, { timeout: 30_000 }).toBe('waiting');
    const waits = [id, 'no-such-run', 'nul\0in-id', id].map((runId) =>
      engine.waitFor(runId, { pollMs: 20 }).then(
        (run) => run.status,
        (err: Error) => (err instanceof RunNotFoundError ? 'not found' : err.message),
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    await engine.send(id, { type: 'go' });
    expect(await Promise.all(waits)).toEqual(['succeeded', 'not found', 'not found', 'succeeded']);
    // The database cannot hold a NUL: no run has such an id, whatever is asked of it.
    await expect(engine.get('nul\0in-id')).rejects.toBeInstanceOf(RunNotFoundError);
    await expect(engine.send('nul\0in-id', { type: 'go' })).rejects.toBeInstanceOf(RunNotFoundError);
    // An id that is no string at all (from untyped code) is not found either, and named.
    await expect(engine.get(Symbol('id') as never)).rejects.toThrow('No run with id "Symbol(id)"');
  });
});

describe.each(['postgres', 'pglite'] as const)('a wait ended by engine.stop() (%s)', (kind) => {
  it('makes no read after the stop, not even one asked for before it', { timeout: 60_000 }, async () => {
    const cleanups: (() => Promise<void>)[] = [];
    try {
      const db = await openDatabase(await engineDatabaseFor(kind, cleanups));
      cleanups.push(() => db.close());
      const worker = createEngine({ database: db, workflows: [workflow], evictAfterMs: 0 });
      cleanups.push(() => worker.stop());
      await worker.startWorker();
      const id = await worker.start(workflow, { n: 1 });
      await expect.poll(async () => (await worker.get(id)).status, { timeout: 30_000 }).toBe('waiting');
      let stoppedAt: number | null = null;
      const after: string[] = [];
      const store = hookedStore(db, (sql) => {
        if (stoppedAt !== null) after.push(sql.slice(0, 60));
      });
      const client = createEngine({ database: store, workflows: [workflow] });
      await client.db();
      // Asked for in this turn; the stop begins before the turn's reads go out.
      const wait = client.waitFor(id).then(
        () => 'answered',
        (err: { code?: string }) => err.code,
      );
      await client.stop();
      stoppedAt = Date.now();
      expect(await wait).toBe('ENGINE_STOPPED');
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(after, 'statements after the stop').toEqual([]);
    } finally {
      for (const c of cleanups.reverse()) await c();
    }
  });
});

describe.each(['postgres', 'pglite'] as const)('a wait on a run this process finishes after it left memory (%s)', (kind) => {
  it('is answered when a read under way at the finish comes back, not at the next poll', { timeout: 60_000 }, async () => {
    const cleanups: (() => Promise<void>)[] = [];
    try {
      const db = await openDatabase(await engineDatabaseFor(kind, cleanups));
      cleanups.push(() => db.close());
      let slowed: (() => void) | null = null;
      let statusReads = 0;
      let release: () => void = () => {};
      const held = new Promise<void>((resolve) => (release = resolve));
      // The statement runs at once; its answer is held.
      const store = new Proxy(db, {
        get(target, prop, receiver) {
          const value = Reflect.get(target, prop, receiver) as unknown;
          if (typeof value !== 'function') return value;
          if (prop !== 'query') return (value as (...a: unknown[]) => unknown).bind(target);
          return async (sql: string, ...rest: unknown[]) => {
            const rows = await (value as (...a: unknown[]) => Promise<unknown>).call(target, sql, ...rest);
            if (/from rmapp_runs where id = any\(\$1/.test(sql)) statusReads++;
            if (slowed && /from rmapp_runs where id = any\(\$1/.test(sql)) {
              slowed();
              slowed = null;
              await held;
            }
            return rows;
          };
        },
      });
      const engine = createEngine({ database: store, workflows: [workflow], evictAfterMs: 0 });
      cleanups.push(() => engine.stop());
      await engine.startWorker();
      const id = await engine.start(workflow, { n: 5 });
      await expect.poll(async () => (await engine.get(id)).status, { timeout: 30_000 }).toBe('waiting');
      // The wait's first read answers "waiting" once the run has finished.
      const reading = new Promise<void>((resolve) => (slowed = resolve));
      const wait = engine.waitFor(id, { pollMs: 600_000 });
      await reading;
      const finished = new Promise<void>((resolve) => engine.on('run.finished', () => resolve()));
      await engine.send(id, { type: 'go' });
      await finished;
      release();
      const run = await wait;
      expect([run.status, run.output]).toEqual(['succeeded', { n: 5 }]);
      expect(statusReads, 'status reads: the held one only, not another at the next poll').toBe(1);
    } finally {
      for (const c of cleanups.reverse()) await c();
    }
  });

  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('is answered from the run’s final commit, with no read of the run', { timeout: 60_000 }, async () => {
    const db = await openDatabase(await engineDatabaseFor(kind, cleanups));
    cleanups.push(() => db.close());
    const { store, seen } = counted(db);
    // A poll far longer than the test: only the run's end can answer the wait in time.
    const engine = createEngine({ database: store, workflows: [workflow], evictAfterMs: 0 });
    cleanups.push(() => engine.stop());
    await engine.startWorker();
    const id = await engine.start(workflow, { n: 3 });
    await expect.poll(async () => (await engine.get(id)).status, { timeout: 30_000 }).toBe('waiting');
    const wait = engine.waitFor(id, { pollMs: 600_000 });
    await expect.poll(() => seen.statusReads.length, { timeout: 10_000 }).toBe(1);
    const runReads = seen.runReads;
    // (The send reads the run's status and definition, not the whole run.)
    await engine.send(id, { type: 'go' });
    const run = await wait;
    expect([run.status, run.output]).toEqual(['succeeded', { n: 3 }]);
    expect({ statusReads: seen.statusReads.length, runReads: seen.runReads - runReads }, 'reads from the send on').toEqual({
      statusReads: 1,
      runReads: 0,
    });
  });
});
