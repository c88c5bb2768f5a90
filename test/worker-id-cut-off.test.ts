/**
 * A worker started again under an id whose previous process the database has lost (README, "One owner
 * at a time"). The locks that tell a live process (the id's, its owner's) live on its connections, so a
 * process cut off from the database holds none of them, yet it still runs its steps until it fences
 * itself. A new worker under the id took its runs at once and ran 30 steps a second time at the same
 * time (an adversarial pass with a ledger). Now it takes back at once only the runs of a process it
 * proves gone; this one's wait for their leases. The ledger (outside the engine) counts every execution.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { createEngine, openDatabase } from '../src/index.ts';
import { cleanupsAfterAll } from './helpers/cleanups.ts';
import { executionsOf, overlapsOf, readLedger } from './helpers/ledger.ts';
import { startFaultProxy } from './helpers/pg-fault-proxy.ts';
import { createTestDatabase } from './helpers/postgres.ts';
import { leaseExpiries, notTakenAtOnce, takeOvers, takenBeforeExpiry } from './helpers/take-overs.ts';
import { TEST_WORKFLOWS, killAll, spawnRmapp, until } from './helpers/processes.ts';
import { sequenceWorkflow } from './helpers/workflows.ts';

const cleanups = cleanupsAfterAll();
afterAll(() => killAll());

const RUNS = 4;
const worker = (url: string, ledger: string, leaseMs = 3_000) =>
  spawnRmapp(
    ['worker', '--workflows', TEST_WORKFLOWS, '--worker-id', 'cutid', '--lease-ms', String(leaseMs), '-c', '8', '--no-retention'],
    {
      DATABASE_URL: url,
      RMAPP_TEST_LEDGER: ledger,
    },
  );

async function setUp() {
  const testDb = await createTestDatabase();
  cleanups.push(() => testDb.drop());
  const admin = await openDatabase({ url: testDb.url });
  cleanups.push(() => admin.close());
  const { migrate } = await import('../src/persistence/migrate.ts');
  await migrate(admin);
  const ledger = join(mkdtempSync(join(tmpdir(), 'rmapp-cut-off-')), 'ledger.jsonl');
  const client = createEngine({ database: testDb.url, workflows: [sequenceWorkflow(6)] });
  cleanups.push(() => client.stop());
  return { testDb, admin, ledger, client };
}

it('leaves the runs of a live process the database lost to their leases: no step runs twice at the same time', async () => {
  const { testDb, admin, ledger, client } = await setUp();
  const proxy = await startFaultProxy();
  cleanups.push(() => proxy.close());
  const a = worker(proxy.url(new URL(testDb.url).pathname.slice(1)), ledger);
  const ids: string[] = [];
  for (let i = 0; i < RUNS; i++) ids.push(await client.start('test.sequence', { slowStep: 'step1', slowMs: 8_000 }));
  await until(
    () => readLedger(ledger).filter((e) => e.phase === 'start' && e.pid === a.child.pid).length === RUNS,
    60_000,
    'A to run the slow steps',
  );

  // A is cut off: its connections end (Postgres drops its locks with them) and new ones are never answered.
  proxy.holdNewConnections();
  proxy.terminateAll();
  await until(
    async () => (await admin.query<{ n: number }>(`select count(*)::int as n from pg_locks where locktype = 'advisory'`))[0]!.n === 0,
    30_000,
    "Postgres to drop the cut-off worker's locks",
  );
  // A's leases as it left them: no renewal reaches the database any more.
  const expiries = await leaseExpiries(admin, ids);

  const b = worker(testDb.url, ledger);
  for (const id of ids) {
    const done = await client.waitFor(id, { timeoutMs: 60_000 });
    expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
    expect(done.output).toEqual({ sum: 21 });
  }
  const executions = executionsOf(readLedger(ledger));
  const killedAt = new Map([[a.child.pid!, Date.now()]]);
  a.child.kill('SIGKILL');
  expect(overlapsOf(executions, killedAt), 'steps that ran twice at the same time').toEqual([]);
  // A stopped its own steps (self-fencing) before B began them again.
  const first = executions.filter((x) => x.pid === a.child.pid && x.key.includes('step1'));
  expect(first.map((x) => x.outcome)).toEqual(Array(RUNS).fill('abort'));
  // B took each run only once A's lease had expired (when it started before that, it said why it waited:
  // a loaded machine can start it later).
  expect(takenBeforeExpiry(expiries, await takeOvers(admin, ids)), 'runs taken from the live process').toEqual([]);
  if (b.output().includes('stay with it'))
    expect(b.output()).toMatch(/4 runs of its earlier process cutid:[0-9a-f]{8} \(pid \d+\) stay with it: that process is still running/);
  b.child.kill('SIGTERM');
  await Promise.all([a.exited, b.exited]);
});

it('takes back at once the runs of a process that is gone', async () => {
  const { testDb, admin, ledger, client } = await setUp();
  // A 20 s lease: a restart that waited for it would take the runs 20 s after A's last renewal.
  const a = worker(testDb.url, ledger, 20_000);
  const ids: string[] = [];
  for (let i = 0; i < RUNS; i++) ids.push(await client.start('test.sequence', { slowStep: 'step2', slowMs: 600_000 }));
  await until(
    () => readLedger(ledger).filter((e) => e.phase === 'start' && e.key.includes('step2')).length === RUNS,
    60_000,
    'A to reach step 2',
  );
  a.child.kill('SIGKILL');
  await a.exited;
  const expiries = await leaseExpiries(admin, ids);

  const b = worker(testDb.url, ledger, 20_000);
  await until(async () => (await takeOvers(admin, ids)).size === RUNS, 60_000, 'B to take the runs over');
  expect(notTakenAtOnce(expiries, await takeOvers(admin, ids)), 'B waited for the leases of a process that was gone').toEqual([]);
  const records = await admin.query<{ owner: string }>(`select owner from rmapp_worker_processes`);
  expect(records, "A's record is forgotten once its runs are taken back").toHaveLength(1);
  b.child.kill('SIGKILL');
  await b.exited;
});
