/**
 * A worker id the operator chose (`--worker-id`) lets a restarted worker take its previous incarnation's
 * runs back at once. Started while a live process still has that id (a misconfiguration: two
 * deployments given one id), it took the live one's runs too, and their steps in flight ran twice. The
 * id's lock, held on each worker's LISTEN connection, tells the two apart: a live holder keeps its runs
 * and the newcomer says why; a process that died gives its lock back with its connection, and the
 * restart takes over at once. Step executions are counted in a file, outside the engine.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { processClient } from './helpers/process-client.ts';
import { readCounts, spawnRmapp, TEST_WORKFLOWS, until } from './helpers/processes.ts';
import { sequenceWorkflow } from './helpers/workflows.ts';
import { createEngine, type Database } from '../src/index.ts';

const pg = processClient(() => [sequenceWorkflow(6)]);
const LEASE = ['--lease-ms', '30000'];

it('a second live process under one worker id takes none of the first one’s runs; a restart after a kill takes them at once', async () => {
  const counter = join(mkdtempSync(join(tmpdir(), 'rmapp-same-id-')), 'counts.txt');
  const env = { DATABASE_URL: pg.url, RMAPP_TEST_COUNTER_FILE: counter };
  const ids = await Promise.all([pg.client.start('test.sequence', {}), pg.client.start('test.sequence', {})]);
  const first = spawnRmapp(['--workflows', TEST_WORKFLOWS, 'worker', '--worker-id', 'shared', ...LEASE], {
    ...env,
    RMAPP_TEST_SLOW_STEP: 'step2',
    RMAPP_TEST_SLOW_MS: '4000',
  });
  await until(() => readCounts(counter).get('step2') === 2, 30_000, 'both runs inside step 2');

  const second = spawnRmapp(['--workflows', TEST_WORKFLOWS, 'worker', '--worker-id', 'shared', ...LEASE], env);
  await until(() => /is in use by another live process/.test(second.output()), 30_000, 'the second worker to name the shared id');
  const runs = await Promise.all(ids.map((id) => pg.client.waitFor(id, { timeoutMs: 30_000 })));
  expect(runs.map((r) => r.status)).toEqual(['succeeded', 'succeeded']);
  expect(Object.fromEntries(readCounts(counter)), 'a step ran twice: the second worker took the live one’s runs').toEqual({
    step1: 2,
    step2: 2,
    step3: 2,
    step4: 2,
    step5: 2,
    step6: 2,
  });
  second.child.kill('SIGKILL');
  await second.exited;

  // The restart the id is for: the first worker dies inside a step, a new one under its id resumes at
  // once (its lease has 30 s to run).
  const id = await pg.client.start('test.sequence', {});
  await until(() => readCounts(counter).get('step2') === 3, 30_000, 'the third run inside step 2');
  first.child.kill('SIGKILL');
  await first.exited;
  const restarted = spawnRmapp(['--workflows', TEST_WORKFLOWS, 'worker', '--worker-id', 'shared', ...LEASE], env);
  const run = await pg.client.waitFor(id, { timeoutMs: 20_000 });
  expect(run.status, restarted.output()).toBe('succeeded');
  expect(restarted.output()).not.toMatch(/in use by another live process/);
  restarted.child.kill('SIGTERM');
  await restarted.exited;
});

/** The worker-id locks granted in this test's database now. */
async function workerIdLocks(db: Database): Promise<number> {
  const [row] = await db.query<{ n: number }>(
    `select count(*)::int as n from pg_locks where locktype = 'advisory' and classid = ${0x726d776b}
       and database = (select oid from pg_database where datname = current_database()) and granted`,
  );
  return row!.n;
}

it('two engines of one process on one store under one worker id: the second takes none of the first one’s runs', async () => {
  const db = await pg.client.db();
  const lines: string[] = [];
  const log = (fields: object | string, message?: string) => void lines.push(typeof fields === 'string' ? fields : (message ?? ''));
  const logger = { error: log, warn: log };
  const slow = sequenceWorkflow(6);
  const a = createEngine({ database: db, workflows: [slow], workerId: 'in-process', leaseMs: 30_000, pollMs: 50 });
  const b = createEngine({ database: db, workflows: [slow], workerId: 'in-process', leaseMs: 30_000, pollMs: 50, logger });
  try {
    await a.startWorker();
    const id = await a.start('test.sequence', { slowStep: 'step2', slowMs: 1_500 });
    await until(async () => (await a.get(id)).state === 'step2', 20_000, 'step 2 to start');
    await b.startWorker();
    expect(lines.join('\n')).toMatch(/is in use by another live process/);
    const run = await a.waitFor(id, { timeoutMs: 20_000 });
    expect(run.status).toBe('succeeded');
    const history = await a.history(id);
    expect(
      history.filter((h) => h.type === 'lease.taken_over'),
      'the second engine took the run over',
    ).toEqual([]);
    expect(history.filter((h) => h.type === 'step.started' && h.attempt !== 1)).toEqual([]);
  } finally {
    await b.stop({ graceMs: 100 });
    await a.stop({ graceMs: 100 });
  }
  expect(await workerIdLocks(db), 'a stopped worker kept its id’s lock').toBe(0);
});

it('a worker stopped while it starts keeps no lock of its id', async () => {
  const db = await pg.client.db();
  for (const waitMs of [0, 1, 2, 4, 8, 16, 32]) {
    const engine = createEngine({ database: db, workflows: [sequenceWorkflow(6)], workerId: 'stopped-early' });
    const started = engine.startWorker().catch(() => null);
    await new Promise((r) => setTimeout(r, waitMs));
    await engine.stop({ graceMs: 0 });
    await started;
    expect(await workerIdLocks(db), `the lock stayed after a stop ${waitMs} ms into the start`).toBe(0);
  }
});
