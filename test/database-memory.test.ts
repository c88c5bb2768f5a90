/**
 * A statement leaves nothing behind once its caller has its rows. Every statement of a Postgres store
 * used to be raced against one promise that only a forced close settles: a promise that never settles
 * keeps a reaction per race, and with it the statement's result, so a worker's memory grew by ~560 bytes
 * per statement for as long as it ran (100,000 statements: 6 → 62 MB of heap after a full GC). The
 * results are watched with weak references after a full GC; a forced close still fails what is in flight.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openDatabase, type Database } from '../src/persistence/database.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let testDb: TestDatabase;
beforeAll(async () => {
  testDb = await createTestDatabase();
});
afterAll(async () => {
  await testDb.drop();
});

async function collect(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
}

it('the rows of a statement that has answered can be collected', async () => {
  const db: Database = await openDatabase({ url: testDb.url });
  try {
    const results: WeakRef<object>[] = [];
    for (let i = 0; i < 200; i++) results.push(new WeakRef(await db.query('select $1::int as n', [i])));
    // Another statement, so that none of the 200 is the last one the driver or the pool touched.
    await db.query('select 1');
    await collect();
    const kept = results.filter((r) => r.deref() !== undefined).length;
    expect(kept, `results of answered statements still in memory, of 200`).toBeLessThan(10);
  } finally {
    await db.close();
  }
});

it('a forced close still fails the statements in flight at once', async () => {
  const db = await openDatabase({ url: testDb.url });
  const running = db.query('select pg_sleep(30)');
  // Handled before the close fails it (a rejection with no handler yet is reported as unhandled).
  const failed = expect(running).rejects.toThrow(/closed by force while this statement ran/);
  await new Promise((r) => setTimeout(r, 200));
  await db.close({ force: true });
  await failed;
  await expect(db.query('select 1')).rejects.toThrow(/closed/);
});
