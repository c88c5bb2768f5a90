/**
 * A pending run that a worker takes and finishes while `cancel` looks at it: the answer is "already
 * finished", not an error (a suite run here failed with "has already finished; it accepts no more
 * events"). The race is made exact by a database that finishes the run just before the in-place cancel.
 */
import { setup } from 'xstate';
import { z } from 'zod';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, defineWorkflow, openDatabase, step, type Database } from '../src/index.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';

const machine = setup({ actors: { noop: step(async () => 1) } }).createMachine({
  id: 'quick',
  initial: 'working',
  states: { working: { invoke: { src: 'noop', onDone: 'done' } }, done: { type: 'final' } },
});
const quick = defineWorkflow({ name: 'test.quick', machine, input: z.object({}) });

let testDb: TestDatabase;
let db: Database;
beforeAll(async () => {
  testDb = await createTestDatabase();
  db = await openDatabase({ url: testDb.url });
});
afterAll(async () => {
  await db.close();
  await testDb.drop();
});

it('cancelling a pending run that finishes meanwhile answers "already finished"', async () => {
  let finishFirst: string | null = null;
  // The in-place cancel finds the run taken and finished by a worker a moment before.
  const racing: Database = {
    ...db,
    query: async (text, params) => {
      if (finishFirst && /set status = 'cancelled'/.test(text)) {
        await db.query(`update rmapp_runs set status = 'succeeded', finished_at = now() where id = $1`, [finishFirst]);
        finishFirst = null;
      }
      return db.query(text, params);
    },
  };
  const client = createEngine({ database: racing, workflows: [quick] });
  const id = await client.start('test.quick', {});
  finishFirst = id;
  const result = await client.cancel(id, 'changed my mind');
  expect(result).toMatchObject({ cancelled: false, status: 'succeeded' });
  expect(result.message).toMatch(/already finished \(succeeded\)/);
});
