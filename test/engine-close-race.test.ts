/**
 * A stop closes every database the engine opened, whatever reads race it: a read during the stop opens
 * the database again (the next call after a close does), but only once the stop has closed the first
 * one, so that nothing leaks (a leaked pool keeps the process alive) and two PGlite instances never
 * share one directory (which corrupts it).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setup } from 'xstate';
import { z } from 'zod';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, defineWorkflow, openDatabase, step, type Database } from '../src/index.ts';
import { ADMIN_URL, createTestDatabase, rawTransaction, type TestDatabase } from './helpers/postgres.ts';

const workflow = defineWorkflow({
  name: 'test.close-race',
  machine: setup({}).createMachine({ id: 'close-race', initial: 'done', states: { done: { type: 'final' } } }),
  input: z.object({}),
});

const waiter = defineWorkflow({
  name: 'test.close-race-waiter',
  machine: setup({ types: { events: {} as { type: 'go' } } }).createMachine({
    id: 'waiter',
    initial: 'waiting',
    states: { waiting: { on: { go: 'done' } }, done: { type: 'final' } },
  }),
  input: z.object({}),
});

let testDb: TestDatabase;
let admin: Database;
let dir: string;
beforeAll(async () => {
  testDb = await createTestDatabase();
  admin = await openDatabase({ url: ADMIN_URL, maxConnections: 1 });
  dir = mkdtempSync(join(tmpdir(), 'rmapp-close-race-'));
});
afterAll(async () => {
  await admin.close();
  await testDb.drop();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Reads issued every 10 ms from before a stop (which begins while the first opening
 * still migrates) until it returns; then a second stop closes what the reads opened again. Each read's
 * outcome: its rows, or the message of what it threw.
 */
async function readsRacingStop(database: string | { url: string; dataDir: string }): Promise<unknown[]> {
  const engine = createEngine({ database, workflows: [workflow], workerId: 'close-race' });
  const reads: Promise<unknown>[] = [];
  const read = () => reads.push(engine.list().catch((err: unknown) => (err as Error).message));
  read();
  let stopped = false;
  const stopping = engine.stop({ graceMs: 0 }).then(() => (stopped = true));
  while (!stopped) {
    read();
    await new Promise((r) => setTimeout(r, 10));
  }
  await stopping;
  read();
  const outcomes = await Promise.all(reads);
  await engine.stop();
  return outcomes;
}

/** Outcomes that are neither rows nor the clear error of a read whose database the stop closed. */
function unexpected(outcomes: unknown[]): unknown[] {
  return outcomes.filter((o) => !Array.isArray(o) && !(typeof o === 'string' && /was closed.*open it again|PGlite is closed/.test(o)));
}

it('Postgres: reads racing a stop end, and no connection is left open', async () => {
  const outcomes = await readsRacingStop(testDb.url);
  expect(unexpected(outcomes), 'reads that failed otherwise').toEqual([]);
  expect(outcomes.at(-1), 'the read after the stop').toEqual([]);
  expect(await openConnections(), 'rmapp connections to the test database left open by the engine').toBe(0);
});

it('PGlite: reads racing a stop end, and the directory is free afterwards', async () => {
  const dataDir = join(dir, 'store');
  const outcomes = await readsRacingStop({ url: '', dataDir });
  expect(unexpected(outcomes), 'reads that failed otherwise').toEqual([]);
  expect(outcomes.at(-1), 'the read after the stop').toEqual([]);
  expect(existsSync(join(dataDir, 'rmapp.lock')), 'the lock file left by an instance the stop did not close').toBe(false);
  const again = await openDatabase({ url: '', dataDir });
  try {
    expect(await again.query('select count(*)::int as runs from rmapp_runs')).toEqual([{ runs: 0 }]);
  } finally {
    await again.close();
  }
});

it('PGlite: a second open of a directory this process holds is refused with a clear error', async () => {
  const dataDir = join(dir, 'twice');
  const one = await openDatabase({ url: '', dataDir });
  try {
    await expect(openDatabase({ url: '', dataDir })).rejects.toThrow(/already open in this process/);
  } finally {
    await one.close();
  }
  await one.close();
  const two = await openDatabase({ url: '', dataDir });
  await two.close();
});

/**
 * rmapp's connections to the test database. A backend leaves pg_stat_activity a moment after its client
 * closed the socket (on a loaded machine, after the close has returned): the count is read again for up
 * to 5 s while it is not 0, so only a connection that stays open counts.
 */
async function openConnections(): Promise<number> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const [row] = await admin.query<{ open: number }>(
      `select count(*)::int as open from pg_stat_activity where datname = $1 and application_name = 'rmapp'`,
      [testDb.name],
    );
    const open = row?.open ?? -1;
    if (open === 0 || Date.now() > deadline) return open;
    await new Promise((r) => setTimeout(r, 50));
  }
}

it('Postgres: a second stop also closes what a read opened while the first stop waited for a statement', async () => {
  const engine = createEngine({ database: testDb.url, workflows: [workflow], workerId: 'close-race' });
  await engine.list();
  let release = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  let locked = () => {};
  const isLocked = new Promise<void>((resolve) => (locked = resolve));
  // A read held on a lock: the first stop's close waits for it.
  const holder = rawTransaction(testDb.url, async (tx) => {
    await tx.query('lock table rmapp_runs in access exclusive mode');
    locked();
    await released;
  });
  await isLocked;
  const held = engine.list().catch((err: unknown) => (err as Error).message);
  await new Promise((r) => setTimeout(r, 100));
  const first = engine.stop({ graceMs: 0 });
  await new Promise((r) => setTimeout(r, 100));
  // Opens the database again once the first close is done.
  const queued = engine.list().catch((err: unknown) => (err as Error).message);
  const second = engine.stop({ graceMs: 0 });
  setTimeout(release, 300);
  await second;
  expect(await openConnections(), 'connections open once the second stop returned').toBe(0);
  await Promise.all([first, held, queued, holder]);
  expect(await openConnections(), 'connections open at the end').toBe(0);
});

it('statements and listens on a closed database are refused with DATABASE_CLOSED (Postgres and PGlite)', async () => {
  const stores = [await openDatabase({ url: testDb.url }), await openDatabase({ url: '', dataDir: join(dir, 'closed') })];
  for (const db of stores) {
    const closing = db.close();
    for (const [what, attempt] of [
      ['query', () => db.query('select 1')],
      ['script', () => db.script(['select 1'])],
      ['listen', () => db.listen('rmapp_test', () => {})],
    ] as const) {
      const err = (await attempt().then(
        () => null,
        (e: unknown) => e,
      )) as { code?: string } | null;
      expect(err?.code, `${db.kind}: ${what} during close()`).toBe('DATABASE_CLOSED');
    }
    await closing;
    const after = (await db.query('select 1').catch((e: unknown) => e)) as { code?: string };
    expect(after.code, `${db.kind}: a query after close()`).toBe('DATABASE_CLOSED');
  }
});

it('PGlite: a directory reached through a symlink is the same store (one lock)', async () => {
  const real = join(dir, 'real');
  const parent = join(dir, 'parent');
  mkdirSync(parent);
  symlinkSync(dir, join(parent, 'link'));
  const one = await openDatabase({ url: '', dataDir: real });
  try {
    await expect(openDatabase({ url: '', dataDir: join(parent, 'link', 'real') })).rejects.toThrow(/already open in this process/);
  } finally {
    await one.close();
  }
});

it('a send waiting for its outcome when the engine stops answers queued: the event is stored once', async () => {
  const engine = createEngine({ database: testDb.url, workflows: [waiter], workerId: 'close-race' });
  const id = await engine.start(waiter, {});
  const sent = engine.send(id, { type: 'go' }, { waitMs: 5_000 }).catch((err: unknown) => err);
  await new Promise((r) => setTimeout(r, 200));
  await engine.stop();
  expect(await sent, 'what the send answered').toMatchObject({ delivered: true, outcome: 'queued' });
  const [row] = await rawTransaction(testDb.url, (tx) =>
    tx.query<{ events: number }>('select count(*)::int as events from rmapp_run_inbox where run_id = $1', [id]),
  );
  expect(row?.events).toBe(1);
});

/** What `promise` settled with, or 'still waiting' if it had not settled `ms` later. */
async function within(promise: Promise<unknown>, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise((resolve) => (timer = setTimeout(() => resolve('still waiting'), ms)));
  try {
    return await Promise.race([promise.catch((err: unknown) => err), late]);
  } finally {
    clearTimeout(timer);
  }
}

it('a waitFor under way when the engine stops ends with ENGINE_STOPPED, and opens nothing again', async () => {
  // A client engine (no worker): the run waits for a signal nobody sends.
  const engine = createEngine({ database: testDb.url, workflows: [waiter], workerId: 'close-race' });
  const id = await engine.start(waiter, {});
  const waiting = engine.waitFor(id, { pollMs: 20 });
  // Handled from the start: the wait may end while the stop is still under way, before `within` reads it.
  waiting.catch(() => {});
  await new Promise((r) => setTimeout(r, 100));
  await engine.stop();
  // Before, the wait went on reading the run every pollMs, reopening the database the stop closed.
  expect(await within(waiting, 10_000), 'what the wait ended with').toMatchObject({
    code: 'ENGINE_STOPPED',
    category: 'cancelled',
    details: { runId: id, status: 'pending' },
  });
  await new Promise((r) => setTimeout(r, 200));
  expect(await openConnections(), 'connections the engine opened after its stop').toBe(0);
  // A wait called after the stop is a new wait: it reads the run (and the next stop ends it too).
  const again = engine.waitFor(id, { timeoutMs: 300 });
  expect(await within(again, 10_000)).toMatchObject({ code: 'WAIT_TIMEOUT' });
  await engine.stop();
});

it('a waitFor on a run this worker executes: a stop hands the run over and ends the wait; a run finished in the grace is returned', async () => {
  const released: (() => void)[] = [];
  const slow = defineWorkflow({
    name: 'test.close-race-slow',
    machine: setup({
      types: { context: {} as { ms: number }, input: {} as { ms: number } },
      actors: {
        work: step(async ({ input, signal }: { input: { ms: number }; signal: AbortSignal }) => {
          await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(resolve, input.ms);
            released.push(resolve);
            signal.addEventListener('abort', () => (clearTimeout(timer), reject(signal.reason)));
          });
          return 'worked';
        }),
      },
    }).createMachine({
      id: 'slow',
      context: ({ input }) => input,
      initial: 'working',
      states: { working: { invoke: { src: 'work', input: ({ context }) => context, onDone: 'done' } }, done: { type: 'final' } },
    }),
    input: z.object({ ms: z.number() }),
  });
  const engine = createEngine({ database: testDb.url, workflows: [slow], workerId: 'close-race-slow' });
  await engine.startWorker();
  const quick = await engine.start(slow, { ms: 300 });
  const stuck = await engine.start(slow, { ms: 600_000 });
  // Settled with what they threw at once: the second ends while the test awaits the first.
  const waitQuick = engine.waitFor(quick).catch((err: unknown) => err);
  const waitStuck = engine.waitFor(stuck, { pollMs: 20 }).catch((err: unknown) => err);
  await new Promise((r) => setTimeout(r, 100));
  await engine.stop({ graceMs: 2_000 });
  expect(await within(waitQuick, 10_000), 'the run that finished in the grace').toMatchObject({ id: quick, status: 'succeeded' });
  expect(await within(waitStuck, 10_000), 'the run handed over').toMatchObject({ code: 'ENGINE_STOPPED', details: { runId: stuck } });
  for (const r of released) r();
});

it('many waitFor calls at once: no listener-leak warning, and a stop ends every one', async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  const engine = createEngine({ database: testDb.url, workflows: [waiter], workerId: 'close-race-many' });
  try {
    const ids = await Promise.all(Array.from({ length: 30 }, () => engine.start(waiter, {})));
    const waits = ids.map((id) => engine.waitFor(id, { pollMs: 50 }).catch((err: unknown) => err));
    await new Promise((r) => setTimeout(r, 150));
    await engine.stop();
    const ended = (await Promise.all(waits.map((w) => within(w, 10_000)))) as { code?: string }[];
    expect(ended.map((e) => e.code)).toEqual(ids.map(() => 'ENGINE_STOPPED'));
    // Node emits warnings on the next tick.
    await new Promise((r) => setImmediate(r));
    // Before, each wait's listener on the engine's stop signal counted toward Node's limit of 10.
    expect(warnings.filter((w) => /MaxListeners/.test(w))).toEqual([]);
  } finally {
    process.off('warning', onWarning);
  }
});
