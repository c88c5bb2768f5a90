/**
 * A run with many pending timers (bench/README.md, "twelfth session"): its cost must grow with the
 * number of timers, not with its square. For each count, a run whose first state schedules that many
 * delayed events (all due in an hour) and then waits for `go`:
 *
 * 1. started and sent `go` at once, in one engine: the time until it has finished;
 * 2. started, its engine stopped, `go` sent, then a new engine restores it — timers re-armed and held
 *    while its signals are read (src/state_machine/timer-catch-up.ts): the time from the new engine's
 *    start until the run has finished;
 * 3. plain XState: the time to start the same machine, schedule every timer, send `go` and stop.
 *
 * `node --import tsx bench/many-timers.ts [counts…]` (100 1000 5000 by default); `RMAPP_BENCH_TIMERS_DB`
 * names the scratch database.
 */
import { createActor, enqueueActions, setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, openDatabase } from '../dist/index.js';
import { createDatabase, dropDatabase } from './measure.ts';

const ADMIN = process.env.RMAPP_BENCH_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const NAME = process.env.RMAPP_BENCH_TIMERS_DB ?? 'rmapp_bench_timers';
const COUNTS = process.argv.length > 2 ? process.argv.slice(2).map(Number) : [100, 1000, 5000];

const machineWith = (count: number) =>
  setup({ types: {} as { events: { type: 'go' } | { type: 'tick'; n: number } } }).createMachine({
    id: 'timers',
    initial: 'waiting',
    states: {
      waiting: {
        entry: enqueueActions(({ enqueue }) => {
          for (let n = 0; n < count; n++) enqueue.raise({ type: 'tick', n }, { delay: 3_600_000 + n, id: `tick${n}` });
        }),
        on: { go: 'done' },
      },
      done: { type: 'final' },
    },
  });

const url = await createDatabase(ADMIN, NAME);
try {
  console.log('timers   one engine ms   restored ms   plain XState ms');
  for (const count of COUNTS) {
    const machine = machineWith(count);
    const workflow = defineWorkflow({ name: `bench.timers${count}`, machine, input: z.object({}) });
    const engineWith = async () => {
      const db = await openDatabase({ url });
      return { engine: createEngine({ database: db, workflows: [workflow] }), db };
    };

    const a = await engineWith();
    await a.engine.startWorker();
    let t = performance.now();
    const first = await a.engine.start(workflow, {});
    await a.engine.send(first, { type: 'go' });
    await a.engine.waitFor(first);
    const oneEngine = performance.now() - t;

    const second = await a.engine.start(workflow, {});
    // Its timers persisted: the run waits for `go` in a committed state.
    while ((await a.engine.get(second)).state !== 'waiting') {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await a.engine.stop();
    await a.db.close();
    const b = await engineWith();
    await b.engine.send(second, { type: 'go' });
    t = performance.now();
    await b.engine.startWorker();
    await b.engine.waitFor(second);
    const restored = performance.now() - t;
    await b.engine.stop();
    await b.db.close();

    t = performance.now();
    const actor = createActor(machine).start();
    actor.send({ type: 'go' });
    actor.stop();
    const plain = performance.now() - t;
    console.log(
      `${String(count).padStart(6)}   ${oneEngine.toFixed(1).padStart(13)}   ${restored.toFixed(1).padStart(11)}   ${plain.toFixed(1).padStart(15)}`,
    );
  }
} finally {
  await dropDatabase(ADMIN, NAME);
}
