/**
 * A send Postgres aborts as a deadlock's victim (it met a migration swapping the runs table, in CI)
 * wrote nothing: the engine makes it again instead of handing `deadlock detected` to the caller, and
 * gives up after a few tries. The abort is injected in front of the real statement.
 */
import { afterAll, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, openDatabase } from '../src/index.ts';
import { hookedStore } from './helpers/hooked-store.ts';
import { engineDatabaseFor } from './helpers/postgres.ts';

const machine = setup({ types: {} as { events: { type: 'go' } } }).createMachine({
  id: 'sendDeadlock',
  initial: 'waiting',
  states: { waiting: { on: { go: 'done' } }, done: { type: 'final' } },
});
const workflow = defineWorkflow({ name: 'test.send-deadlock', machine, input: z.object({}) });

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

const deadlock = () => Object.assign(new Error('deadlock detected'), { code: '40P01', severity: 'ERROR' });

it(
  'a send aborted as a deadlock victim is made again, once stored, and one that keeps losing fails with the error',
  { timeout: 60_000 },
  async () => {
    const db = await openDatabase(await engineDatabaseFor('postgres', cleanups, { empty: true }));
    cleanups.push(() => db.close());
    let victims = 0;
    const store = hookedStore(db, (sql) => {
      if (victims > 0 && sql.includes('insert into rmapp_run_inbox')) {
        victims--;
        throw deadlock();
      }
    });
    const engine = createEngine({ database: store, workflows: [workflow], evictAfterMs: 0 });
    cleanups.push(() => engine.stop());
    await engine.startWorker();
    const id = await engine.start(workflow, {});
    await expect.poll(async () => (await engine.get(id)).status, { timeout: 20_000 }).toBe('waiting');

    victims = 2;
    expect((await engine.send(id, { type: 'go' }, { dedupeKey: 'go-1' })).outcome).toBe('queued');
    const run = await engine.waitFor(id, { timeoutMs: 20_000 });
    expect(run.status).toBe('succeeded');
    const rows = await db.query<{ n: number }>('select count(*)::int as n from rmapp_run_inbox where run_id = $1', [id]);
    expect(rows[0]?.n, 'signals stored').toBe(1);

    const other = await engine.start(workflow, {});
    await expect.poll(async () => (await engine.get(other)).status, { timeout: 20_000 }).toBe('waiting');
    victims = 100;
    await expect(engine.send(other, { type: 'go' })).rejects.toMatchObject({ code: '40P01' });
    expect(victims, 'tries before giving up').toBe(95);
    victims = 0;
  },
);
