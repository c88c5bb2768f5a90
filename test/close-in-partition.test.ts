/**
 * A close of the Postgres store during a partition that drops every byte (the TCP fault proxy's
 * `freeze`: nothing is closed, no RST, no FIN). Every statement fails at its own deadline
 * (QUERY_TIMEOUT), but the statements given up while they waited for a connection leave pg-pool
 * making one for each, through the partition; the close ended the pool only once those handshakes gave
 * up, at pg-pool's connect timeout (30 s) — after every statement had failed and nothing waited for
 * them. Outcomes: what each statement got, that the close resolves while the partition still holds
 * (bounded well below that connect timeout, the only thing it could otherwise wait for), and that after
 * it the statement that reached the server is the only one applied. And a close waits for the
 * termination of a timed-out statement's backend still under way: left behind, its connection (and the
 * process) stayed open past the close.
 */
import net from 'node:net';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../src/index.ts';
import { cleanupsAfterAll } from './helpers/cleanups.ts';
import { startFaultProxy } from './helpers/pg-fault-proxy.ts';
import { createTestDatabase } from './helpers/postgres.ts';

const cleanups = cleanupsAfterAll();

/** This process's sockets open to `port` (Node lists them among its active handles). */
function openSocketsTo(port: number): number {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  return handles.filter((h) => h instanceof net.Socket && h.remotePort === port && !h.destroyed).length;
}

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

  it("waits for the termination of a timed-out statement's backend", async () => {
    const testDb = await createTestDatabase('h7_close_partition');
    cleanups.push(() => testDb.drop());
    const proxy = await startFaultProxy();
    cleanups.push(() => proxy.close());
    const proxyPort = Number(new URL(proxy.url(testDb.name)).port);
    const db = await openDatabase({ url: proxy.url(testDb.name), maxConnections: 1 });
    cleanups.push(() => db.close({ force: true }));
    await db.query('create table counter (id int primary key, v int not null)');
    await db.query('insert into counter values (1, 0)');
    const locker = new pg.Client({ connectionString: testDb.url });
    await locker.connect();
    cleanups.push(() => locker.end());
    await locker.query('begin');
    await locker.query('update counter set v = 100 where id = 1');

    // The statement waits on the lock over a connection that works; the connection its termination
    // opens is never answered (a partition that only new connections meet), until its own bound.
    proxy.holdNewConnections();
    const outcome = await db.query('update counter set v = v + 1 where id = 1', [], { timeoutMs: 300 }).then(
      () => 'answered',
      (err: { code?: string }) => err.code,
    );
    expect(outcome).toBe('QUERY_TIMEOUT');

    await db.close();
    // Nothing of the store is left open once its close resolved: no termination still connecting.
    expect(openSocketsTo(proxyPort)).toBe(0);
    await locker.query('rollback');
  }, 60_000);
});
