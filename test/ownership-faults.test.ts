/**
 * Run ownership under faults (issue 14), with real worker processes on real Postgres and a ledger
 * outside the engine that records every execution of every step (test/helpers/ledger.ts). For each
 * fault: every run succeeds, every step succeeds once in history, no two executions of one run overlap
 * in time (in one process or across processes), and no attempt is recorded that did not run — unless
 * the history shows the run taken over from that worker afterwards (its lease expired before the work
 * could begin).
 * Figures (executions per key, take-over latency) are printed, not asserted.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, openDatabase, type Database, type Engine } from '../src/index.ts';
import { durabilityWorkflows } from './helpers/durability-workflows.ts';
import { executionsOf, executionsPerKey, overlapsOf, readLedger, type Execution } from './helpers/ledger.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { startPrivatePostgres, type PrivatePostgres } from './helpers/private-postgres.ts';
import { killAll, spawnRmapp, TEST_WORKFLOWS, until, type Spawned } from './helpers/processes.ts';
import { failingWorkflow, sequenceWorkflow } from './helpers/workflows.ts';

const workflows = () => [sequenceWorkflow(6), failingWorkflow(), ...durabilityWorkflows()];
const STEPS = 6;

let testDb: TestDatabase;
let db: Database;
let client: Engine;

beforeAll(async () => {
  testDb = await createTestDatabase();
  db = await openDatabase({ url: testDb.url });
  client = createEngine({ database: db, workflows: workflows() });
  await client.db();
});
afterEach(() => killAll());
afterAll(async () => {
  await client.stop();
  await db.close();
  await testDb.drop();
});

const newLedger = () => join(mkdtempSync(join(tmpdir(), 'rmapp-ledger-')), 'ledger.jsonl');
const workerArgs = (leaseMs: number, concurrency: number, pollMs = 200) => [
  '--workflows',
  TEST_WORKFLOWS,
  'worker',
  '--lease-ms',
  String(leaseMs),
  '--concurrency',
  String(concurrency),
  '--poll-ms',
  String(pollMs),
];

async function startRuns(engine: Engine, n: number, input: Record<string, unknown>): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push(await engine.start('test.sequence', input));
  return ids;
}

async function succeeded(store: Database, ids: string[]): Promise<number> {
  const rows = await store.query<{ n: number }>(
    `select count(*)::int as n from rmapp_runs where status = 'succeeded' and id in (select jsonb_array_elements_text($1::jsonb))`,
    [JSON.stringify(ids)],
  );
  return rows[0]?.n ?? 0;
}

interface HistoryStep {
  run_id: string;
  type: string;
  path: string;
  attempt: number;
  worker: string | null;
  /** For `lease.taken_over`: the owner the run was taken from. */
  from_owner: string | null;
  row: number;
}

/**
 * The checks every fault shares. `excludeWorker` names an owner pattern (SQL LIKE) whose recorded
 * attempts may not have run: a process killed between an attempt's durable start and its work.
 */
async function checkOwnership(
  store: Database,
  ids: string[],
  ledgerFile: string,
  options: { killedAt?: Map<number, number>; excludeWorker?: string } = {},
) {
  expect(await succeeded(store, ids), 'runs that succeeded').toBe(ids.length);
  const history = await store.query<HistoryStep>(
    `select h.run_id, e->>'type' as type, e->>'path' as path, (e->>'attempt')::int as attempt, h.worker, e->'data'->>'from' as from_owner, h.id::int as row
     from rmapp_run_history h, jsonb_array_elements(rmapp_history_events(h.events, h.log)) e
     where h.run_id in (select jsonb_array_elements_text($1::jsonb)) and e->>'type' in ('step.started', 'step.resumed', 'step.succeeded', 'lease.taken_over')`,
    [JSON.stringify(ids)],
  );
  const successes = new Map<string, number>();
  for (const h of history.filter((h) => h.type === 'step.succeeded'))
    successes.set(`${h.run_id}/${h.path}`, (successes.get(`${h.run_id}/${h.path}`) ?? 0) + 1);
  expect(successes.size, 'steps with a step.succeeded row').toBe(ids.length * STEPS);
  expect(
    [...successes].filter(([, n]) => n !== 1),
    'steps that succeeded more than once',
  ).toEqual([]);

  const executions = executionsOf(readLedger(ledgerFile));
  expect(overlapsOf(executions, options.killedAt), 'executions of one run that overlapped').toEqual([]);
  const ran = new Set(executions.map((x) => `${x.key}#${x.attempt}`));
  const excluded = (w: string | null) =>
    options.excludeWorker !== undefined && w !== null && new RegExp(`^${options.excludeWorker.replace(/%/g, '.*')}$`).test(w);
  // A worker that recorded an attempt and then lost the run before its work began (its lease expired
  // during an outage and another worker took the run over) leaves an attempt that never ran: allowed
  // only when the history shows that take-over, from that worker, after the attempt.
  const takenFromAfter = (h: HistoryStep) =>
    history.some((t) => t.type === 'lease.taken_over' && t.run_id === h.run_id && t.from_owner === h.worker && t.row > h.row);
  const phantom = history
    .filter((h) => h.type === 'step.started' && !excluded(h.worker) && !ran.has(`${h.run_id}/${h.path}#${h.attempt}`) && !takenFromAfter(h))
    .map((h) => `${h.run_id}/${h.path} attempt ${h.attempt} by ${h.worker}`);
  expect(phantom, 'attempts recorded in history that never ran').toEqual([]);
  return executions;
}

function figures(label: string, executions: Execution[], keys: number): string {
  const perKey = executionsPerKey(executions);
  const twice = [...perKey.values()].filter((n) => n > 1).length;
  const line = `${label}: ${executions.length} executions for ${keys} step keys (${(executions.length / keys).toFixed(3)} per key; ${twice} keys ran more than once)`;
  console.log(line);
  return line;
}

describe('worker processes on the shared Postgres', () => {
  it('slow lease renewals (every reply 400 ms late): no run is dropped, every step runs exactly once', async () => {
    const ledgerFile = newLedger();
    const ids = await startRuns(client, 120, { everyMs: 30 });
    const worker = spawnRmapp(workerArgs(2_000, 20), {
      DATABASE_URL: testDb.url,
      RMAPP_TEST_LEDGER: ledgerFile,
      RMAPP_DB_FAULT: 'renew:delay:400',
    });
    await until(async () => (await succeeded(db, ids)) === ids.length || worker.child.exitCode !== null, 120_000, 'all runs to succeed');
    const executions = await checkOwnership(db, ids, ledgerFile);
    figures('slow renewals', executions, ids.length * STEPS);
    expect(
      [...executionsPerKey(executions)].filter(([, n]) => n !== 1),
      'step keys executed other than once',
    ).toEqual([]);
    expect(worker.output()).not.toMatch(/no longer owned/);
  });

  it('the database unreachable for longer than the lease: work in flight stops itself, work not begun waits and runs once, never twice at once', async () => {
    const ledgerFile = newLedger();
    // 20 runs whose step3 works through the outage (it must stop itself: the lease may be taken), and
    // 20 whose short steps are between works when it starts (they must wait and confirm the lease).
    const slow = await startRuns(client, 20, { everyMs: 100, slowStep: 'step3', slowMs: 4_000 });
    const quick = await startRuns(client, 20, { everyMs: 100 });
    const ids = [...slow, ...quick];
    // From the 4th renewal on, renewals, claims and commits fail for 2.5 s against a 1 s lease.
    const worker = spawnRmapp(workerArgs(1_000, 40), {
      DATABASE_URL: testDb.url,
      RMAPP_TEST_LEDGER: ledgerFile,
      RMAPP_DB_FAULT: '*:fail:4:2500',
    });
    await until(async () => (await succeeded(db, ids)) === ids.length || worker.child.exitCode !== null, 120_000, 'all runs to succeed');
    expect(worker.child.exitCode, worker.output()).toBeNull();
    const executions = await checkOwnership(db, ids, ledgerFile);
    figures('outage longer than the lease', executions, ids.length * STEPS);
    expect(worker.output(), 'sessions with work in flight fenced themselves').toMatch(/self-fence/);
    const perKey = executionsPerKey(executions);
    const again = (runs: string[]) =>
      runs.flatMap((id) => [...perKey].filter(([key, n]) => key.startsWith(`${id}/`) && n > 1).map(([key, n]) => `${key} ×${n}`));
    expect(again(quick), 'steps of runs with no work in flight that ran more than once').toEqual([]);
    expect(again(slow).length, 'step3 executions cut off by the outage and run again').toBeGreaterThan(0);
  });

  it('commits applied but their replies lost (a connection broken during COMMIT): each session finds its own write, every step runs once', async () => {
    const ledgerFile = newLedger();
    const ids = await startRuns(client, 40, { everyMs: 30 });
    // From the 5th commit statement on, 8 in a row are applied by Postgres but answered by an error.
    const worker = spawnRmapp(workerArgs(2_000, 20), {
      DATABASE_URL: testDb.url,
      RMAPP_TEST_LEDGER: ledgerFile,
      RMAPP_DB_FAULT: 'commit:unanswered:5:8',
    });
    await until(async () => (await succeeded(db, ids)) === ids.length || worker.child.exitCode !== null, 120_000, 'all runs to succeed');
    expect(worker.child.exitCode, worker.output()).toBeNull();
    expect(worker.output(), 'the fault was injected').toMatch(/injected lost reply/);
    const executions = await checkOwnership(db, ids, ledgerFile);
    figures('lost commit replies', executions, ids.length * STEPS);
    expect(
      [...executionsPerKey(executions)].filter(([, n]) => n !== 1),
      'step keys executed other than once',
    ).toEqual([]);
    expect(worker.output(), 'a session took its own applied write for a lost run').not.toMatch(/no longer owned/);
  });

  it('the runs table locked for longer than the lease, four times, under two workers: no lease moves back, no step runs twice at once', async () => {
    const ledgerFile = newLedger();
    // A renewal queued behind the lock computes its expiry from its statement's start, before the lock
    // went; committed after a renewal sent later, it moved the expiry back, and the other worker claimed
    // a run whose owner was starting a step (claims.ts renewLeases). A trigger counts such writes.
    await db.query(`create table lowered_leases (id text, owner text, epoch int, was timestamptz, now timestamptz)`);
    await db.query(`create function record_lowered_lease() returns trigger language plpgsql as $$ begin
      if new.lease_owner = old.lease_owner and new.lease_epoch = old.lease_epoch and new.lease_expires_at < old.lease_expires_at then
        insert into lowered_leases values (new.id, new.lease_owner, new.lease_epoch, old.lease_expires_at, new.lease_expires_at);
      end if; return new; end $$`);
    await db.query(`create trigger record_lowered_lease before update on rmapp_runs for each row execute function record_lowered_lease()`);
    try {
      const env = { DATABASE_URL: testDb.url, RMAPP_TEST_LEDGER: ledgerFile };
      const workers = [0, 1].map(() => spawnRmapp(workerArgs(1_000, 40, 300), env));
      await until(() => workers.every((w) => /rmapp worker .* on /.test(w.output())), 60_000, 'both workers to start');
      const locker = new pg.Client({ connectionString: testDb.url });
      await locker.connect();
      const ids: string[] = [];
      try {
        for (let round = 0; round < 4; round++) {
          // Fresh runs of short steps: while the table is locked many sessions wait for a step's start
          // to be durable (not self-fenced: no work runs) and their renewals queue behind the lock.
          ids.push(...(await startRuns(client, 20, { everyMs: 300 })));
          await new Promise((r) => setTimeout(r, 700));
          await locker.query('begin');
          await locker.query('lock table rmapp_runs in access exclusive mode');
          await new Promise((r) => setTimeout(r, 2_500));
          await locker.query('commit');
        }
      } finally {
        await locker.end();
      }
      await until(
        async () => (await succeeded(db, ids)) === ids.length || workers.some((w) => w.child.exitCode !== null),
        120_000,
        'all runs to succeed',
      );
      for (const w of workers) expect(w.child.exitCode, w.output()).toBeNull();
      const lowered = await db.query(`select id, owner, epoch, was, now from lowered_leases`);
      expect(lowered, 'lease expiries moved back by a renewal of the same owner and epoch').toEqual([]);
      const executions = await checkOwnership(db, ids, ledgerFile);
      figures('table locked longer than the lease', executions, ids.length * STEPS);
    } finally {
      await db.script([
        'drop trigger record_lowered_lease on rmapp_runs',
        'drop function record_lowered_lease()',
        'drop table lowered_leases',
      ]);
    }
  });

  it('3 workers, every worker connection terminated three times and one worker SIGKILLed under load', async () => {
    const ledgerFile = newLedger();
    const ids = await startRuns(client, 150, { everyMs: 20 });
    const env = { DATABASE_URL: testDb.url, RMAPP_TEST_LEDGER: ledgerFile };
    const workers = [0, 1, 2].map(() => spawnRmapp(workerArgs(1_500, 20, 100), env));
    const killedAt = new Map<number, number>();
    for (const target of [20, 40, 60]) {
      await until(async () => (await succeeded(db, ids)) >= target, 60_000, `${target} runs to succeed`);
      await db.query(
        `select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and application_name = 'rmapp' and pid <> pg_backend_pid()`,
        [testDb.name],
      );
    }
    const victim = workers[1] as Spawned;
    const victimPid = victim.child.pid as number;
    victim.child.kill('SIGKILL');
    await victim.exited;
    killedAt.set(victimPid, Date.now());
    await until(async () => (await succeeded(db, ids)) === ids.length, 120_000, 'all runs to succeed');
    for (const w of [workers[0], workers[2]]) expect(w?.child.exitCode, w?.output()).toBeNull();
    const executions = await checkOwnership(db, ids, ledgerFile, { killedAt, excludeWorker: `%:${victimPid}:%` });
    figures('terminated connections + SIGKILL', executions, ids.length * STEPS);
  });

  it('SIGTERM hand-over: running steps finish, no attempt is counted for the steps that wait, the other worker takes over at once', async () => {
    const ledgerFile = newLedger();
    const env = { DATABASE_URL: testDb.url, RMAPP_TEST_LEDGER: ledgerFile };
    // step3 takes 12 s (within the first worker's 20 s grace): the second worker starts and listens
    // while the first holds every run, so only the first worker's release can hand them over.
    const ids = await startRuns(client, 20, { slowStep: 'step3', slowMs: 12_000 });
    const first = spawnRmapp([...workerArgs(5_000, 20), '--grace-ms', '20000'], env);
    const step3 = () => executionsOf(readLedger(ledgerFile)).filter((x) => /step3$/.test(x.key));
    const heldByFirst = async () =>
      (await db.query<{ n: number }>(`select count(*)::int as n from rmapp_runs where lease_owner like $1`, [`%:${first.child.pid}:%`]))[0]
        ?.n ?? 0;
    await until(
      async () => (await heldByFirst()) === ids.length || first.child.exitCode !== null,
      60_000,
      'the first worker to hold every run',
    );
    // Polls only every 10 s: a prompt take-over can only come from the release's NOTIFY.
    const second = spawnRmapp(workerArgs(5_000, 20, 10_000), env);
    const listeners = async () =>
      (
        await db.query<{ n: number }>(`select count(*)::int as n from pg_stat_activity where datname = $1 and query ilike 'listen %'`, [
          testDb.name,
        ])
      )[0]?.n ?? 0;
    await until(async () => (await listeners()) >= 2, 30_000, 'the second worker to listen for wake-ups');
    await until(
      () => step3().length === ids.length || first.child.exitCode !== null,
      60_000,
      'every run to be in step3 on the first worker',
    ).catch((err) => {
      throw new Error(`${(err as Error).message}; ${step3().length} step3 executions; worker output:\n${first.output()}`);
    });
    expect(
      step3().filter((x) => x.outcome !== 'open'),
      'step3 executions already over when SIGTERM is sent (make step3 slower)',
    ).toEqual([]);
    first.child.kill('SIGTERM');
    expect(await first.exited, first.output()).toBe(0);
    await until(async () => (await succeeded(db, ids)) === ids.length, 60_000, 'all runs to succeed');
    const executions = await checkOwnership(db, ids, ledgerFile);
    expect(
      [...executionsPerKey(executions)].filter(([, n]) => n !== 1),
      'step keys executed other than once',
    ).toEqual([]);
    const firstPid = first.child.pid;
    const secondPid = second.child.pid;
    // Every step3 finished on the first worker; every step4 ran on the second, as attempt 1.
    const step3s = step3();
    expect(step3s.length, 'step3 executions recorded').toBeGreaterThan(0);
    expect(
      step3s.filter((x) => x.pid !== firstPid || x.outcome !== 'end'),
      'step3 executions not finished on the first worker',
    ).toEqual([]);
    const step4 = executions.filter((x) => /step4$/.test(x.key));
    expect(step4.map((x) => [x.pid, x.attempt]).filter(([pid, attempt]) => pid !== secondPid || attempt !== 1)).toEqual([]);
    const latencies = ids
      .map((id) => {
        const end = step3().find((x) => x.run === id)?.end ?? 0;
        const next = step4.find((x) => x.run === id)?.start ?? 0;
        return next - end;
      })
      .sort((a, b) => a - b);
    console.log(
      `SIGTERM take-over: step3 end on the stopping worker → step4 start on the other, median ${latencies[latencies.length >> 1]} ms, max ${latencies.at(-1)} ms (${ids.length} runs)`,
    );
  }, 120_000);
});

describe('a Postgres restart mid-load (a private cluster)', () => {
  let pg: PrivatePostgres;
  beforeAll(() => {
    pg = startPrivatePostgres(15_000 + (process.pid % 1_000));
  });
  afterAll(() => pg?.stop());

  it('two workers keep going across a fast restart: every run succeeds, no overlap, no phantom attempt', async () => {
    const engine = createEngine({ database: pg.url, workflows: workflows() });
    const store = await engine.db();
    try {
      const ledgerFile = newLedger();
      const ids = await startRuns(engine, 60, { everyMs: 30 });
      const env = { DATABASE_URL: pg.url, RMAPP_TEST_LEDGER: ledgerFile };
      const workers = [spawnRmapp(workerArgs(1_500, 20, 100), env), spawnRmapp(workerArgs(1_500, 20, 100), env)];
      // Both are running (a worker still starting would wait for the database: a different case).
      await until(() => workers.every((w) => /rmapp worker .* on /.test(w.output())), 60_000, 'both workers to start');
      await until(async () => (await succeeded(store, ids).catch(() => 0)) >= 15, 60_000, '15 runs to succeed');
      pg.restart('fast');
      await until(
        async () => (await succeeded(store, ids).catch(() => 0)) === ids.length,
        120_000,
        'all runs to succeed after the restart',
      );
      for (const w of workers) expect(w.child.exitCode, w.output()).toBeNull();
      const executions = await checkOwnership(store, ids, ledgerFile);
      figures('Postgres restart', executions, ids.length * STEPS);
    } finally {
      await engine.stop();
    }
  });
});
