/**
 * A worker killed under a parent that does not reap it stays a zombie: its pid answers `kill(pid, 0)`
 * and its `/proc/<pid>/stat` keeps its start time, yet it runs nothing and its connections are closed.
 * A worker started again under its `--worker-id` must prove it gone and take its runs back at once
 * (README, "One owner at a time"), not judge it alive and wait out its leases — with a warning that the
 * old process "is still running on this machine". Offender: `processFate` in
 * src/persistence/process-identity.ts (a pid that answers was "alive" whatever its state).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { openDatabase } from '../src/index.ts';
import { executionsOf, overlapsOf, readLedger } from './helpers/ledger.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { BIN, ROOT, TEST_WORKFLOWS, killAll, runRmapp, spawnRmapp, until } from './helpers/processes.ts';
import { leaseExpiries, notTakenAtOnce, takeOvers } from './helpers/take-overs.ts';

const LEASE_MS = 20_000;
const RUNS = 4;
let db: TestDatabase | undefined;
let parentPid: number | undefined;

afterAll(async () => {
  killAll();
  if (parentPid) process.kill(parentPid, 'SIGKILL');
  await db?.drop();
});

test('a restart takes back at once the runs of its earlier process that is a zombie nobody reaps', async () => {
  db = await createTestDatabase('rmapp_adv8_zombie');
  const ledger = join(mkdtempSync(join(tmpdir(), 'rmapp-adv8-zombie-')), 'ledger.jsonl');
  const env = { DATABASE_URL: db.url, RMAPP_TEST_LEDGER: ledger, RMAPP_WORKFLOWS: TEST_WORKFLOWS };
  expect((await runRmapp(['migrate'], env)).code).toBe(0);
  for (let i = 0; i < RUNS; i++) expect((await runRmapp(['start', 'test.sequence', '{}'], env)).code).toBe(0);

  // The first worker is the child of a shell that then becomes `sleep`, which never reaps it.
  const parent = spawn(
    '/bin/bash',
    ['-c', `"${process.execPath}" "${BIN}" worker --worker-id adv8-zombie --lease-ms ${LEASE_MS} & exec sleep 600`],
    { cwd: ROOT, env: { ...process.env, ...env, RMAPP_TEST_SLOW_STEP: 'step2', RMAPP_TEST_SLOW_MS: '120000' }, stdio: 'ignore' },
  );
  parentPid = parent.pid;
  const inStep2 = () => readLedger(ledger).filter((e) => e.phase === 'start' && e.key.includes('step2'));
  await until(() => inStep2().length >= RUNS, 60_000, 'the first worker in step2 of every run');
  const oldPid = inStep2()[0]!.pid;
  process.kill(oldPid, 'SIGKILL');
  const killedAt = Date.now();
  await until(() => readFileSync(`/proc/${oldPid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') === true, 5_000, 'a zombie');
  const admin = await openDatabase({ url: db.url });
  const expiries = await leaseExpiries(admin);

  const restarted = spawnRmapp(['worker', '--worker-id', 'adv8-zombie', '--lease-ms', String(LEASE_MS)], env);
  const resumed = () =>
    new Set(
      readLedger(ledger)
        .filter((e) => e.pid !== oldPid && e.key.includes('step2'))
        .map((e) => e.run),
    ).size;
  await until(() => resumed() >= RUNS, 60_000, 'every run resumed by the restarted worker');

  expect(restarted.output(), 'the restart judged the zombie a live process').not.toMatch(/still running on this machine/);
  expect(notTakenAtOnce(expiries, await takeOvers(admin, [...expiries.keys()])), "the restart waited for a zombie's leases").toEqual([]);
  await admin.close();
  const xs = executionsOf(readLedger(ledger));
  expect(overlapsOf(xs, new Map([[oldPid, killedAt]]))).toEqual([]);
}, 120_000);
