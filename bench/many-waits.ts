/**
 * Many callers waiting at once (bench/README.md, "thirteenth session"): `waitFor` on n runs that have
 * left memory (each waits for a signal) reads the database while it waits; those reads must not grow
 * into a queue that delays the answers. For each count: n runs started and evicted, `waitFor` called on
 * every one, then after a pause each is sent `go`. Printed: the time from the first send until every
 * run has finished (read from the database) and until every `waitFor` has answered, and the statements
 * the engine sent during the pause (its waits' reads and its worker's own), per second.
 *
 * `node --import tsx bench/many-waits.ts [counts…]` (300 1000 3000 by default); `RMAPP_BENCH_WAITS_DB`
 * names the scratch database.
 */
import postgres from 'postgres';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, openDatabase, type Database } from '../dist/index.js';
import { createDatabase, dropDatabase } from './measure.ts';

const ADMIN = process.env.RMAPP_BENCH_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const NAME = process.env.RMAPP_BENCH_WAITS_DB ?? 'rmapp_bench_waits';
const COUNTS = process.argv.length > 2 ? process.argv.slice(2).map(Number) : [300, 1000, 3000];
const PAUSE_MS = 3_000;

const machine = setup({ types: {} as { events: { type: 'go' } } }).createMachine({
  id: 'waits',
  initial: 'waiting',
  states: { waiting: { on: { go: 'done' } }, done: { type: 'final' } },
});
const workflow = defineWorkflow({ name: 'bench.waits', machine, input: z.object({}) });

const url = await createDatabase(ADMIN, NAME);
const sql = postgres(url, { max: 1, onnotice: () => {} });
/** Statements the engine has sent so far (its worker's included). */
let statements = 0;
const counted = (db: Database): Database =>
  new Proxy(db, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      const fn = value as (...a: unknown[]) => unknown;
      if (prop !== 'query' && prop !== 'script') return fn.bind(target);
      return (...args: unknown[]) => {
        statements++;
        return fn.apply(target, args);
      };
    },
  });
try {
  console.log('runs   all finished ms   all waits answered ms   engine statements/s while waiting');
  for (const count of COUNTS) {
    const db = await openDatabase({ url });
    const engine = createEngine({ database: counted(db), workflows: [workflow], evictAfterMs: 0 });
    await engine.startWorker();
    const ids = [];
    for (let n = 0; n < count; n++) ids.push(await engine.start(workflow, {}));
    for (;;) {
      const [row] = await sql`select count(*)::int as n from rmapp_runs where status = 'waiting' and id in ${sql(ids)}`;
      if (row!.n === count) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    let answered = 0;
    let lastAnswer = 0;
    const waits = ids.map((id) =>
      engine.waitFor(id).then(() => {
        answered++;
        lastAnswer = performance.now();
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    const before = statements;
    await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
    const perSecond = (statements - before) / (PAUSE_MS / 1000);
    const t = performance.now();
    for (const id of ids) await engine.send(id, { type: 'go' });
    let finished = 0;
    for (;;) {
      const [row] = await sql`select count(*)::int as n from rmapp_runs where status = 'succeeded' and id in ${sql(ids)}`;
      if (row!.n === count) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    finished = performance.now() - t;
    await Promise.all(waits);
    const allAnswered = lastAnswer - t;
    await engine.stop();
    await db.close();
    await sql`delete from rmapp_runs`;
    console.log(
      `${String(count).padStart(5)}   ${finished.toFixed(0).padStart(15)}   ${allAnswered.toFixed(0).padStart(21)}   ${perSecond.toFixed(0).padStart(33)}   (${answered} answered)`,
    );
  }
} finally {
  await sql.end();
  await dropDatabase(ADMIN, NAME);
}
