/**
 * A statement leaves nothing behind once its caller has its rows. Every statement of a Postgres store
 * used to be raced against one promise that only a forced close settles: a promise that never settles
 * keeps a reaction per race, and with it the statement's result, so a worker's memory grew by ~560 bytes
 * per statement for as long as it ran (100,000 statements: 6 → 62 MB of heap after a full GC). The
 * results are watched with weak references after a full GC; a forced close still fails what is in flight,
 * and terminates the backends still running it (a write blocked on a lock used to commit afterwards).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import pg from 'pg';
import { openDatabase, type Database } from '../src/persistence/database.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { until } from './helpers/processes.ts';

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
  // The statement runs in its backend before the close (a fixed wait could end while it still connects).
  const watcher = await openDatabase({ url: testDb.url });
  try {
    await until(
      async () =>
        (
          await watcher.query<{ n: number }>(
            `select count(*)::int as n from pg_stat_activity where query = 'select pg_sleep(30)' and state = 'active'`,
          )
        )[0]?.n === 1,
      20_000,
      'the statement to run',
    );
  } finally {
    await watcher.close();
  }
  await db.close({ force: true });
  await failed;
  await expect(db.query('select 1')).rejects.toThrow(/closed/);
});

it('a forced close terminates what its connections still run: a write blocked on a lock never commits', async () => {
  const setup = await openDatabase({ url: testDb.url });
  await setup.query('create table blocked_writes (n int)');
  await setup.close();
  const locker = new pg.Client({ connectionString: testDb.url });
  // Outside any transaction: one reads pg_stat_activity once per transaction.
  const observer = new pg.Client({ connectionString: testDb.url });
  await locker.connect();
  await observer.connect();
  try {
    await locker.query('begin');
    await locker.query('lock table blocked_writes in access exclusive mode');
    const db = await openDatabase({ url: testDb.url });
    // With a timeout, as every statement of an engine has (withStatementTimeout).
    const writes = [1, 2].map((n) => db.query('insert into blocked_writes values ($1)', [n], { timeoutMs: 60_000 }));
    const failed = Promise.all(writes.map((w) => expect(w).rejects.toThrow(/closed by force/)));
    await expect
      .poll(
        async () =>
          (
            await observer.query(
              `select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and query like 'insert into blocked_writes%'`,
            )
          ).rows[0].n,
        { timeout: 10_000 },
      )
      .toBe(2);
    await db.close({ force: true });
    await failed;
    await expect
      .poll(
        async () =>
          (await observer.query(`select count(*)::int as n from pg_stat_activity where query like 'insert into blocked_writes%'`)).rows[0]
            .n,
        { timeout: 10_000 },
      )
      .toBe(0);
    await locker.query('commit');
    const rows = (await locker.query('select n from blocked_writes')).rows;
    expect(rows, 'writes whose callers were told the store was closed').toEqual([]);
  } finally {
    await locker.end();
    await observer.end();
  }
});
