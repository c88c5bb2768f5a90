/**
 * Two live processes under one `--worker-id` (README, "One owner at a time"): the one that could not
 * take the id's lock runs its own runs. When the lock's holder is gone and a worker starts again under
 * the id, it takes back at once the runs its previous incarnation held — but not the leases of that
 * other process, which is alive and still running their steps: expired, they ran again on the new
 * worker while the live one ran them (an adversarial pass).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { createEngine, openDatabase, type Engine } from '../src/index.ts';
import { cleanupsAfterAll } from './helpers/cleanups.ts';
import { readLedger } from './helpers/ledger.ts';
import { createTestDatabase } from './helpers/postgres.ts';
import { TEST_WORKFLOWS, killAll, spawnRmapp, until } from './helpers/processes.ts';
import { sequenceWorkflow } from './helpers/workflows.ts';

const cleanups = cleanupsAfterAll();
afterAll(() => killAll());

it('a worker started again under its id leaves the leases of a live process sharing the id alone', async () => {
  const testDb = await createTestDatabase();
  cleanups.push(() => testDb.drop());
  const ledger = join(mkdtempSync(join(tmpdir(), 'rmapp-worker-id-')), 'ledger.jsonl');

  // The id's holder (a live worker started first under `shared`): here, its lock alone.
  const holder = await openDatabase({ url: testDb.url });
  cleanups.push(() => holder.close());
  const { migrate } = await import('../src/persistence/migrate.ts');
  await migrate(holder);
  const idLock = await holder.holdLock!('rmapp.worker:shared', () => {});
  expect(idLock.held).toBe(true);

  // A second live process under the same id: it cannot take the lock, and runs runs of its own.
  const second = spawnRmapp(
    ['worker', '--workflows', TEST_WORKFLOWS, '--worker-id', 'shared', '--lease-ms', '20000', '-c', '4', '--no-retention'],
    {
      DATABASE_URL: testDb.url,
      RMAPP_TEST_LEDGER: ledger,
    },
  );
  await until(() => /is in use by another live process/.test(second.output()), 60_000, 'the second worker to start without the lock');

  const client = createEngine({ database: testDb.url, workflows: [sequenceWorkflow(6)] });
  cleanups.push(() => client.stop());
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) ids.push(await client.start('test.sequence', { slowStep: 'step1', slowMs: 600_000 }));
  await until(() => readLedger(ledger).filter((e) => e.phase === 'start').length === 3, 60_000, 'the second worker to run the slow steps');
  const leased = await holder.query<{ id: string; lease_owner: string; lease_epoch: number }>(
    `select id, lease_owner, lease_epoch from rmapp_runs where id = any($1::text[]) order by id`,
    [ids],
  );
  expect(leased.map((r) => r.lease_owner.startsWith('shared:'))).toEqual([true, true, true]);

  // The holder goes (its lock with it), and a worker starts again under the id.
  await idLock.release();
  let restarted: Engine | null = createEngine({
    database: testDb.url,
    workflows: [sequenceWorkflow(6)],
    workerId: 'shared',
    leaseMs: 20_000,
  });
  cleanups.push(() => restarted?.stop());
  await restarted.startWorker();

  // The live process's leases stand: not expired, not claimed, its steps started nowhere else.
  const after = await holder.query<{ id: string; lease_owner: string; lease_epoch: number; live: boolean }>(
    `select id, lease_owner, lease_epoch, lease_expires_at > now() as live from rmapp_runs where id = any($1::text[]) order by id`,
    [ids],
  );
  expect(after).toEqual(leased.map((r) => ({ ...r, live: true })));
  const takenOver = await holder.query(
    `select 1 from rmapp_run_history where run_id = any($1::text[]) and events @> '[{"type":"lease.taken_over"}]'`,
    [ids],
  );
  expect(takenOver).toEqual([]);
  await restarted.stop();
  restarted = null;
  second.child.kill('SIGKILL');
  await second.exited;
});
