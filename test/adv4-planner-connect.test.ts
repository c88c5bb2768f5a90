/**
 * Adversarial, Postgres: every pooled connection starts with `enable_seqscan = off`
 * (src/persistence/postgres-store.ts). Written against the first form, a `SET` in pg-pool's `onConnect`: a
 * backend terminated right as the SET completed — its FATAL in the packet answering the SET — errored
 * the client after the hook had succeeded but before pg-pool handed it out, and the statement got the
 * dead client: "Client has encountered a connection error and is not queryable", no SQLSTATE (seen in
 * test/driver-faults.test.ts's storm). The setting is now a startup option, so the proxy below (which
 * waits for the first client message naming `enable_seqscan`, then delivers the next ReadyForQuery with
 * a termination in the same write) kills the connection in the packet that ends its startup: the
 * statement waiting for it must go to another connection or fail as a lost connection (57P01), never
 * with the dead client's code-less error, and the pool must recover.
 */
import net from 'node:net';
import { afterAll, expect, it } from 'vitest';
import { openDatabase } from '../src/index.ts';
import { toErrorData } from '../src/state_machine/errors.ts';
import { terminationMessage } from './helpers/pg-fault-proxy.ts';
import { createTestDatabase } from './helpers/postgres.ts';

/**
 * A proxy to the machine's Postgres that, on the next `connections` new connections, waits for the
 * client's first message naming `enable_seqscan` (the startup message now) and delivers the answer's
 * ReadyForQuery with a termination in the same write.
 */
async function proxyKillingAfterSet(connections: number) {
  let left = connections;
  const server = net.createServer((client) => {
    const upstream = net.connect(5432, '127.0.0.1');
    const kill = left-- > 0;
    let setSent = false;
    let held = Buffer.alloc(0);
    client.on('data', (d) => {
      if (kill && d.includes('enable_seqscan')) setSent = true;
      upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (!setSent) return void client.write(d);
      held = Buffer.concat([held, d]);
      // The SET's answer ends with ReadyForQuery: 'Z', length 5, a status byte.
      const z = held.length - 6;
      if (z >= 0 && held[z] === 0x5a && held.readInt32BE(z + 1) === 5) {
        upstream.destroy();
        client.end(Buffer.concat([held, terminationMessage()]));
      }
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: (db: string) => `postgres://postgres@127.0.0.1:${port}/${db}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

it('a backend terminated in the packet that makes a new connection ready fails the statement as a lost connection, not with a dead client', async () => {
  const t = await createTestDatabase('adv4');
  cleanups.push(() => t.drop());
  const proxy = await proxyKillingAfterSet(1);
  cleanups.push(() => proxy.close());
  const db = await openDatabase({ url: proxy.url(t.name), maxConnections: 2 });
  cleanups.push(() => db.close());

  const err = (await db.query('select $1::int as x', [1]).then(
    () => null,
    (e: unknown) => e,
  )) as (Error & { code?: string }) | null;
  // Never the dead client's error without a SQLSTATE. The statement was not sent: it goes to another
  // connection (connection-faults.ts `NOT_QUERYABLE`) when the pool handed the dead one out (what happens here),
  // or it fails as a lost connection — the SQLSTATE every other lost connection gives, which callers
  // retry — when the termination came while it was being sent.
  if (err) {
    expect(err.message).not.toMatch(/not queryable/);
    expect(err.code).toBe('57P01');
    expect(toErrorData(err).category).toBe('transient');
  }
  // The pool is healthy afterwards, and the next connection plans with the setting.
  expect(await db.query<{ s: string }>(`select current_setting('enable_seqscan') as s, $1::int as x`, [2])).toEqual([{ s: 'off', x: 2 }]);
});
