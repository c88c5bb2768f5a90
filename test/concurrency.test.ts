/**
 * Back-pressure and fairness on Postgres: concurrency keys and per-workflow limits hold under 200
 * concurrent starts on two workers, queued runs show their position and run in order, a per-worker
 * limit caps a step kind, and a flood of starts does not starve a run whose timer is due.
 */
import { setup } from 'xstate';
import { z } from 'zod';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, defineWorkflow, openDatabase, step, type Database, type Engine } from '../src/index.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { until } from './helpers/processes.ts';

/** Steps in flight per key, observed from inside the steps (both engines share this process). */
const active = new Map<string, number>();
const maxActive = new Map<string, number>();
const finishedOrder: string[] = [];

function work(label: string, ms: number) {
  return step(async ({ input, runId }: { input: { key: string }; runId: string }) => {
    const k = `${label}:${input.key}`;
    active.set(k, (active.get(k) ?? 0) + 1);
    maxActive.set(k, Math.max(maxActive.get(k) ?? 0, active.get(k) as number));
    await new Promise((r) => setTimeout(r, ms));
    active.set(k, (active.get(k) as number) - 1);
    finishedOrder.push(runId);
  });
}

function workflow(name: string, ms: number, concurrency?: { limit: number; key?: (i: { key: string }) => string }) {
  return defineWorkflow({
    name,
    input: z.object({ key: z.string() }),
    concurrency,
    machine: setup({ types: {} as { input: { key: string }; context: { key: string } }, actors: { work: work(name, ms) } }).createMachine({
      id: name.replace('.', '-'),
      context: ({ input }) => input,
      initial: 'working',
      states: {
        working: { invoke: { src: 'work', input: ({ context }) => ({ key: context.key }), onDone: 'done' } },
        done: { type: 'final' },
      },
    }),
  });
}

const perBranch = workflow('test.per-branch', 15, { limit: 1, key: (i) => i.key });
const perWorkflow = workflow('test.per-workflow', 15, { limit: 3 });
const agentish = workflow('test.agentish', 40);
const flood = workflow('test.flood', 20);
const timer = defineWorkflow({
  name: 'test.timer-due',
  input: z.object({}).passthrough(),
  machine: setup({}).createMachine({
    id: 'timerDue',
    initial: 'waiting',
    // Long enough that the run leaves memory (evictAfterMs 50) on a loaded machine before it is due.
    states: { waiting: { after: { 1_500: 'done' } }, done: { type: 'final' } },
  }),
});
const all = [perBranch, perWorkflow, agentish, flood, timer];

let testDb: TestDatabase;
let db: Database;
let a: Engine;
let b: Engine;

beforeAll(async () => {
  testDb = await createTestDatabase();
  db = await openDatabase({ url: testDb.url });
  a = createEngine({ database: testDb.url, workflows: all, pollMs: 50, concurrency: 20, stepConcurrency: { work: 1000 } });
  b = createEngine({ database: testDb.url, workflows: all, pollMs: 50, concurrency: 20 });
});
afterAll(async () => {
  await a.stop();
  await b.stop();
  await db.close();
  await testDb.drop();
});

it('queued runs show their position and are admitted in order', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) ids.push(await a.start('test.per-branch', { key: 'queue' }));
  const positions = await Promise.all(ids.map(async (id) => (await a.get(id)).queue));
  // The first takes the key's free slot as it starts (admitted, waiting for a worker); the others queue.
  expect(positions).toEqual([undefined, ...[1, 2].map((position) => ({ key: 'test.per-branch:queue', scope: 'workflow', position }))]);
  expect((await a.get(ids[2] as string)).statusMessage).toMatch(/Queued: position 2 for concurrency key test\.per-branch:queue/);
  await a.startWorker();
  await b.startWorker();
  for (const id of ids) expect((await a.waitFor(id, { timeoutMs: 20_000 })).status).toBe('succeeded');
  expect(finishedOrder.filter((id) => ids.includes(id))).toEqual(ids);
});

it('concurrency keys and a per-workflow limit hold under 200 concurrent starts on two workers', async () => {
  let maxSlots = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const rows = await db.query<{ n: number }>(
        `select count(*)::int as n from rmapp_runs where concurrency_key is not null and admitted and status in ('pending', 'running', 'waiting')
         group by concurrency_key order by 1 desc limit 1`,
      );
      maxSlots = Math.max(maxSlots, rows[0]?.n ?? 0);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const starts: Promise<string>[] = [];
  for (let i = 0; i < 160; i++) starts.push((i % 2 ? a : b).start('test.per-branch', { key: `branch-${i % 20}` }));
  for (let i = 0; i < 40; i++) starts.push((i % 2 ? b : a).start('test.per-workflow', { key: 'any' }));
  const ids = await Promise.all(starts);
  expect(new Set(ids).size).toBe(200);
  for (const id of ids) expect((await a.waitFor(id, { timeoutMs: 60_000 })).status).toBe('succeeded');
  sampling = false;
  await sampler;
  for (let i = 0; i < 20; i++) expect(maxActive.get(`test.per-branch:branch-${i}`)).toBe(1);
  expect(maxActive.get('test.per-workflow:any')).toBeLessThanOrEqual(3);
  expect(maxActive.get('test.per-workflow:any')).toBeGreaterThan(1);
  // The per-branch keys never held more than one slot; the per-workflow key at most three.
  expect(maxSlots).toBeLessThanOrEqual(3);
});

it('a per-worker limit caps how many steps of a kind run at once', async () => {
  const limited = createEngine({ database: testDb.url, workflows: all, pollMs: 50, concurrency: 20, stepConcurrency: { work: 2 } });
  await a.stop();
  await b.stop();
  await limited.startWorker();
  const ids = await Promise.all(Array.from({ length: 10 }, () => limited.start('test.agentish', { key: 'agents' })));
  for (const id of ids) expect((await limited.waitFor(id, { timeoutMs: 20_000 })).status).toBe('succeeded');
  expect(maxActive.get('test.agentish:agents')).toBe(2);
  await limited.stop();
});

it('a flood of starts does not starve a run whose timer is due', async () => {
  const small = createEngine({ database: testDb.url, workflows: all, pollMs: 20, concurrency: 4, evictAfterMs: 50 });
  await small.startWorker();
  // Out of memory, due in the database: the worker must claim it back among the flood's pending runs.
  const evicted = new Set<string>();
  const off = small.on('run.waiting', (e) => void evicted.add(e.runId));
  const waiting = await small.start('test.timer-due', {});
  await until(async () => evicted.has(waiting), 20_000, 'the timer run to leave memory');
  off();
  // 400 runs of a 20 ms step, four at a time: at least 2 s of work, the timer due in under 1.5 s.
  const floodIds = await Promise.all(Array.from({ length: 400 }, () => small.start('test.flood', { key: 'f' })));
  const done = await small.waitFor(waiting, { timeoutMs: 30_000 });
  expect(done.status).toBe('succeeded');
  for (const id of floodIds) await small.waitFor(id, { timeoutMs: 60_000 });
  // Runs of the flood finished after the timer run: it did not wait behind them all.
  const [row] = await db.query<{ n: number }>(
    `select count(*)::int as n from rmapp_runs where id in (select jsonb_array_elements_text($1::jsonb)) and finished_at > $2::timestamptz`,
    [JSON.stringify(floodIds), (done.finishedAt as Date).toISOString()],
  );
  expect(row?.n, 'flood runs finished after the timer run').toBeGreaterThanOrEqual(40);
  await small.stop();
});
