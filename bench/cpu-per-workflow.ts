/**
 * CPU per workflow of the benchmark workload (`bench.six`, 6 no-op steps): this process's (the worker)
 * and the Postgres backends' serving its database (read from /proc: Postgres on this machine), over
 * `[workflows]` runs at `[concurrency]` after 300 to warm up. CPU, not wall time: on the shared
 * machine wall time swings with the neighbours' load. A/B by running it in two checkouts, alternately.
 * `node --import tsx bench/cpu-per-workflow.ts [workflows] [concurrency]` (3000 50 by default);
 * `RMAPP_BENCH_CPU_DB` names the scratch database. RMAPP_BENCH_HEAP_GROWING_PERCENT=N sets
 * `--heap-growing-percent=N` first, as `rmapp worker` does for itself (src/rmapp/cli/heap-growth.ts).
 */
import { setFlagsFromString } from 'node:v8';
import { createEngine, openDatabase } from '../dist/index.js';
import { cpuMs, createDatabase, dropDatabase, runConcurrently } from './measure.ts';
import { workflows } from './workflows.ts';

const ADMIN = process.env.RMAPP_BENCH_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const NAME = process.env.RMAPP_BENCH_CPU_DB ?? 'rmapp_bench_cpu';
const N = Number(process.argv[2] ?? 3000);
const C = Number(process.argv[3] ?? 50);

const growth = process.env.RMAPP_BENCH_HEAP_GROWING_PERCENT || undefined;
if (growth) setFlagsFromString(`--heap-growing-percent=${growth}`);
const url = await createDatabase(ADMIN, NAME);
const db = await openDatabase({ url });
const engine = createEngine({ database: db, workflows, concurrency: Math.max(C, 50) });
try {
  await engine.startWorker();
  const batch = (n: number) =>
    runConcurrently(n, C, async () => {
      await engine.waitFor(await engine.start('bench.six', {}));
    });
  await batch(300);
  const cpu = (pid: number) => {
    try {
      return cpuMs(pid);
    } catch {
      return 0; // the backend has gone
    }
  };
  const backends = async () =>
    (await db.query<{ pid: number }>('select pid from pg_stat_activity where datname = current_database()')).map((r) => r.pid);
  const before = new Map((await backends()).map((pid) => [pid, cpu(pid)]));
  const node0 = process.cpuUsage();
  const t0 = performance.now();
  await batch(N);
  const wall = performance.now() - t0;
  const node = process.cpuUsage(node0);
  let postgres = 0;
  for (const pid of await backends()) postgres += cpu(pid) - (before.get(pid) ?? 0);
  console.log(
    `c=${C}, ${N} workflows: worker ${((node.user + node.system) / 1000 / N).toFixed(2)} ms CPU per workflow (user ${(node.user / 1000 / N).toFixed(2)}, system ${(node.system / 1000 / N).toFixed(2)}), ` +
      `Postgres backends ${(postgres / N).toFixed(2)} ms (USER_HZ 100); ${(N / (wall / 1000)).toFixed(0)} wf/s wall`,
  );
} finally {
  await engine.stop();
  await db.close();
  await dropDatabase(ADMIN, NAME);
}
