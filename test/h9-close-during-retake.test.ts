/**
 * A store closed while its LISTEN connection takes a lock again (listener.ts `Listener.retake`, which
 * tries until the lock is held): the close ends, the retake stops, nothing rejects unhandled and no
 * connection of the store stays on the server. The lock is held by another store (another process
 * under the worker's id), so the retake keeps trying when the close comes.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../src/index.ts';
import { startFaultProxy, type FaultProxy } from './helpers/pg-fault-proxy.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { until } from './helpers/processes.ts';

let testDb: TestDatabase;
let proxy: FaultProxy;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

beforeAll(async () => {
  testDb = await createTestDatabase();
  proxy = await startFaultProxy();
  process.on('unhandledRejection', onUnhandled);
});
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await proxy?.close();
  await testDb?.drop();
});

async function backendsThroughProxy(): Promise<number> {
  const c = new pg.Client({ connectionString: testDb.url });
  await c.connect();
  try {
    // The proxy's connections come from 127.0.0.1 like every other; the store's own are named 'rmapp'
    // and are on this test's database alone.
    const { rows } = await c.query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity where datname = current_database() and application_name = 'rmapp' and pid <> pg_backend_pid()`,
    );
    return rows[0]?.n ?? -1;
  } finally {
    await c.end();
  }
}

describe('a store closed while its lock is being taken again', () => {
  it.each([0, 2])(
    'closes, stops trying, leaves no rejection unhandled nor connection behind (close after %i retakes)',
    async (waitTries) => {
      const other: Database = await openDatabase({ url: testDb.url });
      const theirs = await other.holdLock!(`rmapp.worker:h9-close-${waitTries}`, () => {});
      expect(theirs.held).toBe(true);
      const db = await openDatabase({ url: proxy.url(testDb.name) });
      await db.listen('h9_close', () => {}, { timeoutMs: 1_000 });
      const mine = await db.holdLock!(`rmapp.worker:h9-close-${waitTries}`, () => {});
      expect(mine.held).toBe(false);
      const tries = () => proxy.seen.filter((t) => t.includes('pg_try_advisory_lock')).length;
      // The LISTEN connection is cut: made again, it tries the lock again and again (the other store holds it).
      const before = tries();
      proxy.terminateAll();
      await until(() => tries() > before + waitTries, 30_000, `${waitTries + 1} retakes`);
      await db.close();
      const after = tries();
      await new Promise((r) => setTimeout(r, 6_000));
      expect(tries() - after, 'lock tries after the close').toBe(0);
      await other.close();
      await until(async () => (await backendsThroughProxy()) === 0, 10_000, 'no connection of the stores left').catch(() => {});
      expect(await backendsThroughProxy(), 'rmapp connections left on the server').toBe(0);
      expect(unhandled, 'unhandled rejections').toEqual([]);
    },
    90_000,
  );
});
