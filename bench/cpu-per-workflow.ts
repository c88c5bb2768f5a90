/**
 * CPU time of this process per workflow at concurrency 50 (rmapp's in-process worker, `bench.six`), to
 * check that a V8 setting of the worker costs no CPU: `node --import tsx bench/cpu-per-workflow.ts`;
 * RMAPP_BENCH_HEAP_GROWING_PERCENT=N sets `--heap-growing-percent=N` first, as `rmapp worker` does for
 * itself (src/rmapp/cli/heap-growth.ts); RMAPP_BENCH_N50 workflows (default 3000). Prints CPU per
 * workflow, throughput and the process's peak RSS. Run A/B alternately: CPU time swings with load too.
 */
import { setFlagsFromString } from 'node:v8';
import { createDatabase, dropDatabase } from './measure.ts';
import { rmappThroughput } from './rmapp.ts';

const ADMIN = process.env.RMAPP_BENCH_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const NAME = `${process.env.RMAPP_BENCH_DB_PREFIX ?? 'rmapp_bench'}_cpu_per_workflow`;
const N = Number(process.env.RMAPP_BENCH_N50 ?? 3000);
const growth = process.env.RMAPP_BENCH_HEAP_GROWING_PERCENT || undefined;

if (growth) setFlagsFromString(`--heap-growing-percent=${growth}`);
const url = await createDatabase(ADMIN, NAME);
try {
  await rmappThroughput({ databaseUrl: url, workflows: 50, concurrency: 50 }); // warm-up
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await rmappThroughput({ databaseUrl: url, workflows: N, concurrency: 50 });
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - t0;
  console.log(
    `heap growing percent ${growth ?? 'V8 default'}: CPU ${((cpu.user + cpu.system) / 1000 / N).toFixed(3)} ms per workflow, ${((N / wall) * 1000).toFixed(0)} wf/s, peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`,
  );
} finally {
  await dropDatabase(ADMIN, NAME);
}
