/**
 * A run with many spawned children (bench/README.md, "thirteenth session"): each event a waiting run
 * takes restores it, moves it and lets it leave memory again, so that event's cost must grow with the
 * number of children, not with its square. For each count, a run whose first state spawns that many
 * child machines (each waiting in its one state: the run only waits, and leaves memory after each event) and then takes `ping`s:
 *
 * 1. the time per `ping` sent to the run through one engine (restore, transition, commit, eviction);
 * 2. plain XState: the time to start the same machine, send the same pings and stop it.
 *
 * `node --import tsx bench/many-children.ts [counts…]` (100 1000 5000 by default); `RMAPP_BENCH_CHILDREN_DB`
 * names the scratch database.
 */
import { createActor, createMachine, enqueueActions, setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, openDatabase } from '../dist/index.js';
import { createDatabase, dropDatabase } from './measure.ts';

const ADMIN = process.env.RMAPP_BENCH_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const NAME = process.env.RMAPP_BENCH_CHILDREN_DB ?? 'rmapp_bench_children';
const COUNTS = process.argv.length > 2 ? process.argv.slice(2).map(Number) : [100, 1000, 5000];
const PINGS = 5;

const machineWith = (count: number) =>
  setup({
    types: {} as { events: { type: 'ping' } | { type: 'done' } },
    actors: { idle: createMachine({ initial: 'idle', states: { idle: {} } }) },
  }).createMachine({
    id: 'children',
    initial: 'live',
    states: {
      live: {
        entry: enqueueActions(({ enqueue }) => {
          for (let n = 0; n < count; n++) enqueue.spawnChild('idle', { id: `child${n}` });
        }),
        initial: 'a',
        states: { a: { on: { ping: 'b' } }, b: { on: { ping: 'a' } } },
        on: { done: 'done' },
      },
      done: { type: 'final' },
    },
  });

const url = await createDatabase(ADMIN, NAME);
try {
  console.log(`children   ms per ping (rmapp, ${PINGS} pings)   plain XState ms (start, ${PINGS} pings, stop)`);
  for (const count of COUNTS) {
    const machine = machineWith(count);
    const workflow = defineWorkflow({ name: `bench.children${count}`, machine, input: z.object({}) });
    const db = await openDatabase({ url });
    const engine = createEngine({ database: db, workflows: [workflow] });
    await engine.startWorker();
    const run = await engine.start(workflow, {});
    const stateIs = async (leaf: string) => JSON.stringify((await engine.get(run)).state) === JSON.stringify({ live: leaf });
    while (!(await stateIs('a'))) await new Promise((resolve) => setTimeout(resolve, 20));
    const t = performance.now();
    for (let n = 1; n <= PINGS; n++) {
      await engine.send(run, { type: 'ping' });
      while (!(await stateIs(n % 2 ? 'b' : 'a'))) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const perPing = (performance.now() - t) / PINGS;
    await engine.send(run, { type: 'done' });
    await engine.waitFor(run);
    await engine.stop();
    await db.close();

    const t2 = performance.now();
    const actor = createActor(machine).start();
    for (let n = 0; n < PINGS; n++) actor.send({ type: 'ping' });
    actor.stop();
    const plain = performance.now() - t2;
    console.log(`${String(count).padStart(8)}   ${perPing.toFixed(1).padStart(31)}   ${plain.toFixed(1).padStart(15)}`);
  }
} finally {
  await dropDatabase(ADMIN, NAME);
}
