/**
 * The record a worker under an operator-chosen id keeps of its process (README, "One owner at a time")
 * lasts as long as it is needed: written before the worker claims, deleted by a clean stop that released
 * every lease — ids never used again (a pod's name) would otherwise leave a row per process for good.
 */
import { expect, it } from 'vitest';
import { createEngine, openDatabase } from '../src/index.ts';
import { cleanupsAfterAll } from './helpers/cleanups.ts';
import { createTestDatabase } from './helpers/postgres.ts';
import { sequenceWorkflow } from './helpers/workflows.ts';

const cleanups = cleanupsAfterAll();

it('a worker under a chosen id records its process while it runs and forgets it at a clean stop', async () => {
  const testDb = await createTestDatabase();
  cleanups.push(() => testDb.drop());
  const admin = await openDatabase({ url: testDb.url });
  cleanups.push(() => admin.close());
  const engine = createEngine({ database: testDb.url, workflows: [sequenceWorkflow(6)], workerId: 'records' });
  cleanups.push(() => engine.stop());
  await engine.startWorker();
  const records = () => admin.query<{ owner: string; pid: number }>(`select owner, pid from rmapp_worker_processes`);
  expect(await records()).toEqual([{ owner: expect.stringMatching(/^records:[0-9a-f]{8}$/), pid: process.pid }]);
  const id = await engine.start('test.sequence', {});
  expect((await engine.waitFor(id, { timeoutMs: 30_000 })).status).toBe('succeeded');
  await engine.stop();
  expect(await records(), 'src/state_machine/worker.ts left its record after a clean stop').toEqual([]);
});
