/**
 * Crash and resume with real processes: a worker is killed with SIGKILL in the middle of step 4 of a
 * 6-step workflow, and a new worker process finishes the run. Step executions are counted in a file,
 * outside the engine.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { processClient } from './helpers/process-client.ts';
import { readCounts, spawnRmapp, TEST_WORKFLOWS, until } from './helpers/processes.ts';
import { failingWorkflow, sequenceWorkflow } from './helpers/workflows.ts';

const pg = processClient(() => [sequenceWorkflow(6), failingWorkflow()]);

it('resumes a run killed with SIGKILL in the middle of step 4: steps 1-3 once, step 4 at most twice, 5-6 once', async () => {
  const counter = join(mkdtempSync(join(tmpdir(), 'rmapp-crash-')), 'counts.txt');
  const env = { DATABASE_URL: pg.url, RMAPP_TEST_COUNTER_FILE: counter };
  const id = await pg.client.start('test.sequence', {});

  const first = spawnRmapp(['--workflows', TEST_WORKFLOWS, 'worker', '--lease-ms', '2000'], {
    ...env,
    RMAPP_TEST_SLOW_STEP: 'step4',
    RMAPP_TEST_SLOW_MS: '60000',
  });
  await until(() => readCounts(counter).get('step4') === 1, 30_000, 'step 4 to start');
  first.child.kill('SIGKILL');
  expect(await first.exited).toBe(null);

  const killed = await pg.client.get(id);
  expect(killed.status).toBe('running');
  expect(killed.state).toBe('step4');

  const second = spawnRmapp(['--workflows', TEST_WORKFLOWS, 'worker', '--lease-ms', '2000'], env);
  const run = await pg.client.waitFor(id, { timeoutMs: 30_000 });
  expect(run.status).toBe('succeeded');
  expect(run.output).toEqual({ sum: 21 });

  const counts = readCounts(counter);
  expect(counts.get('step1')).toBe(1);
  expect(counts.get('step2')).toBe(1);
  expect(counts.get('step3')).toBe(1);
  expect(counts.get('step4')).toBeGreaterThanOrEqual(1);
  expect(counts.get('step4')).toBeLessThanOrEqual(2);
  expect(counts.get('step5')).toBe(1);
  expect(counts.get('step6')).toBe(1);

  const history = await pg.client.history(id);
  expect(history.filter((h) => h.type === 'run.resumed')).toHaveLength(1);
  // Two lease epochs, and the second worker wrote only after the first had stopped writing.
  const epochs = [...new Set(history.map((h) => h.leaseEpoch))];
  expect(epochs).toHaveLength(2);
  const lastOfFirst = history.findLastIndex((h) => h.leaseEpoch === epochs[0]);
  const firstOfSecond = history.findIndex((h) => h.leaseEpoch === epochs[1]);
  expect(lastOfFirst).toBeLessThan(firstOfSecond);

  second.child.kill('SIGTERM');
  expect(await second.exited).toBe(0);
});

it('a worker stopped with SIGTERM lets the running step finish and releases its runs', async () => {
  const counter = join(mkdtempSync(join(tmpdir(), 'rmapp-term-')), 'counts.txt');
  const env = { DATABASE_URL: pg.url, RMAPP_TEST_COUNTER_FILE: counter };
  const id = await pg.client.start('test.sequence', {});
  const worker = spawnRmapp(['--workflows', TEST_WORKFLOWS, 'worker', '--lease-ms', '30000'], {
    ...env,
    RMAPP_TEST_SLOW_STEP: 'step2',
    RMAPP_TEST_SLOW_MS: '1500',
  });
  await until(() => readCounts(counter).get('step2') === 1, 30_000, 'step 2 to start');
  worker.child.kill('SIGTERM');
  expect(await worker.exited).toBe(0);
  const released = await pg.client.get(id);
  // Step 2 finished during the grace period, step 3 was not started, and the lease was given back.
  expect(released.state).toBe('step3');
  expect(released.leaseOwner).toBe(null);
  expect(readCounts(counter).get('step3')).toBeUndefined();

  // With a 30 s lease, only a released run can be resumed at once by the next worker.
  const next = spawnRmapp(['--workflows', TEST_WORKFLOWS, 'worker'], env);
  const run = await pg.client.waitFor(id, { timeoutMs: 15_000 });
  expect(run.status).toBe('succeeded');
  expect(readCounts(counter).get('step2')).toBe(1);
  next.child.kill('SIGTERM');
  await next.exited;
});
