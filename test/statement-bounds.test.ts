/**
 * The bounds on an engine's statements (persistence/database.ts `withStatementTimeout`, engine-options.ts
 * `statementTimeoutMs`), tried where they were found to break: an engine's API calls held on silent
 * connections starving its worker of pool slots; a timed-out statement longer than pg_stat_activity keeps
 * (1 kB) left running on the server, and applied once its lock was released; a large statement on a slow
 * link cut again and again; a close waiting for a LISTEN connection that a server never answers. Real
 * Postgres, behind a TCP proxy where a fault needs one.
 */
import { expect, it } from 'vitest';
import postgres from 'postgres';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine } from '../src/state_machine/engine.ts';
import { defineWorkflow } from '../src/state_machine/definition.ts';
import { step } from '../src/state_machine/step.ts';
import { openDatabase, withStatementTimeout, type Database, type QueryOptions } from '../src/persistence/database.ts';
import { createTestDatabase } from './helpers/postgres.ts';
import { startFaultProxy } from './helpers/pg-fault-proxy.ts';
import { faultScene } from './helpers/fault-scene.ts';

const scene = faultScene();
const { closers } = scene;

const pause = step(async ({ input }: { input: { n: number } }) => {
  await new Promise((r) => setTimeout(r, 200));
  return input.n;
});
const three = defineWorkflow({
  name: 'bounds.three',
  machine: setup({ actors: { pause } }).createMachine({
    id: 'three',
    initial: 's1',
    states: {
      s1: { invoke: { src: 'pause', input: { n: 1 }, onDone: 's2' } },
      s2: { invoke: { src: 'pause', input: { n: 2 }, onDone: 's3' } },
      s3: { invoke: { src: 'pause', input: { n: 3 }, onDone: 'done' } },
      done: { type: 'final' },
    },
  }),
  input: z.object({}).passthrough(),
});

it("an engine's reads held on silent connections time out too: they do not take every pool slot from its worker", async () => {
  const testDb = (scene.testDb = await createTestDatabase());
  const proxy = (scene.proxy = await startFaultProxy());
  // One engine, as `rmapp serve` runs its dashboard and its worker: one pool of 10 connections.
  const engine = createEngine({ database: proxy.url(testDb.name), workflows: [three], leaseMs: 40_000, concurrency: 20 });
  const direct = await openDatabase({ url: testDb.url });
  closers.push(
    () => direct.close(),
    () => engine.stop({ graceMs: 0 }),
  );
  await engine.startWorker();
  const ids: string[] = [];
  for (let i = 0; i < 20; i++) ids.push(await engine.start(three, {}));
  // Every pool slot opened, then silenced; a dashboard's reads meet the silent connections.
  await Promise.all(Array.from({ length: 12 }, (_, i) => engine.get(ids[i % ids.length] as string)));
  proxy.silenceOpen();
  const reads = Array.from({ length: 12 }, (_, i) =>
    engine.get(ids[i] as string).then(
      () => 'answered',
      (err: { code?: string }) => err.code,
    ),
  );
  // Statements time out after 10 s (a quarter of the lease); before, the reads held their slots until TCP
  // gave up and the worker's statements waited for a connection over and over, its leases lapsing.
  await expect
    .poll(async () => (await direct.query<{ n: number }>(`select count(*)::int as n from rmapp_runs where status = 'succeeded'`))[0]?.n, {
      timeout: 60_000,
      interval: 500,
    })
    .toBe(20);
  const outcomes = await Promise.all(reads);
  expect(
    outcomes.filter((o) => o !== 'answered' && o !== 'QUERY_TIMEOUT'),
    `reads ended otherwise than answered or QUERY_TIMEOUT: ${outcomes.join(', ')}`,
  ).toEqual([]);
});

it('a statement longer than pg_stat_activity keeps, timed out while blocked on a lock, is terminated on the server', async () => {
  const testDb = (scene.testDb = await createTestDatabase());
  const admin = postgres(testDb.url, { max: 2, onnotice: () => {}, fetch_types: false });
  closers.push(() => admin.end());
  await admin`create table bounds_t (id int primary key, v int not null)`;
  await admin`insert into bounds_t values (1, 0)`;
  const db = await openDatabase({ url: `${testDb.url}?application_name=rmapp_bounds` });
  closers.push(() => db.close({ force: true }));
  // Longer than track_activity_query_size (1 kB): pg_stat_activity shows only its beginning.
  const long = `update bounds_t set v = v + 1 where id = $1 /* ${'x'.repeat(2_000)} */`;
  const reserved = await admin.reserve();
  closers.push(async () => reserved.release());
  await reserved`begin`;
  await reserved`lock table bounds_t in access exclusive mode`;
  for (let i = 0; i < 3; i++) {
    const err = (await db.query(long, [1], { timeoutMs: 300 }).catch((e: unknown) => e)) as { code?: string };
    expect(err.code, `attempt ${i}`).toBe('QUERY_TIMEOUT');
  }
  // Each timed-out update's backend is terminated; before, all three waited on the lock and ran after it.
  await expect
    .poll(
      async () =>
        Number(
          (
            await admin`select count(*)::int as n from pg_stat_activity where application_name = 'rmapp_bounds' and wait_event_type = 'Lock'`
          )[0]?.n,
        ),
      { timeout: 15_000 },
    )
    .toBe(0);
  await reserved`commit`;
  expect((await admin`select v from bounds_t where id = 1`)[0]?.v, 'updates applied after the lock was released').toBe(0);
});

it('the default timeout grows with what a statement sends (a millisecond per kilobyte), and an explicit one is kept', async () => {
  const seen: (QueryOptions | undefined)[] = [];
  const fake: Database = {
    kind: 'postgres',
    description: 'fake',
    query: async (_text, _params, options) => {
      seen.push(options);
      return [];
    },
    script: async () => [],
    listen: async () => async () => {},
    close: async () => {},
  };
  const bounded = withStatementTimeout(fake, 5_000);
  await bounded.query('select 1');
  await bounded.query('select $1', ['x'.repeat(4 * 1024 * 1024)]);
  await bounded.query('select $1', [1], { timeoutMs: 250 });
  await bounded.query('select $1', [1], { timeoutMs: Number.POSITIVE_INFINITY });
  expect(seen.map((o) => o?.timeoutMs)).toEqual([5_000, 5_000 + 4_096, 250, Number.POSITIVE_INFINITY]);
});

it('a close does not wait for a LISTEN connection that the server never answers', async () => {
  const testDb = (scene.testDb = await createTestDatabase());
  const proxy = (scene.proxy = await startFaultProxy());
  const db = await openDatabase({ url: proxy.url(testDb.name) });
  closers.push(() => db.close({ force: true }));
  proxy.holdNewConnections();
  const listening = db.listen('bounds_channel', () => {}).catch((err: unknown) => err);
  await new Promise((r) => setTimeout(r, 300));
  // The connect's own timeout is 30 s; the close gives the connection up instead.
  const closed = await Promise.race([
    db.close().then(() => 'closed'),
    new Promise((r) => setTimeout(() => r('still closing after 15 s'), 15_000)),
  ]);
  expect(closed).toBe('closed');
  expect(await listening, 'the listen that was connecting fails').toBeInstanceOf(Error);
});
