/** Measurement helpers shared by the benchmark's workloads. */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import postgres from 'postgres';

export interface ThroughputResult {
  latenciesMs: number[];
  totalMs: number;
  /** Client statements the system sent during the batch, when it counts them (rmapp, baseline). */
  statements?: number | undefined;
}

/** Runs `count` tasks with at most `concurrency` in flight; records each task's latency. */
export async function runConcurrently(count: number, concurrency: number, task: () => Promise<void>): Promise<ThroughputResult> {
  const latenciesMs: number[] = [];
  let started = 0;
  const t0 = performance.now();
  const lane = async () => {
    while (started < count) {
      started += 1;
      const s = performance.now();
      await task();
      latenciesMs.push(performance.now() - s);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  return { latenciesMs, totalMs: performance.now() - t0 };
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

/** Cluster-wide WAL position and the database's commit count, to price a workload. */
export interface WriteCounters {
  walLsn: string;
  commits: number;
}

export async function readWriteCounters(adminUrl: string, database: string): Promise<WriteCounters> {
  const sql = postgres(adminUrl, { max: 1, onnotice: () => {} });
  // Statistics are flushed by each backend at most once a second; give the last ones time to land.
  await new Promise((r) => setTimeout(r, 1_200));
  const [row] = await sql<{ lsn: string; commits: string }[]>`
    select pg_current_wal_lsn()::text as lsn,
           (select xact_commit from pg_stat_database where datname = ${database})::text as commits`;
  await sql.end();
  return { walLsn: row?.lsn ?? '0/0', commits: Number(row?.commits ?? 0) };
}

export async function walBytesBetween(adminUrl: string, from: string, to: string): Promise<number> {
  const sql = postgres(adminUrl, { max: 1, onnotice: () => {} });
  const [row] = await sql<{ n: string }[]>`select pg_wal_lsn_diff(${to}::pg_lsn, ${from}::pg_lsn)::text as n`;
  await sql.end();
  return Number(row?.n ?? 0);
}

/** Resident set size of a process, in MB. */
export function rssMb(pid: number): number {
  const kb = Number(
    execFileSync('ps', ['-o', 'rss=', '-p', String(pid)])
      .toString()
      .trim(),
  );
  return kb / 1024;
}

/** Peak resident set size of a live process so far (VmHWM, Linux), in MB. */
export function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  return kb / 1024;
}

/**
 * CPU time (user + system) a live process has used so far, in ms (Linux /proc, clock ticks of 10 ms):
 * the machine is shared, so a wall time alone cannot tell a change from a neighbour's load.
 */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/**
 * CPU time (user + system) of this machine's Postgres processes so far, in ms by process id: the server's
 * share of a phase the benchmark times (it runs on the same two cores as the worker). Give the reading
 * at the start of the phase to {@link postgresCpuSince}.
 */
export function postgresCpu(): Map<number, number> {
  const byPid = new Map<number, number>();
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres') byPid.set(Number(pid), cpuMs(Number(pid)));
    } catch {
      // exited meanwhile
    }
  }
  return byPid;
}

/**
 * Postgres's CPU since `start`, counted over the processes alive now: a backend that exited meanwhile
 * (a killed worker's connection) is left out rather than subtracted, so read it while the phase's own
 * connections are still open.
 */
export function postgresCpuSince(start: Map<number, number>): number {
  let total = 0;
  for (const [pid, ms] of postgresCpu()) total += ms - (start.get(pid) ?? 0);
  return total;
}

export async function createDatabase(adminUrl: string, name: string): Promise<string> {
  const sql = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await sql.unsafe(`drop database if exists ${name} with (force)`);
  await sql.unsafe(`create database ${name}`);
  await sql.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  const sql = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await sql.unsafe(`drop database if exists ${name} with (force)`);
  await sql.end();
}
