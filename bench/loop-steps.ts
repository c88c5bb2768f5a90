/**
 * A run that loops over items, one step per item spawned under the item's own id and stopped once done
 * (bench/README.md, "fourteenth session"): the cost of an iteration must not grow with the number of
 * step paths the run has used. Each path's count of finished executions is kept (it makes the next
 * execution's idempotency key new), and before the fourteenth session every commit rewrote all of
 * them in `rmapp_runs.steps`.
 *
 * Prints, for each window of iterations, the milliseconds per iteration and the bytes of the run row's
 * `steps` and `steps_done` columns at its end. `node --import tsx bench/loop-steps.ts [items] [window]
 * [failed]` (10000 1000 by default; `failed`: every item's step fails, and the machine handles it and
 * goes on); `RMAPP_BENCH_LOOP_DB` names the scratch database.
 */
import { setup, spawnChild, stopChild, assign } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, openDatabase, step } from '../dist/index.js';
import { createDatabase, dropDatabase } from './measure.ts';

const ADMIN = process.env.RMAPP_BENCH_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const NAME = process.env.RMAPP_BENCH_LOOP_DB ?? 'rmapp_bench_loop';
const ITEMS = Number(process.argv[2] ?? 10_000);
const WINDOW = Number(process.argv[3] ?? 1_000);
/** `failed`: each item's step fails (one attempt) and the machine goes on to the next item. */
const FAILED = process.argv[4] === 'failed';

const DONE = 'xstate.done.actor.';
const ERROR = 'xstate.error.actor.';
const machine = setup({
  types: {} as { context: { i: number; n: number }; input: { n: number } },
  actors: {
    work: step(
      async ({ input }: { input: { i: number } }) => {
        if (FAILED) throw new Error(`item ${input.i} fails`);
        return input.i;
      },
      { retry: { maxAttempts: 1 } },
    ),
  },
}).createMachine({
  id: 'loop',
  context: ({ input }) => ({ i: 0, n: input.n }),
  initial: 'next',
  states: {
    next: { always: [{ guard: ({ context }) => context.i >= context.n, target: 'done' }, { target: 'working' }] },
    working: {
      entry: spawnChild('work', { id: ({ context }) => `item-${context.i}`, input: ({ context }) => ({ i: context.i }) }),
      on: {
        [`${DONE}*`]: {
          target: 'next',
          actions: [stopChild(({ event }) => event.type.slice(DONE.length)), assign({ i: ({ context }) => context.i + 1 })],
        },
        [`${ERROR}*`]: {
          target: 'next',
          actions: [stopChild(({ event }) => event.type.slice(ERROR.length)), assign({ i: ({ context }) => context.i + 1 })],
        },
      },
    },
    done: { type: 'final' },
  },
});
const workflow = defineWorkflow({ name: 'bench.loop', machine, input: z.object({ n: z.number() }) });

const url = await createDatabase(ADMIN, NAME);
try {
  const db = await openDatabase({ url });
  const engine = createEngine({ database: db, workflows: [workflow] });
  await engine.startWorker();
  const id = await engine.start(workflow, { n: ITEMS });
  const columns = async () => {
    const [row] = await db.query<{ steps: number; done: number | null; i: number }>(
      `select pg_column_size(steps) as steps, pg_column_size(steps_done) as done,
         (snapshot -> 'context' ->> 'i')::int as i from rmapp_runs where id = $1`,
      [id],
    );
    return row as { steps: number; done: number | null; i: number };
  };
  console.log('iterations      ms per iteration   steps column B   steps_done column B');
  let last = { at: performance.now(), i: 0 };
  for (;;) {
    const status = (await engine.get(id)).status;
    const c = await columns();
    if (c.i >= last.i + WINDOW || status !== 'running') {
      const now = performance.now();
      if (c.i > last.i) {
        const per = (now - last.at) / (c.i - last.i);
        console.log(
          `${`${last.i}–${c.i}`.padStart(13)}   ${per.toFixed(2).padStart(16)}   ${String(c.steps).padStart(14)}   ${String(c.done ?? '-').padStart(19)}`,
        );
      }
      last = { at: now, i: c.i };
    }
    if (status !== 'running') break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  console.log(`run ${(await engine.get(id)).status}`);
  await engine.stop();
  await db.close();
} finally {
  await dropDatabase(ADMIN, NAME);
}
