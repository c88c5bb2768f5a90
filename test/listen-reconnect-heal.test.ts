/**
 * The LISTEN connection (src/persistence/listener.ts, `Listener`) made again through a partition that
 * accepts connections and never answers them (the fault proxy's `freeze`), then heals. A handshake sent
 * into the partition is never answered, even after the heal (its startup message was dropped): the
 * connection used to wait for its own connect timeout, 30 s, before it tried again, so a worker heard
 * none of the wake-ups sent after the heal — a signal to a waiting run — for up to 30 s (claims still
 * came by polling). Now each making of it is bounded by the listen's deadline (an engine's: its
 * statements' deadline, `withStatementTimeout`) and tried again with backoff. Outcomes and mechanism
 * only: connection attempts counted by the proxy during the partition, a LISTEN sent after the heal on
 * a new connection, a notification sent after the heal heard on it.
 */
import { expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine } from '../src/state_machine/engine.ts';
import { defineWorkflow } from '../src/state_machine/definition.ts';
import { statementTimeoutMs } from '../src/state_machine/engine-options.ts';
import { openDatabase, withStatementTimeout } from '../src/persistence/database.ts';
import { createTestDatabase } from './helpers/postgres.ts';
import { startFaultProxy, type FaultProxy } from './helpers/pg-fault-proxy.ts';
import { faultScene } from './helpers/fault-scene.ts';

const scene = faultScene();
const { closers } = scene;

/** The LISTENs of `channel` the proxy saw from its statement number `from` on. */
const listensAfter = (p: FaultProxy, from: number, channel: string) => p.seen.slice(from).filter((t) => t === `LISTEN "${channel}"`).length;

it("a LISTEN connection lost in a partition is tried again within its listen's deadline, and hears what is sent after the heal", async () => {
  const testDb = (scene.testDb = await createTestDatabase());
  const proxy = (scene.proxy = await startFaultProxy());
  const raw = await openDatabase({ url: proxy.url(testDb.name) });
  const direct = await openDatabase({ url: testDb.url });
  closers.push(
    () => raw.close({ force: true }),
    () => direct.close(),
  );
  // An engine's store at its shortest statement deadline (a lease of 3 s or less).
  const db = withStatementTimeout(raw, statementTimeoutMs(3_000));
  const heard: string[] = [];
  let reconnects = 0;
  await db.listen('rmapp_test_heal', (p) => heard.push(p), { onReconnect: () => (reconnects += 1) });
  // Only the LISTEN connection goes through the proxy: every other statement here goes direct.
  expect(proxy.connections(), 'connections before the partition').toBe(1);

  // The partition: the LISTEN connection is cut (as a backend terminated in it), and every connection
  // made again goes into a partition that accepts it and answers nothing.
  proxy.freeze();
  proxy.terminateAll();
  // Each making of the connection is given up at the deadline (2.5 s) and tried again after a backoff:
  // it used to wait 30 s for its one handshake.
  await expect
    .poll(() => proxy?.connections(), {
      timeout: 20_000,
      interval: 100,
      message: 'attempts to make the LISTEN connection again while the partition holds (1 before it)',
    })
    .toBeGreaterThanOrEqual(4);
  expect(reconnects, 'told of a reconnection while none was made').toBe(0);

  const seenAtHeal = proxy.seen.length;
  // Counted by startup messages forwarded, not connections accepted: one accepted just before the heal
  // may send its startup message after it, and that connection then works (the race CI met once).
  const handshakesAtHeal = proxy.handshakes();
  proxy.heal();
  // The next making of the connection after the heal works and listens again; a notification sent
  // after the heal is heard on it.
  await expect
    .poll(
      async () => {
        await direct.query(`select pg_notify('rmapp_test_heal', 'after the heal')`);
        return heard.includes('after the heal');
      },
      { timeout: 20_000, interval: 200, message: 'a notification sent after the heal was heard' },
    )
    .toBe(true);
  expect(listensAfter(proxy, seenAtHeal, 'rmapp_test_heal'), 'LISTENs sent after the heal').toBe(1);
  expect(proxy.handshakes(), 'connections whose handshake reached the server after the heal').toBeGreaterThan(handshakesAtHeal);
  expect(reconnects, 'told once, of the connection made after the heal').toBe(1);
}, 60_000);

const waits = defineWorkflow({
  name: 'heal.waits',
  machine: setup({}).createMachine({
    id: 'waits',
    initial: 'waiting',
    states: { waiting: { on: { go: 'done' } }, done: { type: 'final' } },
  }),
  input: z.object({}).passthrough(),
});

it('a signal sent after a partition heals wakes its waiting run on the LISTEN connection made again after the heal', async () => {
  const testDb = (scene.testDb = await createTestDatabase());
  const proxy = (scene.proxy = await startFaultProxy());
  // Notifications are the only wake-up: a poll every 10 minutes, and the run waits on a signal alone.
  const worker = createEngine({ database: proxy.url(testDb.name), workflows: [waits], pollMs: 600_000, leaseMs: 3_000 });
  const client = createEngine({ database: testDb.url, workflows: [waits] });
  const direct = await openDatabase({ url: testDb.url });
  closers.push(
    () => direct.close(),
    () => client.stop(),
    () => worker.stop({ graceMs: 0 }),
  );
  await worker.startWorker();
  const id = await client.start(waits, {});
  // Evicted: waiting, its lease given back, woken only by its signal's notification.
  await expect
    .poll(
      async () =>
        (
          await direct.query<{ status: string; lease_owner: string | null }>(`select status, lease_owner from rmapp_runs where id = $1`, [
            id,
          ])
        )[0],
      { timeout: 20_000, interval: 100 },
    )
    .toEqual({ status: 'waiting', lease_owner: null });

  proxy.freeze();
  proxy.terminateAll();
  const connectionsCut = proxy.connections();
  // The partition holds until connections were tried again into it (the LISTEN connection's first
  // attempt among them, its handshake lost for good).
  await expect
    .poll(() => (proxy?.connections() ?? 0) - connectionsCut, {
      timeout: 20_000,
      interval: 100,
      message: 'attempts to make connections again while the partition holds',
    })
    .toBeGreaterThanOrEqual(3);
  const seenAtHeal = proxy.seen.length;
  proxy.heal();
  await expect
    .poll(() => (proxy ? listensAfter(proxy, seenAtHeal, 'rmapp_wake') : 0), {
      timeout: 20_000,
      interval: 50,
      message: "the worker's LISTEN sent again after the heal",
    })
    .toBe(1);
  await client.send(id, { type: 'go' });
  expect((await client.waitFor(id, { timeoutMs: 20_000 })).status, `run ${id}, signalled after the heal`).toBe('succeeded');
}, 90_000);
