/**
 * A run whose state is over `limits.snapshotBytes` (or cannot be written at all) when it is cancelled or
 * times out ends as asked — `cancelled` with its reason, or failed for its timeout — from its last state
 * written, with the reason its state was not written kept in its history (`state.unwritable`). It used to
 * end `failed` for the size, with no trace of the cancellation: the failure was decided at the final
 * write, and a run claimed because it was cancelled failed at its first write, before the cancellation
 * was read. Real Postgres; the engine's public API (the CLI's `runs cancel` and the HTTP cancel call the
 * same `engine.cancel`).
 */
import { afterEach, expect, it } from 'vitest';
import { assign, sendTo, setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, type Engine, type HistoryEvent } from '../src/index.ts';
import { openDatabase, type Database } from '../src/persistence/database.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { until } from './helpers/processes.ts';

const SMALL = 4096;

/** Appends a 1,100-byte note to its context on each `note`: four notes are over {@link SMALL}. */
const notes = defineWorkflow({
  name: 'limit.notes',
  version: '1',
  input: z.object({}).passthrough(),
  machine: setup({ types: {} as { context: { notes: string[] }; events: { type: 'note' } } }).createMachine({
    id: 'notes',
    context: { notes: [] },
    initial: 'open',
    states: {
      open: { on: { note: { actions: assign({ notes: ({ context }) => [...context.notes, 'n'.repeat(1100)] }) } } },
    },
  }),
});

/** A child machine that keeps notes; its parent forwards each `note` to it. The child's context is what grows. */
const keeper = setup({ types: {} as { context: { notes: string[] }; events: { type: 'note' } } }).createMachine({
  id: 'keeper',
  context: { notes: [] },
  initial: 'keeping',
  states: { keeping: { on: { note: { actions: assign({ notes: ({ context }) => [...context.notes, 'k'.repeat(1100)] }) } } } },
});
const parent = defineWorkflow({
  name: 'limit.parent',
  version: '1',
  input: z.object({}).passthrough(),
  machine: setup({ types: {} as { events: { type: 'note' } }, actors: { keeper } }).createMachine({
    id: 'parent',
    initial: 'holding',
    states: { holding: { invoke: { id: 'keeper', src: 'keeper' }, on: { note: { actions: sendTo('keeper', ({ event }) => event) } } } },
  }),
});

let testDb: TestDatabase | undefined;
const engines: Engine[] = [];
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const e of engines.splice(0).reverse()) await e.stop().catch(() => {});
  for (const close of closers.splice(0).reverse()) await close().catch(() => {});
  await testDb?.drop();
  testDb = undefined;
});

function engineOn(url: string, options: { limit?: number; worker?: boolean } = {}): Engine {
  const engine = createEngine({
    database: url,
    workflows: [notes, parent],
    pollMs: 50,
    ...(options.limit ? { limits: { snapshotBytes: options.limit } } : {}),
  });
  engines.push(engine);
  return engine;
}

/** The run's snapshot as stored, its size in bytes. */
async function storedBytes(db: Database, id: string): Promise<number> {
  const rows = await db.query<{ n: number }>(`select octet_length(snapshot::text)::int as n from rmapp_runs where id = $1`, [id]);
  return rows[0]?.n ?? -1;
}

/** Unconsumed inbox rows of a run. */
async function unconsumed(db: Database, id: string): Promise<string[]> {
  const rows = await db.query<{ type: string }>(
    `select event->>'type' as type from rmapp_run_inbox where run_id = $1 and consumed_at is null order by id`,
    [id],
  );
  return rows.map((r) => r.type);
}

const types = (history: HistoryEvent[]) => history.map((h) => h.type);
const unwritableEntry = (history: HistoryEvent[]) =>
  history.find((h) => h.type === 'state.unwritable')?.data as {
    error?: { code?: string; details?: Record<string, unknown>; signal?: unknown };
  };

it('a waiting run whose stored state is over a lowered limit, cancelled, ends cancelled with its reason, the size kept in its history', async () => {
  testDb = await createTestDatabase();
  const before = engineOn(testDb.url);
  await before.startWorker();
  const id = await before.start(notes, {});
  for (let i = 0; i < 5; i++) await before.send(id, { type: 'note' }, { waitMs: 10_000 });
  await until(async () => (await before.get(id)).status === 'waiting', 20_000, 'the run to wait');
  await before.stop();

  const after = engineOn(testDb.url, { limit: SMALL });
  await after.startWorker();
  expect((await after.cancel(id, 'no longer needed')).cancelled).toBe(true);
  const run = await after.waitFor(id, { timeoutMs: 20_000 });
  expect(run.status).toBe('cancelled');
  expect(run.error).toMatchObject({ code: 'CANCELLED', category: 'cancelled', message: 'no longer needed' });
  const history = await after.history(id);
  expect(unwritableEntry(history)?.error).toMatchObject({ code: 'SIZE_LIMIT_EXCEEDED', details: { limit: 'snapshotBytes', max: SMALL } });
  expect(types(history).slice(-2)).toEqual(['state.unwritable', 'run.cancelled']);
  expect(types(history)).not.toContain('run.failed');
  const direct = await openDatabase({ url: testDb.url });
  closers.push(() => direct.close());
  expect(await unconsumed(direct, id), 'the cancellation was taken').toEqual([]);
});

it('notes that take the state over the limit and a cancellation in the same read: the run ends cancelled, not failed, from its last state written', async () => {
  testDb = await createTestDatabase();
  const worker = engineOn(testDb.url, { limit: SMALL });
  await worker.startWorker();
  const id = await worker.start(notes, {});
  await until(async () => (await worker.get(id)).status === 'waiting', 20_000, 'the run to wait');
  // The worker stops; a client (no worker) queues the notes and the cancellation; a worker reads them at once.
  await worker.stop();
  const client = engineOn(testDb.url, { limit: SMALL });
  for (let i = 0; i < 4; i++) await client.send(id, { type: 'note' });
  await client.cancel(id, 'stop it');
  const next = engineOn(testDb.url, { limit: SMALL });
  await next.startWorker();
  const run = await next.waitFor(id, { timeoutMs: 20_000 });
  expect(run.status).toBe('cancelled');
  expect(run.error).toMatchObject({ code: 'CANCELLED', message: 'stop it' });
  const history = await next.history(id);
  // The note that took the state over the limit is named, as a failure would name it.
  expect(unwritableEntry(history)?.error).toMatchObject({ code: 'SIZE_LIMIT_EXCEEDED', signal: { type: 'note' } });
  expect(types(history)).not.toContain('run.failed');
  const direct = await openDatabase({ url: testDb.url });
  closers.push(() => direct.close());
  expect(await storedBytes(direct, id), 'no snapshot over the limit was written').toBeLessThanOrEqual(SMALL);
  // The notes' effects are in no state written, and the cancelled run takes no signal again: they are
  // consumed as dropped (a failure would keep them queued for its retry); the cancellation was applied.
  expect(await unconsumed(direct, id)).toEqual([]);
  expect(types(history).filter((t) => t.startsWith('signal.'))).toEqual([
    'signal.dropped',
    'signal.dropped',
    'signal.dropped',
    'signal.dropped',
  ]);
});

it("a run whose child machine's state is over the limit, cancelled with the notes that made it so, ends cancelled; its child is stopped", async () => {
  testDb = await createTestDatabase();
  const worker = engineOn(testDb.url, { limit: SMALL });
  await worker.startWorker();
  const id = await worker.start(parent, {});
  await until(async () => (await worker.get(id)).status === 'waiting', 20_000, 'the run to wait');
  await worker.stop();
  const client = engineOn(testDb.url, { limit: SMALL });
  for (let i = 0; i < 4; i++) await client.send(id, { type: 'note' });
  await client.cancel(id, 'parent cancelled');
  const next = engineOn(testDb.url, { limit: SMALL });
  await next.startWorker();
  const run = await next.waitFor(id, { timeoutMs: 20_000 });
  expect(run.status).toBe('cancelled');
  expect(run.error).toMatchObject({ message: 'parent cancelled' });
  expect(run.children).toEqual([expect.objectContaining({ path: 'keeper', status: 'stopped' })]);
  expect(unwritableEntry(await next.history(id))?.error).toMatchObject({ code: 'SIZE_LIMIT_EXCEEDED' });
});

it('a run started as the child of another (parentRunId), over the limit and cancelled, ends cancelled; its parent goes on', async () => {
  testDb = await createTestDatabase();
  const before = engineOn(testDb.url);
  await before.startWorker();
  const parentId = await before.start(notes, {});
  const childId = await before.start(notes, {}, { parentRunId: parentId });
  for (let i = 0; i < 5; i++) await before.send(childId, { type: 'note' }, { waitMs: 10_000 });
  await until(async () => (await before.get(childId)).status === 'waiting', 20_000, 'the child to wait');
  await before.stop();

  const after = engineOn(testDb.url, { limit: SMALL });
  await after.startWorker();
  await after.cancel(childId, 'child not needed');
  const child = await after.waitFor(childId, { timeoutMs: 20_000 });
  expect(child.status).toBe('cancelled');
  expect(child.error).toMatchObject({ message: 'child not needed' });
  // The parent is a run of its own: it still takes events.
  expect((await after.send(parentId, { type: 'note' }, { waitMs: 10_000 })).outcome).toBe('received');
  expect((await after.get(parentId)).status).not.toMatch(/failed|cancelled/);
});

it('a run whose deadline passes while its state is over the limit fails for its timeout, the size kept in its history', async () => {
  testDb = await createTestDatabase();
  const before = engineOn(testDb.url);
  await before.startWorker();
  const id = await before.start(notes, {}, { timeoutMs: 3_000 });
  for (let i = 0; i < 5; i++) await before.send(id, { type: 'note' }, { waitMs: 10_000 });
  await until(async () => (await before.get(id)).status === 'waiting', 20_000, 'the run to wait');
  await before.stop();
  // Its deadline passes while no worker runs.
  const direct = await openDatabase({ url: testDb.url });
  closers.push(() => direct.close());
  await until(
    async () =>
      (await direct.query<{ past: boolean }>(`select deadline_at < now() as past from rmapp_runs where id = $1`, [id]))[0]?.past === true,
    20_000,
    'the deadline to pass',
  );

  const after = engineOn(testDb.url, { limit: SMALL });
  await after.startWorker();
  const run = await after.waitFor(id, { timeoutMs: 20_000 });
  expect(run.status).toBe('failed');
  expect(run.error).toMatchObject({ code: 'RUN_TIMEOUT', category: 'timeout' });
  const history = await after.history(id);
  expect(unwritableEntry(history)?.error).toMatchObject({ code: 'SIZE_LIMIT_EXCEEDED' });
  expect(types(history).slice(-2)).toEqual(['state.unwritable', 'run.timed_out']);
});
