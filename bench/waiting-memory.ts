/**
 * Where a worker's memory goes with many runs waiting on a signal: starts `N` runs of `bench.wait`, runs
 * a worker in this process until all wait, then prints `process.memoryUsage()` after a full GC (and,
 * with RMAPP_BENCH_HEAP=path, writes a heap snapshot there). `node --expose-gc --import tsx
 * bench/waiting-memory.ts [runs]`. The benchmark's memory section measures a real worker process.
 */
import { setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import postgres from 'postgres';
import { createEngine } from '../dist/index.js';
import { createDatabase, dropDatabase } from './measure.ts';
import { wait, workflows } from './workflows.ts';

const ADMIN = process.env.RMAPP_BENCH_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const N = Number(process.argv[2] ?? 10_000);
const NAME = `${process.env.RMAPP_BENCH_DB_PREFIX ?? 'rmapp_bench'}_waiting_memory`;
const mb = (n: number) => `${(n / 1024 / 1024).toFixed(0)} MB`;
const gc = (globalThis as { gc?: () => void }).gc;

if (process.env.RMAPP_BENCH_V8_FLAGS) setFlagsFromString(process.env.RMAPP_BENCH_V8_FLAGS);
const url = await createDatabase(ADMIN, NAME);
const sql = postgres(url, { max: 1, onnotice: () => {} });
try {
  // Pending runs inserted in SQL (fast); the worker claims and runs them as any others.
  await createEngine({ database: url, workflows }).db();
  await sql.unsafe(
    `insert into rmapp_runs (id, workflow, workflow_version, status, input, wake_at)
     select 'mem-' || lpad(g::text, 7, '0'), 'bench.wait', $1, 'pending', '{}', now() from generate_series(1, ${N}) g`,
    [wait.version],
  );
  gc?.();
  const base = process.memoryUsage();
  console.log(`before the worker: rss ${mb(base.rss)} heap ${mb(base.heapUsed)}`);
  const engine = createEngine({ database: url, workflows, concurrency: Number(process.env.RMAPP_BENCH_CONCURRENCY ?? 500) });
  await engine.startWorker();
  let peak = 0;
  let peakHeap = 0;
  const sampler = setInterval(() => {
    const u = process.memoryUsage();
    peak = Math.max(peak, u.rss);
    peakHeap = Math.max(peakHeap, u.heapUsed);
  }, 50);
  const at = Number(process.env.RMAPP_BENCH_HEAP_AT_ACTIVE ?? 0);
  if (at > 0) {
    // A snapshot while `at` runs are held in memory: what one session costs.
    while (engine.activeRuns < at) await new Promise((r) => setImmediate(r));
    gc?.();
    console.log(
      `${engine.activeRuns} in memory: heapUsed ${mb(process.memoryUsage().heapUsed)}; ${writeHeapSnapshot('/tmp/rmapp-active.heapsnapshot')}`,
    );
  }
  for (;;) {
    const n = Number((await sql`select count(*)::int as n from rmapp_runs where status = 'waiting'`)[0]?.n);
    if (n === N) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  clearInterval(sampler);
  await new Promise((r) => setTimeout(r, 1_000));
  gc?.();
  const m = process.memoryUsage();
  console.log(
    `${N} waiting: rss ${mb(m.rss)} (peak ${mb(peak)}, heapUsed peak ${mb(peakHeap)}) heapUsed ${mb(m.heapUsed)} heapTotal ${mb(m.heapTotal)} external ${mb(m.external)} arrayBuffers ${mb(m.arrayBuffers)}; in memory ${engine.activeRuns}`,
  );
  if (process.env.RMAPP_BENCH_HEAP) console.log(`heap snapshot: ${writeHeapSnapshot(process.env.RMAPP_BENCH_HEAP)}`);
  await engine.stop();
} finally {
  await sql.end();
  await dropDatabase(ADMIN, NAME);
}
