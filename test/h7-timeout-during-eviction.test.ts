/**
 * A run's deadline (`timeoutMs`) passing while the write that gives the run up as `waiting` is in flight
 * (the run only waits on a long timer; the database is slow to answer): the run times out once, and the
 * definition's cleanup runs once. It ran twice with no crash between: the first session terminated the
 * run (cleanup) while its eviction write was out, that write then committed and ended the session with
 * the run `waiting` — woken at its deadline, so the next session timed it out again (cleanup again).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, openDatabase, silentLogger, type Database } from '../src/index.ts';
import { createTestDatabase } from './helpers/postgres.ts';
import { hookedStore } from './helpers/hooked-store.ts';

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => {});
});

const cleanups: string[] = [];
let cleanupStarted: () => void = () => {};

const sleeper = defineWorkflow({
  name: 'h7.sleeper',
  input: z.object({}),
  cleanup: ({ runId, reason }) => {
    cleanups.push(`${runId}: ${reason}`);
    cleanupStarted();
  },
  machine: setup({}).createMachine({
    id: 'sleeper',
    initial: 'idle',
    states: { idle: { after: { 3_600_000: 'done' } }, done: { type: 'final' } },
  }),
});

describe.each(['postgres', 'pglite'] as const)('a timeout while the run is written out as waiting (%s)', (kind) => {
  it('ends the run once, running its cleanup once', async () => {
    let raw: Database;
    if (kind === 'postgres') {
      const testDb = await createTestDatabase();
      closers.push(() => testDb.drop());
      raw = await openDatabase({ url: testDb.url });
    } else raw = await openDatabase({ url: '', dataDir: 'memory://' });
    closers.push(() => raw.close());
    cleanups.length = 0;
    const started = new Promise<void>((resolve) => (cleanupStarted = resolve));
    let held = 0;
    // The first write that gives the run up as `waiting` is held until a cleanup starts (the timeout was
    // applied while it was out) or, at most, until well past the run's deadline.
    const db = hookedStore(raw, async (sql, params) => {
      if (held === 0 && /update rmapp_runs/.test(sql) && params?.includes('waiting')) {
        held += 1;
        await Promise.race([started, new Promise((resolve) => setTimeout(resolve, 3_000))]);
      }
    });
    const engine = createEngine({ workflows: [sleeper], database: db, logger: silentLogger, evictAfterMs: 0, pollMs: 100 });
    closers.push(() => engine.stop());
    await engine.startWorker();
    const id = await engine.start(sleeper, {}, { timeoutMs: 800 });
    const run = await engine.waitFor(id, { timeoutMs: 20_000 });
    expect(held, 'the eviction write was never held: the test did not reach its case').toBe(1);
    expect(run.status).toBe('failed');
    expect(run.error?.code).toBe('RUN_TIMEOUT');
    const timedOut = (await engine.history(id)).filter((h) => h.type === 'run.timed_out');
    expect(timedOut, 'run.timed_out entries').toHaveLength(1);
    expect(cleanups, 'cleanups run for one timeout').toHaveLength(1);
  });

  it('still times the run out when the database refuses that write after the deadline', async () => {
    const raw = kind === 'postgres' ? await postgresStore() : await openDatabase({ url: '', dataDir: 'memory://' });
    closers.push(() => raw.close());
    cleanups.length = 0;
    let refused = 0;
    // Held past the deadline, then refused for its data (a check the session missed).
    const db = hookedStore(raw, async (sql, params) => {
      if (refused === 0 && /update rmapp_runs/.test(sql) && params?.includes('waiting')) {
        refused += 1;
        await new Promise((resolve) => setTimeout(resolve, 2_000));
        throw Object.assign(new Error('new row violates check constraint "h7"'), { code: '23514' });
      }
    });
    const engine = createEngine({ workflows: [sleeper], database: db, logger: silentLogger, evictAfterMs: 0, pollMs: 100 });
    closers.push(() => engine.stop());
    await engine.startWorker();
    const id = await engine.start(sleeper, {}, { timeoutMs: 800 });
    const run = await engine.waitFor(id, { timeoutMs: 20_000 });
    expect(refused, 'the eviction write was never refused: the test did not reach its case').toBe(1);
    expect(run.status).toBe('failed');
    expect(run.error?.code, 'the run ends by its timeout, not by the refused write').toBe('RUN_TIMEOUT');
    const history = await engine.history(id);
    const unwritable = history.find((h) => h.type === 'state.unwritable');
    expect((unwritable?.data as { error?: { code?: string } } | null)?.error?.code).toBe('WRITE_REJECTED');
    expect(history.filter((h) => h.type === 'run.timed_out')).toHaveLength(1);
    expect(cleanups, 'cleanups run for one timeout').toHaveLength(1);
  });
});

async function postgresStore(): Promise<Database> {
  const testDb = await createTestDatabase();
  closers.push(() => testDb.drop());
  return openDatabase({ url: testDb.url });
}
