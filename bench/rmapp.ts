/** The rmapp side of the benchmark: throughput in one worker process, recovery and memory with real worker processes. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { createEngine, openDatabase, type Database } from '../dist/index.js';
import { COMPILED_WORKFLOWS, compileBenchModules, TYPESCRIPT_CHILDREN } from './compile.ts';
import { cpuMs, peakRssMb, postgresCpu, postgresCpuSince, runConcurrently, rssMb, type ThroughputResult } from './measure.ts';
import { workflows } from './workflows.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = `${ROOT}bin/rmapp.mjs`;
const WORKFLOWS = `${ROOT}bench/workflows.ts`;

/**
 * `workflows` runs of `bench.six` with at most `concurrency` in flight, in this process's worker: each
 * is started and awaited with `engine.waitFor`, as an application would. Every statement the engine
 * sends is counted (a wrapper around the database's `query` and `script`): `statements` is the total.
 */
export async function rmappThroughput(opts: { databaseUrl: string; workflows: number; concurrency: number }): Promise<ThroughputResult> {
  const db = await openDatabase({ url: opts.databaseUrl });
  let statements = 0;
  const counted: Database = {
    kind: db.kind,
    description: db.description,
    query: (text, params) => {
      statements += 1;
      return db.query(text, params);
    },
    script: (list) => {
      statements += 1;
      return db.script(list);
    },
    listen: (channel, fn) => db.listen(channel, fn),
    close: () => db.close(),
  };
  // The worker keeps its default settings (50 runs in memory); the workload decides how many are in flight.
  const engine = createEngine({ database: counted, workflows, concurrency: Math.max(opts.concurrency, 50) });
  await engine.startWorker();
  const before = statements;
  const result = await runConcurrently(opts.workflows, opts.concurrency, async () => {
    await engine.waitFor(await engine.start('bench.six', {}));
  });
  const sent = statements - before;
  await engine.stop();
  await db.close();
  return { ...result, statements: sent };
}

async function worker(databaseUrl: string, args: string[], env: Record<string, string> = {}): Promise<ChildProcess> {
  // RMAPP_BENCH_WORKER_NODE_FLAGS: Node/V8 flags for the worker processes (e.g. --optimize-for-size).
  const nodeFlags = (process.env.RMAPP_BENCH_WORKER_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  // The workflows module compiled to JavaScript, as a deployment runs it (bench/compile.ts), unless
  // RMAPP_BENCH_TS_CHILDREN=1 asks for the TypeScript module through tsx (the figures before 2026-12-02's
  // "Recovery, compiled" section in bench/README.md).
  if (!TYPESCRIPT_CHILDREN) await compileBenchModules();
  const workflowsModule = TYPESCRIPT_CHILDREN ? WORKFLOWS : COMPILED_WORKFLOWS;
  const child = spawn(process.execPath, [...nodeFlags, BIN, '--workflows', workflowsModule, 'worker', ...args], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: databaseUrl, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  // Keep the table readable: a worker's stderr is shown only if it exits on its own with an error.
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += d));
  child.on('exit', (code, signal) => {
    if (code && !signal) process.stderr.write(`benchmark: worker exited with ${code}:\n${stderr}`);
  });
  return child;
}

async function poll(check: () => Promise<boolean>, what: string, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`benchmark: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function startMany(databaseUrl: string, name: string, count: number): Promise<void> {
  const client = createEngine({ database: databaseUrl, workflows });
  await runConcurrently(count, 50, async () => {
    await client.start(name, {});
  });
  await client.stop();
}

/**
 * 1,000 runs interrupted by SIGKILL in step 4; returns the time from starting a new worker process
 * (same worker id, so it takes its previous incarnation's runs back at once) until all have finished.
 */
export async function rmappRecovery(opts: { databaseUrl: string; workflows: number }): Promise<{
  recoveryMs: number;
  workerCpuMs: number;
  postgresCpuMs: number;
  phases: { claimMs: number; firstDoneMs: number; lastDoneMs: number };
}> {
  await startMany(opts.databaseUrl, 'bench.six', opts.workflows);
  const sql = postgres(opts.databaseUrl, { max: 1, onnotice: () => {} });
  const count = async (where: string) => Number((await sql.unsafe(`select count(*)::int as n from rmapp_runs where ${where}`))[0]?.n);
  const args = ['--worker-id', 'bench-recovery', '-c', String(opts.workflows), '--lease-ms', '30000'];
  const first = await worker(opts.databaseUrl, args, { RMAPP_BENCH_HANG_STEP: '4' });
  await poll(async () => (await count(`state_value = '"step4"'`)) === opts.workflows, 'all runs to reach step 4');
  first.kill('SIGKILL');
  await new Promise((r) => first.once('exit', r));
  const [{ at: startedAt }] = (await sql`select clock_timestamp() as at`) as unknown as [{ at: Date }];
  const pgCpu0 = postgresCpu();
  const t0 = performance.now();
  const second = await worker(opts.databaseUrl, args);
  await poll(async () => (await count(`status = 'succeeded'`)) === opts.workflows, 'all runs to finish after recovery');
  const recoveryMs = performance.now() - t0;
  const workerCpuMs = cpuMs(second.pid as number);
  const postgresCpuMs = postgresCpuSince(pgCpu0);
  // Where the time went, by the database's clock: the new worker's first history row (its first claim
  // records the take-over), the first and the last run finished.
  const [p] = await sql`
    select extract(epoch from (select min(at) from rmapp_run_history where at > ${startedAt}) - ${startedAt}::timestamptz) * 1000 as claim,
           extract(epoch from min(finished_at) - ${startedAt}::timestamptz) * 1000 as first,
           extract(epoch from max(finished_at) - ${startedAt}::timestamptz) * 1000 as last
    from rmapp_runs`;
  const phases = { claimMs: Number(p?.claim), firstDoneMs: Number(p?.first), lastDoneMs: Number(p?.last) };
  second.kill('SIGTERM');
  await new Promise((r) => second.once('exit', r));
  await sql.end();
  return { recoveryMs, workerCpuMs, postgresCpuMs, phases };
}

/**
 * RSS of a worker process once `runs` runs wait on a signal (they are evicted, not held as actors), and
 * its peak on the way (the kernel's high-water mark, VmHWM, so no sample can miss it).
 */
export async function rmappWaitingMemory(opts: {
  databaseUrl: string;
  runs: number;
}): Promise<{ rssMb: number; peakMb: number; heldInMemory: number }> {
  await startMany(opts.databaseUrl, 'bench.wait', opts.runs);
  const sql = postgres(opts.databaseUrl, { max: 1, onnotice: () => {} });
  const child = await worker(opts.databaseUrl, ['-c', '500']);
  await poll(
    async () => Number((await sql`select count(*)::int as n from rmapp_runs where status = 'waiting'`)[0]?.n) === opts.runs,
    'all runs to wait',
    900_000,
  );
  await new Promise((r) => setTimeout(r, 1_000));
  const held = Number((await sql`select count(*)::int as n from rmapp_runs where lease_owner is not null`)[0]?.n);
  const rss = rssMb(child.pid as number);
  const peak = peakRssMb(child.pid as number);
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  await sql.end();
  return { rssMb: rss, peakMb: peak, heldInMemory: held };
}
