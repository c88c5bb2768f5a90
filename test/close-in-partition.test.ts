/**
 * A close of the Postgres store during a partition that drops every byte (the TCP fault proxy's
 * `freeze`: nothing is closed, no RST, no FIN). Every statement fails at its own deadline
 * (QUERY_TIMEOUT), but the statements given up while they waited for a connection leave pg-pool
 * making one for each, through the partition; the close ended the pool only once those handshakes gave
 * up, at pg-pool's connect timeout (30 s) — after every statement had failed and nothing waited for
 * them. Outcomes: what each statement got, that the close resolves while the partition still holds
 * (bounded well below that connect timeout, the only thing it could otherwise wait for), and that after
 * it the statement that reached the server is the only one applied.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../src/index.ts';
import { cleanupsAfterAll } from './helpers/cleanups.ts';
import { startFaultProxy } from './helpers/pg-fault-proxy.ts';
import { createTestDatabase } from './helpers/postgres.ts';

const cleanups = cleanupsAfterAll();

describe('a close during a partition', () => {
  it('gives up the connections still being made once no statement waits for them', async () => {
    const testDb = await createTestDatabase('h7_close_partition');
    cleanups.push(() => testDb.drop());
    const proxy = await startFaultProxy();
    cleanups.push(() => proxy.close());
    const db = await openDatabase({ url: proxy.url(testDb.name), maxConnections: 2 });
    cleanups.push(() => db.close({ force: true }));
    await db.query('create table counter (id int primary key, v int not null)');
    await db.query('insert into counter values (1, 0)');

    proxy.freeze();
    // Two take the pool's two connections (now silent); the others wait for a connection, and the pool
    // makes new ones through the partition once the first two are dropped at their deadline.
    const outcomes = await Promise.all(
      [1, 2, 3, 4, 5].map(() =>
        db.query('update counter set v = v + 1 where id = 1 returning v', [], { timeoutMs: 400 }).then(
          () => 'answered',
          (err: { code?: string }) => err.code,
        ),
      ),
    );
    expect(outcomes).toEqual(['QUERY_TIMEOUT', 'QUERY_TIMEOUT', 'QUERY_TIMEOUT', 'QUERY_TIMEOUT', 'QUERY_TIMEOUT']);

    // Nothing is in flight any more: the close has nothing to wait for but the half-made connections.
    // 15 s is half of pg-pool's connect timeout (CONNECT_TIMEOUT_MS, 30 s), what it used to wait for.
    const closed = await Promise.race([
      db.close().then(() => 'closed'),
      new Promise((resolve) => setTimeout(resolve, 15_000).unref()).then(() => 'still closing'),
    ]);
    expect(closed).toBe('closed');

    proxy.heal();
    const direct = new pg.Client({ connectionString: testDb.url });
    await direct.connect();
    try {
      // A frozen proxy forwards nothing: none of the five reached the server.
      expect((await direct.query('select v from counter where id = 1')).rows[0]).toEqual({ v: 0 });
    } finally {
      await direct.end();
    }
  }, 60_000);
});
