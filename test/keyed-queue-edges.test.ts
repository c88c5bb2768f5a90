/**
 * Concurrency keys at their edges, on Postgres (an adversarial pass found both): a failed keyed run
 * that is retried goes back through its key's queue instead of running beside the key's runs over
 * the limit; and a run on a free key is admitted while more than a pass's worth of other keys (50)
 * are full with runs queued behind them.
 */
import { setup } from 'xstate';
import { z } from 'zod';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, defineWorkflow, step, type Engine } from '../src/index.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { until } from './helpers/processes.ts';
import { nextWakeAt } from '../src/persistence/claims.ts';

/** Steps in flight per key, and the most seen at once. */
const live = new Map<string, number>();
const most = new Map<string, number>();
/** Keys whose step fails (the definition's bug, fixed before the retry). */
const failing = new Set<string>();

const work = step(
  async ({ input }: { input: { key: string } }) => {
    live.set(input.key, (live.get(input.key) ?? 0) + 1);
    most.set(input.key, Math.max(most.get(input.key) ?? 0, live.get(input.key) as number));
    try {
      await new Promise((r) => setTimeout(r, 300));
      if (failing.has(input.key)) throw Object.assign(new Error('the step is broken'), { category: 'permanent' });
    } finally {
      live.set(input.key, (live.get(input.key) as number) - 1);
    }
  },
  { retry: { maxAttempts: 1 } },
);

/** Runs whose definition's cleanup ran, with the context it was given. */
const cleaned: { runId: string; context: unknown }[] = [];

/** One step, then (with `hold`) a wait for `go` that keeps the key's slot. */
const keyed = defineWorkflow({
  name: 'test.keyed-edges',
  input: z.object({ key: z.string(), hold: z.boolean().default(false) }),
  concurrency: { limit: 1, key: (i) => i.key },
  cleanup: ({ runId, context }) => void cleaned.push({ runId, context }),
  machine: setup({
    types: {} as { input: { key: string; hold: boolean }; context: { key: string; hold: boolean } },
    actors: { work },
  }).createMachine({
    id: 'keyedEdges',
    context: ({ input }) => input,
    initial: 'working',
    states: {
      working: { invoke: { src: 'work', input: ({ context }) => ({ key: context.key }), onDone: 'held' } },
      held: { always: { guard: ({ context }) => !context.hold, target: 'done' }, on: { go: 'done' } },
      done: { type: 'final' },
    },
  }),
});

let testDb: TestDatabase;
let engine: Engine;
beforeAll(async () => {
  testDb = await createTestDatabase();
  engine = createEngine({ database: testDb.url, workflows: [keyed], pollMs: 50, concurrency: 200 });
  await engine.startWorker();
}, 60_000);
afterAll(async () => {
  await engine?.stop();
  await testDb?.drop();
});

/** A run of `key` whose step failed (the bug fixed again before it returns). */
async function failedRun(key: string): Promise<string> {
  failing.add(key);
  const id = await engine.start(keyed, { key });
  expect((await engine.waitFor(id, { timeoutMs: 30_000 })).status).toBe('failed');
  failing.delete(key);
  return id;
}

/** A run that holds `key`'s only slot until it is sent `go`. */
async function holdSlot(key: string): Promise<string> {
  const holder = await engine.start(keyed, { key, hold: true });
  await until(async () => (await engine.get(holder)).state === 'held', 30_000, 'the holder to take the slot');
  return holder;
}

it('a retried keyed run goes back to its key’s queue: it never runs beside the key’s runs over the limit', async () => {
  const first = await failedRun('k1');
  // The key's slot is taken now by a run that holds it until it gets `go`.
  const holder = await holdSlot('k1');
  const retried = await engine.retry(first);
  expect(retried.status, 'the retried run waits for a slot').toBe('pending');
  await new Promise((r) => setTimeout(r, 1_000));
  expect((await engine.get(first)).status, 'the retried run while the slot is taken').toBe('pending');
  await engine.send(holder, { type: 'go' });
  expect((await engine.waitFor(first, { timeoutMs: 30_000 })).status).toBe('succeeded');
  expect(most.get('k1'), 'steps of key k1 at once').toBe(1);
});

it('a retried keyed run cancelled while it waits in the queue has its cleanup run: it had run before', async () => {
  // An adversarial pass: it was cancelled in place as "never started", and its cleanup never ran.
  const failed = await failedRun('k2');
  const holder = await holdSlot('k2');
  expect((await engine.retry(failed)).status).toBe('pending');
  const cancelled = await engine.cancel(failed, 'not needed any more');
  expect(cancelled.message).toMatch(/while it waited for a slot of its concurrency key/);
  expect((await engine.get(failed)).status).toBe('cancelled');
  expect(cleaned.find((c) => c.runId === failed)?.context, 'the cleanup of the queued run').toEqual({ key: 'k2', hold: false });
  await engine.send(holder, { type: 'go' });
  await engine.waitFor(holder, { timeoutMs: 30_000 });
});

it('a retried keyed run, and the next run of a key whose admitted run was cancelled, take a free slot at once', async () => {
  // Found by a review: a start admitted its key at once, a retry and a cancel left it to a worker's
  // pass over the queued keys (which may come to that key late). A client engine, with no worker.
  const client = createEngine({ database: testDb.url, workflows: [keyed] });
  const admitted = async (id: string) =>
    (await client.db().then((db) => db.query<{ admitted: boolean }>('select admitted from rmapp_runs where id = $1', [id])))[0]?.admitted;
  try {
    const failed = await failedRun('k4');
    await engine.stop();
    expect((await client.retry(failed)).status).toBe('pending');
    expect(await admitted(failed), 'the retried run, its key free').toBe(true);
    const queued = await client.start(keyed, { key: 'k4' });
    expect(await admitted(queued), 'behind it').toBe(false);
    await client.cancel(failed);
    expect(await admitted(queued), 'the next, once the admitted run was cancelled').toBe(true);
  } finally {
    await client.stop();
    engine = createEngine({ database: testDb.url, workflows: [keyed], pollMs: 50, concurrency: 200 });
    await engine.startWorker();
  }
});

it('a retry from a process that does not know the run’s version queues it: the limit still holds', async () => {
  // An adversarial pass: such a retry let the run skip the queue and run beside the key's holder.
  const failed = await failedRun('k5');
  const holder = await holdSlot('k5');
  const other = defineWorkflow({ name: 'test.keyed-edges-other', input: z.object({}), machine: setup({}).createMachine({}) });
  const stranger = createEngine({ database: testDb.url, workflows: [other] });
  try {
    expect((await stranger.retry(failed)).status).toBe('pending');
  } finally {
    await stranger.stop();
  }
  await new Promise((r) => setTimeout(r, 500));
  expect((await engine.get(failed)).status, 'while the holder has the slot').toBe('pending');
  await engine.send(holder, { type: 'go' });
  expect((await engine.waitFor(failed, { timeoutMs: 30_000 })).status).toBe('succeeded');
  expect(most.get('k5'), 'steps of key k5 at once').toBe(1);
});

it('a run queued behind a busy key is not due: an idle worker does not poll for it', async () => {
  // An adversarial pass: queued runs were due at once (wake_at = now()), so the claim loop's next
  // wake-up was always past: an idle worker polled every 5 ms (384 commits/s for 5 queued runs).
  const holder = await holdSlot('k6');
  const queued = await engine.start(keyed, { key: 'k6' });
  const db = await engine.db();
  const [row] = await db.query<{ wake_at: Date | null }>('select wake_at from rmapp_runs where id = $1', [queued]);
  expect(row?.wake_at, 'the queued run has no wake-up time').toBeNull();
  const next = await nextWakeAt(db, [[keyed.name, keyed.version]]);
  expect(next === null || next.getTime() > Date.now(), `the next wake-up ${next?.toISOString()}`).toBe(true);
  await engine.send(holder, { type: 'go' });
  expect((await engine.waitFor(queued, { timeoutMs: 30_000 })).status).toBe('succeeded');
});

it('a failed run of a key whose definition has no limit any more is retried at once, not queued for ever', async () => {
  const failed = await failedRun('k3');
  // The same machine deployed without `concurrency` (the version is the machine's: unchanged).
  const unkeyed = defineWorkflow({ ...keyed, concurrency: undefined });
  const other = createEngine({ database: testDb.url, workflows: [unkeyed], pollMs: 50 });
  await engine.stop();
  await other.startWorker();
  try {
    expect((await other.retry(failed)).status, 'retried with no limit registered').toBe('waiting');
    expect((await other.waitFor(failed, { timeoutMs: 30_000 })).status).toBe('succeeded');
  } finally {
    await other.stop();
    engine = createEngine({ database: testDb.url, workflows: [keyed], pollMs: 50, concurrency: 200 });
    await engine.startWorker();
  }
});

it('a run on a free key is admitted while more than 50 other keys are full with runs queued behind them', async () => {
  const full = Array.from({ length: 55 }, (_, i) => `full-${String(i).padStart(2, '0')}`);
  const holders = await Promise.all(full.map((key) => engine.start(keyed, { key, hold: true })));
  await until(async () => (await Promise.all(holders.map((id) => engine.get(id)))).every((r) => r.state === 'held'), 60_000, 'the holders');
  await Promise.all(full.map((key) => engine.start(keyed, { key })));
  // Named to sort after the full keys: the first 50 keys a pass took were the same full ones.
  const free = await engine.start(keyed, { key: 'zz-free' });
  // It was left `pending` ("Queued: position 1") as long as the 55 keys stayed full.
  expect((await engine.waitFor(free, { timeoutMs: 30_000 })).status).toBe('succeeded');
  await Promise.all(holders.map((id) => engine.send(id, { type: 'go' })));
}, 120_000);
