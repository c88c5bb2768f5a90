/**
 * A worker stopped (SIGTERM) while a step ignores its abort keeps that run's lease (`<owner>:kept`,
 * README "Graceful hand-over") and then exits. A worker started again under the same `--worker-id`
 * takes back at once the runs of an earlier process it proves gone (README, "One owner at a time"):
 * the kept leases of that process too — nothing of it runs any more — instead of waiting them out.
 * Offender: `previousOwners` and `expirePreviousIncarnation` (src/persistence/worker-processes.ts,
 * src/persistence/claims.ts) left every `:kept` lease to expire, whoever held it.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, expect, test } from 'vitest';
import { createEngine, openDatabase } from '../src/index.ts';
import { executionsOf, overlapsOf, readLedger } from './helpers/ledger.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { ROOT, killAll, runRmapp, spawnRmapp, until } from './helpers/processes.ts';
import { leaseExpiries, notTakenAtOnce, takeOvers } from './helpers/take-overs.ts';

const WORKFLOWS = join(ROOT, 'test/fixtures/adv8-unreturned-step.ts');
const { workflows } = (await import(WORKFLOWS)) as typeof import('./fixtures/adv8-unreturned-step.ts');
const LEASE_MS = 20_000;
const RUNS = 3;
let db: TestDatabase | undefined;

afterAll(async () => {
  killAll();
  await db?.drop();
});

test('a restart takes back at once the kept leases of its earlier process once that process is gone', async () => {
  db = await createTestDatabase('rmapp_adv8_kept');
  const ledger = join(mkdtempSync(join(tmpdir(), 'rmapp-adv8-kept-')), 'ledger.jsonl');
  const env = { DATABASE_URL: db.url, RMAPP_TEST_LEDGER: ledger, RMAPP_WORKFLOWS: WORKFLOWS };
  expect((await runRmapp(['migrate'], env)).code).toBe(0);
  for (let i = 0; i < RUNS; i++) expect((await runRmapp(['start', 'adv8.unreturned', '{}'], env)).code).toBe(0);

  const args = ['worker', '--worker-id', 'adv8-kept', '--lease-ms', String(LEASE_MS), '--grace-ms', '200'];
  const first = spawnRmapp(args, { ...env, RMAPP_ADV8_HANG: '1' });
  await until(() => readLedger(ledger).filter((e) => e.phase === 'start').length >= RUNS, 60_000, 'every step started');
  first.child.kill('SIGTERM');
  await first.exited;
  const exitedAt = Date.now();
  expect(first.output(), 'the stop kept the leases').toMatch(/lease is kept/);
  const admin = await openDatabase({ url: db.url });
  const expiries = await leaseExpiries(admin);
  expect(expiries.size, 'kept leases').toBe(RUNS);

  const restarted = spawnRmapp(args, env);
  await until(() => readLedger(ledger).filter((e) => e.phase === 'end').length >= RUNS, 60_000, 'every run resumed');
  expect(
    notTakenAtOnce(expiries, await takeOvers(admin, [...expiries.keys()])),
    'the restart waited for the kept leases of an exited process',
  ).toEqual([]);
  await admin.close();
  expect(overlapsOf(executionsOf(readLedger(ledger)), new Map([[first.child.pid!, exitedAt]]))).toEqual([]);
  restarted.child.kill('SIGTERM');
  await restarted.exited;
}, 120_000);

test('the kept leases of an earlier process that lives on after its stop still wait for their expiry', async () => {
  db ??= await createTestDatabase('rmapp_adv8_kept');
  const ledger = join(mkdtempSync(join(tmpdir(), 'rmapp-adv8-kept-live-')), 'ledger.jsonl');
  process.env.RMAPP_TEST_LEDGER = ledger;
  process.env.RMAPP_ADV8_HANG = '1';
  // This test's process is the earlier one: its engine stops with the step still running, and it lives on.
  const engine = createEngine({ database: db.url, workflows, workerId: 'adv8-kept-live', leaseMs: LEASE_MS });
  await engine.startWorker();
  const runId = await engine.start('adv8.unreturned', {});
  await until(() => readLedger(ledger).some((e) => e.run === runId && e.phase === 'start'), 30_000, 'the step started');
  await engine.stop({ graceMs: 100 });
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql`select lease_owner from rmapp_runs where id = ${runId}`;
    expect(row?.lease_owner, 'the stop kept the lease').toMatch(/:kept$/);
    const env = { DATABASE_URL: db.url, RMAPP_TEST_LEDGER: ledger, RMAPP_WORKFLOWS: WORKFLOWS };
    const restarted = spawnRmapp(['worker', '--worker-id', 'adv8-kept-live', '--lease-ms', String(LEASE_MS)], env);
    await until(() => /rmapp worker adv8-kept-live on/.test(restarted.output()), 60_000, 'the restart running');
    await new Promise((r) => setTimeout(r, 3_000));
    expect(
      readLedger(ledger).filter((e) => e.run === runId && e.phase === 'start'),
      'the step started again beside its live earlier process',
    ).toHaveLength(1);
    expect(restarted.output()).toMatch(/1 run of its earlier process adv8-kept-live:[0-9a-f]{8} \(pid \d+\) stay with it/);
    restarted.child.kill('SIGTERM');
    await restarted.exited;
  } finally {
    await sql.end();
  }
}, 120_000);
