/**
 * A long-running run keeps a bounded history: a loop of 12,000 transitions (6,000 step iterations, one
 * commit and one history row each: 20 times the bound, ~30 compactions) never holds more than the bound,
 * and the summary row accounts for every folded event. (It was 50,000 transitions, 64–80 s of the suite
 * spent repeating the same compaction cycle.)
 */
import { assign, setup } from 'xstate';
import { z } from 'zod';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, defineWorkflow, openDatabase, step, type Database, type Engine } from '../src/index.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';

const ITERATIONS = 6_000; // each is 2 transitions: ticking → check → ticking
const MAX_ROWS = 300;
const KEEP_LAST = 100;

const loop = defineWorkflow({
  name: 'test.loop',
  input: z.object({ n: z.number().int().positive() }),
  machine: setup({
    types: {} as { input: { n: number }; context: { n: number; i: number } },
    actors: { tick: step(async () => 1) },
  }).createMachine({
    id: 'loop',
    context: ({ input }) => ({ n: input.n, i: 0 }),
    initial: 'ticking',
    states: {
      ticking: { invoke: { src: 'tick', onDone: { target: 'check', actions: assign({ i: ({ context }) => context.i + 1 }) } } },
      check: { always: [{ guard: ({ context }) => context.i >= context.n, target: 'done' }, { target: 'ticking' }] },
      done: { type: 'final' },
    },
    output: ({ context }) => ({ i: context.i }),
  }),
});

let testDb: TestDatabase;
let db: Database;
let engine: Engine;

beforeAll(async () => {
  testDb = await createTestDatabase();
  db = await openDatabase({ url: testDb.url });
  engine = createEngine({ database: db, workflows: [loop], history: { maxRows: MAX_ROWS, keepLast: KEEP_LAST } });
  await engine.startWorker();
});
afterAll(async () => {
  await engine.stop();
  await db.close();
  await testDb.drop();
});

it('a 12,000-transition loop keeps its history under the bound, and the summary adds up', { timeout: 180_000 }, async () => {
  const id = await engine.start('test.loop', { n: ITERATIONS });
  let maxRows = 0;
  let samples = 0;
  for (;;) {
    const [row] = await db.query<{ n: number }>(`select count(*)::int as n from rmapp_run_history where run_id = $1`, [id]);
    maxRows = Math.max(maxRows, row?.n ?? 0);
    samples += 1;
    if ((await engine.get(id)).status === 'succeeded') break;
    await new Promise((r) => setTimeout(r, 20));
  }
  expect(samples).toBeGreaterThan(10);
  // Compaction runs beside the commits, starting a little below the bound; at the bound a write that
  // adds a row waits for it.
  expect(maxRows).toBeLessThanOrEqual(MAX_ROWS);
  const history = await engine.history(id);
  const summary = history[0];
  expect(summary?.type).toBe('history.compacted');
  const folded = (summary?.data as { byType: Record<string, number> }).byType;
  const kept = history.filter((h) => h.type === 'step.succeeded').length;
  expect((folded['step.succeeded'] ?? 0) + kept).toBe(ITERATIONS);
  expect(history.filter((h) => h.type === 'history.compacted')).toHaveLength(1);
  expect(history.at(-1)?.type).toBe('run.succeeded');
  expect((await engine.get(id)).output).toEqual({ i: ITERATIONS });
});
