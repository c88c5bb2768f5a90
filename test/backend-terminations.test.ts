/**
 * The terminations of timed-out statements' backends (src/persistence/backend-terminations.ts) under a
 * partition that drops every byte (the fault proxy's `freeze`). Each timed-out statement used to open a
 * connection of its own to terminate its backend: 20 statements that timed out together made 20
 * connection attempts into the partition, none of which the heal answered (their startup messages were
 * dropped), and the backends they were for — blocked on a lock — ran on and applied their updates once
 * the lock was released, after their callers had been told they timed out. Now one connection at a
 * time terminates every queued backend, retried with backoff while it fails: the attempts stay a
 * handful whatever the number of statements, and once the partition heals every backend is terminated.
 * Outcomes only: connection attempts counted by the proxy, what the server runs, the row's value.
 */
import pg from 'pg';
import { expect, it } from 'vitest';
import { openDatabase } from '../src/index.ts';
import { cleanupsAfterAll } from './helpers/cleanups.ts';
import { startFaultProxy } from './helpers/pg-fault-proxy.ts';
import { createTestDatabase } from './helpers/postgres.ts';

const cleanups = cleanupsAfterAll();
const STATEMENTS = 20;

it('a partition with many timed-out statements makes a bounded number of termination connections, and every backend is terminated after the heal', async () => {
  const testDb = await createTestDatabase();
  cleanups.push(() => testDb.drop());
  const proxy = await startFaultProxy();
  cleanups.push(() => proxy.close());
  const db = await openDatabase({ url: proxy.url(testDb.name), maxConnections: STATEMENTS });
  cleanups.push(() => db.close({ force: true }));
  await db.query('create table counter (id int primary key, v int not null)');
  await db.query('insert into counter values (1, 0)');
  const direct = new pg.Client({ connectionString: testDb.url });
  await direct.connect();
  cleanups.push(() => direct.end());
  const locker = new pg.Client({ connectionString: testDb.url });
  await locker.connect();
  cleanups.push(() => locker.end());
  // Every statement gets a connection of its own, made before the partition.
  await Promise.all(Array.from({ length: STATEMENTS }, () => db.query('select pg_sleep(0.3)')));
  await locker.query('begin');
  await locker.query('update counter set v = 100 where id = 1');

  const outcomes = Array.from({ length: STATEMENTS }, () =>
    db.query('update counter set v = v + 1 where id = 1', [], { timeoutMs: 8_000 }).then(
      () => 'answered',
      (err: { code?: string }) => err.code,
    ),
  );
  const blocked = async () =>
    Number(
      (
        await direct.query(
          `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query like 'update counter set v = v + 1%'`,
        )
      ).rows[0]?.n,
    );
  await expect.poll(blocked, { timeout: 6_000, interval: 20 }).toBe(STATEMENTS);
  const before = proxy.connections();
  proxy.freeze();
  expect(await Promise.all(outcomes), 'what each statement got').toEqual(Array(STATEMENTS).fill('QUERY_TIMEOUT'));
  // The first termination connection failed in the partition (its connect timeout, 5 s) and was tried
  // again after its backoff: a second attempt, not one per statement.
  await expect.poll(() => proxy.connections() - before, { timeout: 25_000, interval: 100 }).toBeGreaterThanOrEqual(2);
  expect(await blocked(), 'backends still blocked: the partition let no termination through').toBe(STATEMENTS);
  const inPartition = proxy.connections() - before;
  expect(inPartition, `termination connections attempted in the partition for ${STATEMENTS} timed-out statements`).toBeLessThanOrEqual(3);

  proxy.heal();
  // Once it heals, the next attempt terminates every backend left blocked on the lock, in one go.
  await expect.poll(blocked, { timeout: 30_000, interval: 200 }).toBe(0);
  const total = proxy.connections() - before;
  expect(total, `termination connections attempted in all (${inPartition} in the partition): no burst at the heal`).toBeLessThanOrEqual(
    inPartition + 2,
  );
  await locker.query('rollback');
  // Not one update its caller was told timed out was applied once the lock went.
  await new Promise((r) => setTimeout(r, 200));
  expect((await direct.query('select v from counter where id = 1')).rows[0], 'the counter').toEqual({ v: 0 });
}, 90_000);
