/**
 * `npm run bench`: rmapp vs DBOS Transact vs the physical baseline on the machine's Postgres, the same
 * workload (6 sequential no-op steps, durable after each), printed as a table with ratios. Never a test.
 *
 * Environment: RMAPP_BENCH_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres),
 * RMAPP_BENCH_N1 (workflows at concurrency 1, default 1000), RMAPP_BENCH_N50 (at 50, default 3000),
 * RMAPP_BENCH_ONLY (comma list of sections: cli,c1,c50,recovery,memory,scale), RMAPP_BENCH_SCALE_RUNS (finished
 * runs seeded for the scale section, default 1,000,000), RMAPP_BENCH_WAITING (waiting runs of the memory
 * section, default 10000,100000), RMAPP_BENCH_DB_PREFIX (scratch database names, default rmapp_bench),
 * RMAPP_BENCH_WORKER_NODE_FLAGS (Node flags of rmapp's worker processes), RMAPP_BENCH_TS_CHILDREN=1 (child
 * processes load the TypeScript modules through tsx instead of bench/compile.ts's JavaScript).
 */
import { baselineThroughput } from './baseline.ts';
import { cliStartup } from './cli-startup.ts';
import { dbosRecovery, dbosThroughput } from './dbos.ts';
import { createDatabase, dropDatabase, percentile, readWriteCounters, walBytesBetween, type ThroughputResult } from './measure.ts';
import { rmappRecovery, rmappThroughput, rmappWaitingMemory } from './rmapp.ts';
import { scaleSection } from './scale.ts';

const ADMIN = process.env.RMAPP_BENCH_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const N1 = Number(process.env.RMAPP_BENCH_N1 ?? 1000);
const N50 = Number(process.env.RMAPP_BENCH_N50 ?? 3000);
const WAITING = (process.env.RMAPP_BENCH_WAITING ?? '10000,100000').split(',').map(Number);
/** RMAPP_BENCH_DB_PREFIX: another name for the scratch databases, when two benchmarks share a server. */
const PREFIX = process.env.RMAPP_BENCH_DB_PREFIX ?? 'rmapp_bench';
const ONLY = new Set((process.env.RMAPP_BENCH_ONLY ?? 'cli,c1,c50,recovery,memory,scale').split(','));

type Runner = (o: { databaseUrl: string; workflows: number; concurrency: number }) => Promise<ThroughputResult>;
const systems: [string, Runner][] = [
  ['rmapp', rmappThroughput],
  ['dbos', dbosThroughput],
  ['baseline', baselineThroughput],
];

interface Row {
  wfPerSec: number;
  p50: number;
  p99: number;
  commitsPerWf: number;
  /** Client statements per workflow, for the systems that count them (DBOS does not: '-'). */
  stmtsPerWf: number;
  walPerWf: number;
}

async function measure(system: string, run: Runner, workflows: number, concurrency: number): Promise<Row> {
  const name = `${PREFIX}_${system}_${concurrency}`;
  const url = await createDatabase(ADMIN, name);
  try {
    // Warm-up (schema creation, JIT, connection pool), then the measured batch: ten rounds of the
    // concurrency, at least 1,000 workflows (RMAPP_BENCH_WARMUP sets the number). 50 at c=50 was a single
    // round, and rmapp's c=50 figure then measured its JIT warming up as much as its steady state
    // (bench/README.md, "fifth session"); DBOS's and the baseline's did not move. The same held at c=1
    // with 50 (and a batch of 300): rmapp's CPU per workflow still fell until ~1,000 had run
    // (bench/README.md, "thirty-fifth session").
    const warmup = Number(process.env.RMAPP_BENCH_WARMUP ?? Math.max(1000, 10 * concurrency));
    await run({ databaseUrl: url, workflows: Math.min(warmup, workflows), concurrency });
    const before = await readWriteCounters(ADMIN, name);
    const r = await run({ databaseUrl: url, workflows, concurrency });
    const after = await readWriteCounters(ADMIN, name);
    const wal = await walBytesBetween(ADMIN, before.walLsn, after.walLsn);
    return {
      wfPerSec: (workflows / r.totalMs) * 1000,
      p50: percentile(r.latenciesMs, 50),
      p99: percentile(r.latenciesMs, 99),
      // Commits include the runner's set-up of a fresh batch (e.g. re-launch), a few per batch at most.
      commitsPerWf: (after.commits - before.commits) / workflows,
      stmtsPerWf: r.statements === undefined ? Number.NaN : r.statements / workflows,
      walPerWf: wal / workflows,
    };
  } finally {
    await dropDatabase(ADMIN, name);
  }
}

const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '-');
const pad = (s: string, w: number) => s.padStart(w);

async function main(): Promise<void> {
  const lines: string[] = [];
  const out = (s: string) => {
    lines.push(s);
    console.log(s);
  };
  out(`rmapp benchmark — ${new Date().toISOString()} — Node ${process.version}, Postgres at ${new URL(ADMIN).host}`);
  if (ONLY.has('cli')) {
    out('');
    for (const line of cliStartup()) out(line);
  }
  const results: Record<string, Record<string, Row>> = {};
  for (const c of [1, 50]) {
    if (!ONLY.has(`c${c}`)) continue;
    const n = c === 1 ? N1 : N50;
    out(`\nconcurrency ${c}, ${n} workflows of 6 no-op steps`);
    out(
      `${'system'.padEnd(10)}${pad('wf/s', 10)}${pad('p50 ms', 10)}${pad('p99 ms', 10)}${pad('commits/wf', 12)}${pad('stmts/wf', 10)}${pad('WAL B/wf', 12)}`,
    );
    results[c] = {};
    for (const [system, run] of systems) {
      const row = await measure(system, run, n, c);
      (results[c] as Record<string, Row>)[system] = row;
      out(
        `${system.padEnd(10)}${pad(fmt(row.wfPerSec), 10)}${pad(fmt(row.p50, 2), 10)}${pad(fmt(row.p99, 2), 10)}${pad(fmt(row.commitsPerWf), 12)}${pad(fmt(row.stmtsPerWf, 2), 10)}${pad(fmt(row.walPerWf, 0), 12)}`,
      );
    }
    const r = results[c] as Record<string, Row>;
    const rm = r.rmapp as Row;
    out(
      `ratios: rmapp/dbos ${fmt(rm.wfPerSec / (r.dbos as Row).wfPerSec, 2)}×  rmapp/baseline ${fmt(rm.wfPerSec / (r.baseline as Row).wfPerSec, 2)}×  WAL rmapp/dbos ${fmt(rm.walPerWf / (r.dbos as Row).walPerWf, 2)}×`,
    );
  }
  if (ONLY.has('recovery')) {
    out('\nrecovery: 1,000 runs SIGKILLed in step 4, time for a new process to finish them all');
    const a = await createDatabase(ADMIN, `${PREFIX}_recovery_rmapp`);
    const b = await createDatabase(ADMIN, `${PREFIX}_recovery_dbos`);
    try {
      const rm = await rmappRecovery({ databaseUrl: a, workflows: 1000 });
      const db = await dbosRecovery({ databaseUrl: b, workflows: 1000 });
      out(`rmapp ${fmt(rm.recoveryMs, 0)} ms   dbos ${fmt(db.recoveryMs, 0)} ms   rmapp/dbos ${fmt(rm.recoveryMs / db.recoveryMs, 2)}×`);
      out(`CPU of the new process (start-up included): rmapp worker ${fmt(rm.workerCpuMs, 0)} ms, dbos child ${fmt(db.childCpuMs, 0)} ms`);
      out(`CPU of Postgres meanwhile (all its processes): rmapp ${fmt(rm.postgresCpuMs, 0)} ms, dbos ${fmt(db.postgresCpuMs, 0)} ms`);
      const ph = rm.phases;
      out(
        `rmapp's new worker: first claim at ${fmt(ph.claimMs, 0)} ms, first run done at ${fmt(ph.firstDoneMs, 0)} ms, last at ${fmt(ph.lastDoneMs, 0)} ms`,
      );
    } finally {
      await dropDatabase(ADMIN, `${PREFIX}_recovery_rmapp`);
      await dropDatabase(ADMIN, `${PREFIX}_recovery_dbos`);
    }
  }
  if (ONLY.has('memory')) {
    for (const runs of WAITING) {
      out(`\nmemory: a worker with ${runs.toLocaleString('en-US')} runs waiting on a signal`);
      const url = await createDatabase(ADMIN, `${PREFIX}_memory`);
      try {
        const m = await rmappWaitingMemory({ databaseUrl: url, runs });
        out(`worker RSS ${fmt(m.rssMb, 0)} MB (peak ${fmt(m.peakMb, 0)} MB); runs still leased (in memory): ${m.heldInMemory}`);
      } finally {
        await dropDatabase(ADMIN, `${PREFIX}_memory`);
      }
    }
  }
  if (ONLY.has('scale')) await scaleSection(ADMIN, out, { c1: N1, c50: N50 });
}

await main();
