/**
 * Adversarial, Postgres: every pooled connection runs `set enable_seqscan = off` in pg-pool's
 * `onConnect` before its first statement (src/persistence/database.ts). A backend terminated right as
 * the SET completes — its FATAL in the same packet as the SET's ReadyForQuery — errored the client
 * after the hook had succeeded but before pg-pool handed it out: the statement then got that dead
 * client and failed with "Client has encountered a connection error and is not queryable", an error
 * with no SQLSTATE (classified only by the catch-all of src/state_machine/errors.ts),
 * where a connection lost at any other point fails with 57P01. Seen once or twice per run in
 * test/driver-faults.test.ts's storm of terminated backends; here made deterministic by a proxy that
 * appends the termination to the packet answering the SET.
 */
import net from 'node:net';
import { afterAll, expect, it } from 'vitest';
import { openDatabase } from '../src/index.ts';
import { toErrorData } from '../src/state_machine/errors.ts';
import { createTestDatabase } from './helpers/postgres.ts';

/** What `pg_terminate_backend` sends a client before closing its socket (SQLSTATE 57P01). */
function termination(): Buffer {
  const fields = [
    ['S', 'FATAL'],
    ['V', 'FATAL'],
    ['C', '57P01'],
    ['M', 'terminating connection due to administrator command'],
  ];
  const body = Buffer.concat([...fields.map(([k, v]) => Buffer.from(`${k}${v}\0`)), Buffer.from([0])]);
  const head = Buffer.alloc(5);
  head.write('E', 0);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

/**
 * A proxy to the machine's Postgres that, on the next `connections` new connections, waits for the
 * answer to the client's `set enable_seqscan` and delivers it with a termination in the same write.
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
        client.end(Buffer.concat([held, termination()]));
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

it('a backend terminated just as the connection planner SET completes fails the statement as a lost connection, not with a dead client (onConnect, database.ts)', async () => {
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
  // Failing is right (the connection was lost before the statement was sent), as a lost connection:
  // the SQLSTATE every other lost connection gives, which callers retry.
  expect(err?.message).not.toMatch(/not queryable/);
  expect(err?.code).toBe('57P01');
  expect(toErrorData(err).category).toBe('transient');
  // The pool is healthy afterwards, and the next connection plans with the setting.
  expect(await db.query<{ s: string }>(`select current_setting('enable_seqscan') as s, $1::int as x`, [2])).toEqual([{ s: 'off', x: 2 }]);
});
