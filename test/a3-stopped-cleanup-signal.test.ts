/**
 * A worker process stopped (SIGSTOP) for longer than a lease while it runs an owed cleanup, and resumed
 * after another worker took the cleanup over: the cleanup's `signal` must say, the first time the
 * resumed cleanup looks at it, that its lease was lost — none was renewed for four fifths of a lease by
 * this process's clock (README, Cancellation) — or it runs on beside the new holder's. Real processes,
 * real Postgres; the cleanup writes each step to a ledger file outside the engine.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { createEngine, openDatabase } from '../src/index.ts';
import { CLEANUP_OWED } from '../src/persistence/run-admin.ts';
import { cleanupsAfterAll } from './helpers/cleanups.ts';
import { cleanupEntries, stepsAfterTakeOver } from './helpers/cleanup-steps.ts';
import { createTestDatabase } from './helpers/postgres.ts';
import { killAll, ROOT, spawnRmapp, until } from './helpers/processes.ts';
import { fencedCleanup } from './fixtures/a3-fenced-cleanup.ts';

const cleanups = cleanupsAfterAll();
afterAll(() => killAll());

const FIXTURE = join(ROOT, 'test/fixtures/a3-fenced-cleanup.ts');
const LEASE_MS = 1_500;

test('a worker stopped past its cleanup lease and resumed sees its signal aborted before its next step', { timeout: 90_000 }, async () => {
  const testDb = await createTestDatabase();
  cleanups.push(() => testDb.drop());
  const ledger = join(mkdtempSync(join(tmpdir(), 'a3-stop-')), 'ledger.jsonl');
  const env = { DATABASE_URL: testDb.url, A3_LEDGER: ledger, A3_CLEANUP_STEPS: '100000', A3_STEP_MS: '20' };
  const args = ['--workflows', FIXTURE, 'worker', '--lease-ms', String(LEASE_MS), '--no-retention'];
  const a = spawnRmapp([...args, '--worker-id', 'a3-a'], env);
  const engine = createEngine({ database: testDb.url, workflows: [fencedCleanup] });
  cleanups.push(() => engine.stop());
  const db = await openDatabase({ url: testDb.url });
  cleanups.push(() => db.close());

  const runId = await engine.start(fencedCleanup, { key: 'k' });
  await until(async () => (await engine.get(runId))?.status === 'failed', 60_000, `run ${runId} to fail\n${a.output()}`);
  // Its cleanup owed, as a cancel that never learnt its outcome leaves it: worker A's sweep takes it.
  await db.query(`update rmapp_runs set status = 'cancelled', status_message = $2 where id = $1`, [runId, CLEANUP_OWED]);
  const aPid = a.child.pid as number;
  await until(() => cleanupEntries(ledger).some((e) => e.pid === aPid), 30_000, `worker A to run the cleanup\n${a.output()}`);

  a.child.kill('SIGSTOP');
  // Its connections cut (a network cut, a failover): the cleanup lock its backend held goes with them.
  await db.query(`select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`);
  const b = spawnRmapp([...args, '--worker-id', 'a3-b'], env);
  const bPid = b.child.pid as number;
  await until(() => cleanupEntries(ledger).some((e) => e.pid === bPid), 60_000, `worker B to take the cleanup over\n${b.output()}`);
  const bStartedAt = cleanupEntries(ledger).findIndex((e) => e.pid === bPid);
  a.child.kill('SIGCONT');
  await until(() => cleanupEntries(ledger).some((e, i) => i > bStartedAt && e.pid === aPid), 30_000, 'worker A to go on');
  await new Promise((r) => setTimeout(r, 500));

  // Every step worker A ran after B had started its own: A's lease had expired (B could take it), so its
  // signal should have aborted before any of them.
  const after = stepsAfterTakeOver(ledger, aPid, bPid);
  expect(after.map((e) => `worker A (pid ${aPid}) ran cleanup step ${e.step} after worker B (pid ${bPid}) took the cleanup over`)).toEqual(
    [],
  );
});
