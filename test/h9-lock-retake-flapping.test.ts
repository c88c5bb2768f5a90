/**
 * A worker-id lock held on the LISTEN connection is taken again after the connection is lost; the old
 * backend, silent but alive on the server, still holds it until TCP keepalive (hours by default) and is
 * terminated as this process's own (listener.ts `Listener`'s former backends). A flapping link — each
 * new connection lost right after its LISTEN, before it terminates the former backends — adds a former
 * backend per connection; "another process took worker id" must still never be told of this process's
 * own old backend, and the lock must be held again once the link is steady.
 */
import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../src/index.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { until } from './helpers/processes.ts';

const LOCK_CLASS = 0x726d776b;
let testDb: TestDatabase;
let proxy: StrandingProxy;
let db: Database | undefined;

beforeAll(async () => {
  testDb = await createTestDatabase();
  proxy = await strandingProxy();
});
afterAll(async () => {
  await db?.close({ force: true });
  await proxy?.close();
  await testDb?.drop();
});

interface StrandingProxy {
  url(database: string): string;
  /** The connections open now go silent both ways; their server side stays open when the client leaves (a partition). */
  strandOpen(): void;
  /** The next `times` simple queries matching `re`, on any connection, close it (both sides) instead of reaching the server. */
  cutMatching(re: RegExp, times: number): void;
  readonly cuts: () => number;
  close(): Promise<void>;
}

/** A TCP proxy to the machine's Postgres that can strand connections as a partition does, and cut statements. */
async function strandingProxy(): Promise<StrandingProxy> {
  const open = new Set<{ strand(): void; destroy(): void }>();
  const upstreams = new Set<net.Socket>();
  let matching: RegExp | null = null;
  let left = 0;
  let cuts = 0;
  const server = net.createServer((client) => {
    const upstream = net.connect(5432, '127.0.0.1');
    upstreams.add(upstream);
    let stranded = false;
    let started = false;
    let pending = Buffer.alloc(0);
    const entry = {
      strand: () => void (stranded = true),
      destroy: () => {
        client.destroy();
        upstream.destroy();
      },
    };
    open.add(entry);
    upstream.on('data', (d) => stranded || client.write(d));
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => client.destroy());
    client.on('error', () => {});
    client.on('close', () => {
      open.delete(entry);
      // A partition: the server never hears the client went away.
      if (!stranded) upstream.destroy();
    });
    client.on('data', (chunk) => {
      if (stranded) return;
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        if (!started) {
          if (pending.length < 4 || pending.length < pending.readInt32BE(0)) return;
          const len = pending.readInt32BE(0);
          upstream.write(pending.subarray(0, len));
          pending = pending.subarray(len);
          started = true;
          continue;
        }
        if (pending.length < 5 || pending.length < pending.readInt32BE(1) + 1) return;
        const len = pending.readInt32BE(1);
        const text = pending[0] === 0x51 ? pending.toString('utf8', 5, len) : '';
        if (matching && left > 0 && matching.test(text)) {
          left -= 1;
          cuts += 1;
          return entry.destroy();
        }
        upstream.write(pending.subarray(0, len + 1));
        pending = pending.subarray(len + 1);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    strandOpen: () => open.forEach((c) => c.strand()),
    cutMatching(re, times) {
      matching = re;
      left = times;
    },
    cuts: () => cuts,
    async close() {
      open.forEach((c) => c.destroy());
      upstreams.forEach((u) => u.destroy());
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The pids of the backends holding the store's `rmwk` locks now, read straight from the server. */
async function holders(): Promise<number[]> {
  const c = new pg.Client({ connectionString: testDb.url });
  await c.connect();
  try {
    const { rows } = await c.query<{ pid: number }>(
      `select l.pid from pg_locks l where l.locktype = 'advisory' and l.granted and l.classid = ${LOCK_CLASS}::oid
         and l.database = (select oid from pg_database where datname = current_database())`,
    );
    return rows.map((r) => r.pid);
  } finally {
    await c.end();
  }
}

describe('the worker-id lock on a flapping link', () => {
  it('is never reported as taken by another process when only this process’s old backends held it, and is held again', async () => {
    db = await openDatabase({ url: proxy.url(testDb.name) });
    await db.listen('h9_flap', () => {}, { timeoutMs: 1_000 });
    const reported: string[] = [];
    const lock = await db.holdLock!('rmapp.worker:h9-flap', (h) => reported.push(`backend ${h.pid} (${h.applicationName})`));
    expect(lock.held).toBe(true);
    const [original] = await holders();
    expect(original).toBeTypeOf('number');
    // The link flaps: every connection made from now on is cut at its first termination of a former
    // backend (right after its LISTEN), 20 times; the connection in use goes silent, its backend alive.
    proxy.cutMatching(/pg_terminate_backend/, 20);
    proxy.strandOpen();
    await until(() => proxy.cuts() >= 20, 90_000, '20 connections cut at their first termination');
    // Steady again: the next connection terminates this process's former backends and takes the lock.
    const back = async () => {
      const now = await holders();
      return now.length === 1 && now[0] !== original;
    };
    await until(back, 30_000, 'the lock taken back').catch(() => {});
    expect(reported, `"another process took worker id" told of this process's own old backend ${original}`).toEqual([]);
    expect(await holders(), `the lock still held by the old backend ${original}, not taken back`).not.toContain(original);
  }, 150_000);
});
