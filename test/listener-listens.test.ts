/**
 * The store's LISTEN connection (src/persistence/listener.ts, `Listener`) sends one LISTEN per channel
 * per connection: the first `listen` connects and listens in one go (it used to send its channel's
 * LISTEN twice, a round trip more at every worker's start), and after a terminated backend the new
 * connection listens again on every channel, once — and tells each listener that it may have missed
 * notifications meanwhile (`onReconnect`), not at its first connection.
 */
import { afterAll, expect, it } from 'vitest';
import pg from 'pg';
import { openDatabase } from '../src/persistence/database.ts';
import { startFaultProxy } from './helpers/pg-fault-proxy.ts';
import { createTestDatabase } from './helpers/postgres.ts';

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A store on a fresh database, reached through a fault proxy that records every statement. */
async function openThroughProxy() {
  const testDb = await createTestDatabase();
  cleanups.push(() => testDb.drop());
  const proxy = await startFaultProxy();
  cleanups.push(() => proxy.close());
  return { proxy, db: await openDatabase({ url: proxy.url(testDb.name) }) };
}

const listens = (seen: string[]) => seen.filter((t) => /^LISTEN /.test(t));

it('listens once per channel, and once again on each after the connection is lost', async () => {
  const { proxy, db } = await openThroughProxy();
  cleanups.push(() => db.close());

  const heard: string[] = [];
  await db.listen('rmapp_test_a', (p) => heard.push(`a:${p}`));
  await db.listen('rmapp_test_b', (p) => heard.push(`b:${p}`));
  await db.listen('rmapp_test_a', (p) => heard.push(`a2:${p}`));
  expect(listens(proxy.seen), 'LISTENs sent').toEqual(['LISTEN "rmapp_test_a"', 'LISTEN "rmapp_test_b"']);

  proxy.terminateAll();
  const before = proxy.seen.length;
  // The listener reconnects with backoff; a notification sent after it is back arrives.
  await expect
    .poll(
      async () => {
        await db.query(`select pg_notify('rmapp_test_b', 'after')`);
        return heard.includes('b:after');
      },
      { timeout: 20_000, interval: 200 },
    )
    .toBe(true);
  expect(listens(proxy.seen.slice(before)), 'LISTENs after the reconnect').toEqual(['LISTEN "rmapp_test_a"', 'LISTEN "rmapp_test_b"']);
});

it('two listens of a new channel at once send one LISTEN, and both are listening when they resolve', async () => {
  const { proxy, db } = await openThroughProxy();
  cleanups.push(() => db.close());

  await db.listen('rmapp_test_first', () => {});
  const heard: string[] = [];
  await Promise.all([db.listen('rmapp_test_c', (p) => heard.push(`1:${p}`)), db.listen('rmapp_test_c', (p) => heard.push(`2:${p}`))]);
  expect(listens(proxy.seen).filter((t) => t.includes('rmapp_test_c'))).toEqual(['LISTEN "rmapp_test_c"']);
  await db.query(`select pg_notify('rmapp_test_c', 'x')`);
  await expect.poll(() => heard.sort(), { timeout: 10_000 }).toEqual(['1:x', '2:x']);
});

it('refuses to listen once the database is closed, opening nothing', async () => {
  const { proxy, db } = await openThroughProxy();
  await db.listen('rmapp_test_a', () => {});
  await db.close();
  const opened = proxy.connections();
  await expect(db.listen('rmapp_test_b', () => {})).rejects.toThrow(/closed/);
  expect(proxy.connections(), 'connections opened after close').toBe(opened);
});

it('listens still being sent when the database closes fail as closed, not with the driver errors', async () => {
  const { db } = await openThroughProxy();
  await db.listen('rmapp_test_a', () => {});
  const pending = Array.from({ length: 20 }, (_, i) =>
    db
      .listen(`rmapp_test_closing_${i}`, () => {})
      .then(
        () => null,
        (err: unknown) => err,
      ),
  );
  await db.close();
  const failures = (await Promise.all(pending)).filter((e) => e !== null) as { code?: unknown; message?: unknown }[];
  expect(failures.length, 'listens cut off by the close').toBeGreaterThan(0);
  expect(
    failures.filter((e) => e.code !== 'DATABASE_CLOSED').map((e) => String(e.message)),
    'other errors',
  ).toEqual([]);
});

it('tells each listener when its connection was made again after a loss, and only then', async () => {
  const { proxy, db } = await openThroughProxy();
  cleanups.push(() => db.close());
  const told: string[] = [];
  const stopA = await db.listen('rmapp_test_a', () => {}, { onReconnect: () => told.push('a') });
  await db.listen('rmapp_test_b', () => {}, { onReconnect: () => told.push('b') });
  await db.listen('rmapp_test_b', () => {}, {
    onReconnect: () => {
      told.push('throws');
      throw new Error('a listener that throws');
    },
  });
  // Rejected, it would end the process (vitest fails the run on an unhandled rejection).
  await db.listen('rmapp_test_b', () => {}, {
    onReconnect: async () => {
      told.push('rejects');
      throw new Error('a listener that rejects');
    },
  });
  expect(told, 'told at the first connection').toEqual([]);

  proxy.terminateAll();
  await expect.poll(() => told.length, { timeout: 20_000, interval: 50 }).toBe(4);
  expect(told.sort()).toEqual(['a', 'b', 'rejects', 'throws']);
  // The connection made again still delivers, whatever a listener's hook threw.
  const heard: string[] = [];
  await db.listen('rmapp_test_c', (p) => heard.push(p));
  await db.query(`select pg_notify('rmapp_test_c', 'after')`);
  await expect.poll(() => heard, { timeout: 10_000 }).toEqual(['after']);

  // A listener that stopped listening is not told.
  await stopA();
  told.length = 0;
  proxy.terminateAll();
  await expect.poll(() => told.length, { timeout: 20_000, interval: 50 }).toBe(3);
  expect(told.sort()).toEqual(['b', 'rejects', 'throws']);
});

it('does not tell a listener that was not listening when the connection was lost, nor one stopped by another', async () => {
  const { proxy, db } = await openThroughProxy();
  cleanups.push(() => db.close());
  const told: string[] = [];
  // Every channel given up, then the connection lost: the next listen makes a first connection, not a
  // reconnection (nothing it listened on was missed).
  const stop = await db.listen('rmapp_test_a', () => {}, { onReconnect: () => told.push('a') });
  await stop();
  proxy.terminateAll();
  await new Promise((r) => setTimeout(r, 300));
  let stopD: () => Promise<void> = async () => {};
  await db.listen('rmapp_test_c', () => {}, {
    onReconnect: () => {
      told.push('c');
      void stopD();
    },
  });
  stopD = await db.listen('rmapp_test_d', () => {}, { onReconnect: () => told.push('d') });
  await new Promise((r) => setTimeout(r, 300));
  expect(told, 'told at a first connection').toEqual([]);
  // A loss while c and d listen: c is told and stops d before d's turn.
  proxy.terminateAll();
  await expect.poll(() => told, { timeout: 20_000, interval: 50 }).toEqual(['c']);
  await new Promise((r) => setTimeout(r, 300));
  expect(told, 'd was stopped by c before its turn').toEqual(['c']);
});

it('sends the statements of its connection one at a time: listens of new channels at once, an unlisten among them', async () => {
  // Queued inside pg's client instead, they printed pg 8's deprecation warning ("Calling client.query()
  // when the client is already executing a query"), which pg 9 turns into an error. pg.Client is
  // watched for statements sent while another of the same connection has not answered.
  const overlaps: string[] = [];
  const active = new Map<object, string>();
  const original = pg.Client.prototype.query;
  pg.Client.prototype.query = function (this: object, ...args: unknown[]) {
    const config = args[0] as { text?: string } | string;
    const text = typeof config === 'string' ? config : (config.text ?? '');
    const running = active.get(this);
    if (running !== undefined) overlaps.push(`${text} while ${running}`);
    active.set(this, text);
    const done = () => active.get(this) === text && active.delete(this);
    // pg-pool passes a callback; other callers take the promise.
    const last = args.at(-1);
    if (typeof last === 'function')
      args[args.length - 1] = (...cb: unknown[]) => {
        done();
        return (last as (...a: unknown[]) => unknown)(...cb);
      };
    const result = (original as (...a: unknown[]) => unknown).apply(this, args);
    if (result instanceof Promise) result.then(done, done);
    return result;
  } as typeof original;
  try {
    const { proxy, db } = await openThroughProxy();
    cleanups.push(() => db.close());
    const heard: string[] = [];
    const stopFirst = await db.listen('rmapp_test_first', () => {});
    const channels = Array.from({ length: 8 }, (_, i) => `rmapp_test_many_${i}`);
    await Promise.all([...channels.map((c) => db.listen(c, (p) => heard.push(`${c}:${p}`))), stopFirst()]);
    expect(overlaps, 'statements sent while another was unanswered').toEqual([]);
    expect(listens(proxy.seen).filter((t) => t.includes('rmapp_test_many_')).length, 'one LISTEN per channel').toBe(8);
    expect(
      proxy.seen.filter((t) => /^UNLISTEN /.test(t)),
      'the unlisten',
    ).toEqual(['UNLISTEN "rmapp_test_first"']);
    for (const c of channels) await db.query(`select pg_notify('${c}', 'x')`);
    await expect.poll(() => heard.length, { timeout: 10_000 }).toBe(8);
  } finally {
    pg.Client.prototype.query = original;
  }
});

it('refuses a channel name Postgres would truncate (over 63 bytes), empty or with NUL, naming it, on Postgres and PGlite', async () => {
  const { proxy, db } = await openThroughProxy();
  cleanups.push(() => db.close());
  const memory = await openDatabase({ dataDir: 'memory://' });
  cleanups.push(() => memory.close());
  const long = `rmapp_test_${'é'.repeat(27)}`; // 11 + 54 = 65 bytes, 38 characters
  for (const store of [db, memory]) {
    for (const bad of [long, '', 'rmapp\u0000test']) {
      const err = (await store.listen(bad, () => {}).catch((e: unknown) => e)) as { code?: unknown; message?: unknown };
      expect(err?.code, `${store.kind}: ${JSON.stringify(bad)}`).toBe('INVALID_CHANNEL');
      expect(String(err.message)).toMatch(/1 to 63 bytes/);
    }
    // 63 bytes exactly is a channel as given.
    const heard: string[] = [];
    const exact = `rmapp_test_${'é'.repeat(26)}`;
    await store.listen(exact, (p) => heard.push(p));
    await store.query(`select pg_notify($1, 'x')`, [exact]);
    await expect.poll(() => heard, { timeout: 10_000 }).toEqual(['x']);
  }
  expect(
    listens(proxy.seen).filter((t) => t.includes('é')),
    'LISTENs sent on Postgres',
  ).toHaveLength(1);
});
