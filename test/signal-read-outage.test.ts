/**
 * A signal read cut by a database outage (a terminated connection: 57P01, as a Postgres restart gives)
 * is logged as a warning, like every other outage, and the signal is read again at the next renewal.
 * It was logged at error level, which the README reserves for what an operator must fix.
 */
import { afterAll, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, openDatabase } from '../src/index.ts';
import { hookedStore } from './helpers/hooked-store.ts';
import { engineDatabaseFor } from './helpers/postgres.ts';

const machine = setup({ types: {} as { events: { type: 'go' } } }).createMachine({
  id: 'readOutage',
  initial: 'waiting',
  states: { waiting: { on: { go: 'done' } }, done: { type: 'final' } },
});
const workflow = defineWorkflow({ name: 'test.signal-read-outage', machine, input: z.object({}) });

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

it('a signal read cut by a terminated connection is a warning, and the signal is applied', async () => {
  const db = await openDatabase(await engineDatabaseFor('postgres', cleanups));
  cleanups.push(() => db.close());
  let cut = 0;
  const store = hookedStore(db, (sql) => {
    if (cut > 0 && sql.includes('from rmapp_runs r') && sql.includes('i.keep_until')) {
      cut--;
      throw Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01', severity: 'FATAL' });
    }
  });
  const lines: { level: string; message: string }[] = [];
  const at = (level: string) => (fields: object | string, message?: string) =>
    void lines.push({ level, message: typeof fields === 'string' ? fields : (message ?? '') });
  const engine = createEngine({
    database: store,
    workflows: [workflow],
    leaseMs: 1_500,
    evictAfterMs: 60_000,
    logger: { error: at('error'), warn: at('warn') },
  });
  cleanups.push(() => engine.stop());
  await engine.startWorker();
  const id = await engine.start(workflow, {});
  await expect.poll(async () => (await engine.get(id)).state, { timeout: 20_000 }).toBe('waiting');
  cut = 1;
  await engine.send(id, { type: 'go' });
  expect((await engine.waitFor(id, { timeoutMs: 20_000 })).status).toBe('succeeded');
  expect(cut, 'the read was cut').toBe(0);
  const reads = lines.filter((l) => /reading signals of run/.test(l.message));
  expect(
    reads.map((l) => l.level),
    'log levels of the cut read',
  ).toEqual(['warn']);
});
