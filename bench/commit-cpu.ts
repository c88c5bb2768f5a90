/**
 * What one batch commit of 50 runs costs Postgres: the commit statement of `persistence/commits.ts`,
 * 300 times over the same 50 claimed runs (each a mid-workflow write: snapshot, steps, one history
 * row), with the CPU time of the database's backends read from /proc (Postgres on this machine) next
 * to the wall time. CPU, because wall time on the shared machine swings with the neighbours' load.
 * `node --import tsx bench/commit-cpu.ts`; A/B by running it in two checkouts, alternately.
 * `RMAPP_BENCH_COMMIT_DB` names the scratch database.
 */
import { readFileSync } from 'node:fs';
import { claimRuns } from '../src/persistence/claims.ts';
import { commitRunWrites, type RunWrite } from '../src/persistence/commits.ts';
import { openDatabase } from '../src/persistence/database.ts';
import { migrate } from '../src/persistence/migrate.ts';
import { insertRun } from '../src/persistence/runs.ts';
import { createDatabase, dropDatabase } from './measure.ts';

const ADMIN = process.env.RMAPP_BENCH_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const NAME = process.env.RMAPP_BENCH_COMMIT_DB ?? 'rmapp_bench_commit';
const RUNS = 50;
const ROUNDS = 300;

const url = await createDatabase(ADMIN, NAME);
const db = await openDatabase({ url });
try {
  await migrate(db);
  const owner = 'bench:commit-cpu';
  for (let i = 0; i < RUNS; i++)
    await insertRun(db, { id: `run-${String(i).padStart(3, '0')}`, workflow: 'w', workflowVersion: 'v', input: {} });
  const claimed = await claimRuns(db, { owner, leaseMs: 600_000, limit: RUNS, definitions: [['w', 'v']] });
  const fence = new Map(claimed.map((r) => [r.id, { version: r.version, epoch: r.leaseEpoch }]));
  const snapshot = {
    value: 'step3',
    context: {},
    children: { '0.six.step3': { src: 'noop', snapshot: { input: { n: 3 }, status: 'active' } } },
  };
  const write = (id: string): RunWrite => {
    const f = fence.get(id) as { version: number; epoch: number };
    return {
      id,
      expectedVersion: f.version,
      owner,
      epoch: f.epoch,
      status: 'running',
      snapshot,
      stateValue: 'step3',
      output: null,
      error: null,
      timers: [],
      steps: { '0.six.step1': 1, '0.six.step2': 1, '0.six.step3': { done: 0, attempt: 1 } },
      stepsDone: null,
      wakeAt: null,
      release: false,
      statusMessage: null,
      seenSignalSeq: 0,
      consumedSignals: [],
      reportedSignals: [],
      history: [{ type: 'step.done', path: '0.six.step2' }],
    };
  };
  // Listed in descending id order, as a batch arrives in any order.
  const ids = [...fence.keys()].reverse();
  const round = async () => {
    const results = await commitRunWrites(db, ids.map(write));
    if (results.length !== RUNS) throw new Error(`benchmark: ${RUNS - results.length} writes lost their fence`);
    for (const r of results) fence.set(r.id, { version: r.version, epoch: fence.get(r.id)?.epoch ?? 0 });
  };
  for (let i = 0; i < 20; i++) await round();
  const pids = (await db.query<{ pid: number }>('select pid from pg_stat_activity where datname = current_database()')).map((r) => r.pid);
  const ticks = (pid: number) => {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return Number(fields[11]) + Number(fields[12]);
  };
  const cpu = () => pids.reduce((sum, pid) => sum + ticks(pid), 0) * 10; // USER_HZ 100
  const cpu0 = cpu();
  const t0 = performance.now();
  for (let i = 0; i < ROUNDS; i++) await round();
  const wall = (performance.now() - t0) / ROUNDS;
  console.log(
    `batch commit of ${RUNS} runs: ${wall.toFixed(2)} ms wall, ${((cpu() - cpu0) / ROUNDS).toFixed(2)} ms of Postgres backend CPU`,
  );
} finally {
  await db.close();
  await dropDatabase(ADMIN, NAME);
}
