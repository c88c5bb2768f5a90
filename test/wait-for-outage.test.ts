/**
 * `engine.waitFor` on a run another process executes reads the run until it ends: an outage of the
 * database under those reads (backends terminated, a server that stops answering) must not end the wait
 * with a driver error while the run goes on, and must not keep it past its deadline. Real Postgres; the
 * faults come from a proxy in front of it (test/helpers/pg-fault-proxy.ts).
 */
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, openDatabase, type Database, type Engine } from '../src/index.ts';
import { startFaultProxy, type FaultProxy } from './helpers/pg-fault-proxy.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';

const machine = setup({}).createMachine({
  id: 'waitsForGo',
  initial: 'waiting',
  states: { waiting: { on: { go: 'done' } }, done: { type: 'final' } },
  output: () => ({ went: true }),
});
const waitsForGo = defineWorkflow({ name: 'test.waitsForGo', machine, input: z.object({}) });

interface Logged {
  fields: Record<string, unknown>;
  message: string;
}
function recordingLogger(into: Logged[]) {
  const log = (fields: Record<string, unknown>, message: string) => void into.push({ fields, message });
  return { debug: log, info: log, warn: log, error: log, fatal: log, child: () => recordingLogger(into) };
}

let testDb: TestDatabase;
let worker: Engine;
let proxy: FaultProxy;
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  testDb = await createTestDatabase();
  worker = createEngine({ database: testDb.url, workflows: [waitsForGo], pollMs: 50 });
  await worker.startWorker();
});
afterEach(async () => {
  // The proxy first: a frozen one would hold the client's close for ever.
  await proxy?.close();
  for (const close of closers.splice(0).reverse()) await close().catch(() => {});
});
afterAll(async () => {
  await worker.stop();
  await testDb.drop();
});

/** A client-only engine that reaches the database through a fresh fault proxy. */
async function clientThroughProxy(logged: Logged[]): Promise<{ client: Engine; db: Database }> {
  proxy = await startFaultProxy();
  const db = await openDatabase({ url: proxy.url(testDb.name), maxConnections: 2 });
  const client = createEngine({ database: db, workflows: [waitsForGo], logger: recordingLogger(logged) as never });
  closers.push(
    () => db.close(),
    () => client.stop(),
  );
  await client.db();
  return { client, db };
}

it('a wait survives its reads being cut (backends terminated) and returns the run once it ends', async () => {
  const logged: Logged[] = [];
  const { client } = await clientThroughProxy(logged);
  const id = await worker.start(waitsForGo, {});
  // Every read of the run the client makes from now on is cut, until three were.
  // Its status reads (status-reads.ts) and its read of the run once it ended.
  proxy.cutMatching(/from rmapp_runs where id = (\$1|any\(\$1)/, 3);
  const waiting = client.waitFor(id, { pollMs: 20, timeoutMs: 60_000 });
  const settled = waiting.then(
    () => 'resolved',
    (err: Error) => `rejected: ${err.message}`,
  );
  await expect.poll(() => proxy.cuts.length, { timeout: 20_000 }).toBe(3);
  // Reads go through again; the run is still waiting for its signal, and so is the caller.
  await new Promise((r) => setTimeout(r, 300));
  expect(await Promise.race([settled, Promise.resolve('still waiting')])).toBe('still waiting');
  await worker.send(id, { type: 'go' });
  const run = await waiting;
  expect(run.status).toBe('succeeded');
  expect(run.output).toEqual({ went: true });
  const warnings = logged.filter((l) => l.message.includes(`waiting for run ${id} could not read it`));
  expect(warnings.length, `warnings logged: ${JSON.stringify(logged.map((l) => l.message))}`).toBe(3);
  expect(warnings[0]?.message).toMatch(/retrying/);
});

it('a wait whose reads hang (the server stopped answering) ends at its deadline with WAIT_TIMEOUT', async () => {
  const { client } = await clientThroughProxy([]);
  const id = await worker.start(waitsForGo, {});
  expect(['pending', 'running', 'waiting']).toContain((await client.get(id)).status);
  proxy.freeze();
  const started = Date.now();
  await expect(client.waitFor(id, { timeoutMs: 1_500 })).rejects.toMatchObject({ code: 'WAIT_TIMEOUT' });
  // Not held until the driver gives up on its own (it never does: pg sets no statement timeout).
  expect(Date.now() - started, 'the wait outlived its deadline by').toBeLessThan(30_000);
});

it('a wait on a database its caller closed ends with DATABASE_CLOSED instead of retrying', async () => {
  const logged: Logged[] = [];
  const { client, db } = await clientThroughProxy(logged);
  const id = await worker.start(waitsForGo, {});
  const waiting = client.waitFor(id, { pollMs: 20 });
  // Handled from the start: the wait may end while the close is still under way.
  waiting.catch(() => {});
  await new Promise((r) => setTimeout(r, 100));
  await db.close();
  await expect(waiting).rejects.toMatchObject({ code: 'DATABASE_CLOSED' });
  expect(logged.filter((l) => l.message.includes('could not read'))).toEqual([]);
});

it('a wait with a timeout longer than a timer can hold does not expire at once', async () => {
  const id = await worker.start(waitsForGo, {});
  const month = 30 * 24 * 3_600_000;
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.name);
  process.on('warning', onWarning);
  try {
    // A run this process executes (awaited from its own commit) and, from a client, one it reads.
    const local = worker.waitFor(id, { timeoutMs: month }).then(
      () => 'resolved',
      (err: Error) => `rejected: ${err.message}`,
    );
    const { client } = await clientThroughProxy([]);
    const remote = client.waitFor(id, { timeoutMs: month, pollMs: 20 }).then(
      (run) => run.status,
      (err: Error) => `rejected: ${err.message}`,
    );
    await new Promise((r) => setTimeout(r, 200));
    expect(await Promise.race([local, Promise.resolve('still waiting')])).toBe('still waiting');
    expect(await Promise.race([remote, Promise.resolve('still waiting')])).toBe('still waiting');
    await worker.send(id, { type: 'go' });
    expect(await local).toBe('resolved');
    expect(await remote).toBe('succeeded');
    expect(warnings, 'process warnings').not.toContain('TimeoutOverflowWarning');
  } finally {
    process.off('warning', onWarning);
  }
});

it('bad wait options are refused with what to pass', async () => {
  const id = await worker.start(waitsForGo, {});
  await expect(worker.waitFor(id, { timeoutMs: Number.NaN })).rejects.toMatchObject({
    code: 'VALIDATION',
    message: expect.stringMatching(/timeoutMs/),
  });
  await expect(worker.waitFor(id, { timeoutMs: -1 })).rejects.toMatchObject({ message: expect.stringMatching(/timeoutMs must be/) });
  await expect(worker.waitFor(id, { pollMs: 0 })).rejects.toMatchObject({ message: expect.stringMatching(/pollMs must be a positive/) });
  await worker.send(id, { type: 'go' });
});

it('timeoutMs 0 reads a finished run once and returns it (the read is not cut short by the deadline)', async () => {
  const { client } = await clientThroughProxy([]);
  const id = await worker.start(waitsForGo, {});
  await worker.send(id, { type: 'go' });
  expect((await worker.waitFor(id, { timeoutMs: 20_000 })).status).toBe('succeeded');
  const outcomes: string[] = [];
  for (let i = 0; i < 20; i++) {
    outcomes.push(
      await client.waitFor(id, { timeoutMs: 0 }).then(
        (run) => run.status,
        (err: Error & { code?: string }) => err.code ?? err.message,
      ),
    );
  }
  expect(outcomes).toEqual(Array.from({ length: 20 }, () => 'succeeded'));
});

it("a read cancelled by the role's statement_timeout (57014) is made again until the run ends", async () => {
  const logged: Logged[] = [];
  const db = await openDatabase({ url: `${testDb.url}?options=${encodeURIComponent('-c statement_timeout=100')}` });
  const client = createEngine({ database: db, workflows: [waitsForGo], logger: recordingLogger(logged) as never });
  closers.push(
    () => db.close(),
    () => client.stop(),
  );
  const id = await worker.start(waitsForGo, {});
  await expect.poll(async () => (await worker.get(id)).status, { timeout: 20_000 }).toBe('waiting');
  const locker = postgres(testDb.url, { max: 1, onnotice: () => {}, fetch_types: false });
  closers.push(() => locker.end());
  let waiting: Promise<{ status: string }> | undefined;
  // While the table is locked every read of the run waits past 100 ms and is cancelled.
  await locker.begin(async (sql) => {
    await sql`lock table rmapp_runs in access exclusive mode`;
    waiting = client.waitFor(id, { pollMs: 20, timeoutMs: 60_000 });
    waiting.catch(() => {});
    await expect
      .poll(() => logged.filter((l) => /canceling statement due to statement timeout/.test(l.message)).length, { timeout: 20_000 })
      .toBeGreaterThanOrEqual(2);
  });
  await worker.send(id, { type: 'go' });
  expect((await waiting!).status).toBe('succeeded');
});

it('reads left hanging on connections that went silent do not hold the pool: the wait reads on new ones', async () => {
  const { client } = await clientThroughProxy([]);
  const id = await worker.start(waitsForGo, {});
  await worker.send(id, { type: 'go' });
  expect((await worker.waitFor(id, { timeoutMs: 20_000 })).status).toBe('succeeded');
  // Both pooled connections are open; then a partition silences them while new connections work.
  await Promise.all([client.get(id), client.get(id)]);
  proxy.silenceOpen();
  // The first wait's read hangs on a silent connection: it gives up at its deadline (plus the read's second).
  await expect(client.waitFor(id, { timeoutMs: 200 })).rejects.toMatchObject({ code: 'WAIT_TIMEOUT' });
  // Another may meet the other silent connection; before, each such read kept its connection busy for
  // ever, the pool filled with them, and no later read got a connection at all.
  await client.waitFor(id, { timeoutMs: 200 }).catch(() => {});
  const run = await client.waitFor(id, { timeoutMs: 20_000 });
  expect(run.status).toBe('succeeded');
});

it('a statement given timeoutMs fails with QUERY_TIMEOUT (transient) and its connection leaves the pool', async () => {
  proxy = await startFaultProxy();
  const db = await openDatabase({ url: proxy.url(testDb.name).replace('postgres@', 'postgres:hunter2@'), maxConnections: 1 });
  closers.push(() => db.close({ force: true }));
  expect(await db.query<{ one: number }>('select 1 as one')).toEqual([{ one: 1 }]);
  proxy.silenceOpen();
  const err = (await db.query('select 2', [], { timeoutMs: 300 }).catch((e: unknown) => e)) as Error & { code?: string; category?: string };
  expect({ code: err.code, category: err.category }).toEqual({ code: 'QUERY_TIMEOUT', category: 'transient' });
  expect(err.message).toMatch(/did not answer a statement within 300 ms; its connection was closed/);
  expect(err.message).not.toMatch(/hunter2/);
  // The pool's only slot was freed: the next statement gets a new connection.
  expect(await db.query<{ three: number }>('select 3 as three', [], { timeoutMs: 10_000 })).toEqual([{ three: 3 }]);
});

it('reads a wait gave up on do not leave backends running on the server (blocked on a lock, they outlived their connection)', async () => {
  const db = await openDatabase({ url: `${testDb.url}?application_name=rmapp_wait_orphans`, maxConnections: 2 });
  const client = createEngine({ database: db, workflows: [waitsForGo] });
  closers.push(
    () => db.close({ force: true }),
    () => client.stop(),
  );
  const id = await worker.start(waitsForGo, {});
  await expect.poll(async () => (await worker.get(id)).status, { timeout: 20_000 }).toBe('waiting');
  const admin = postgres(testDb.url, { max: 1, onnotice: () => {}, fetch_types: false });
  closers.push(() => admin.end());
  const active = async () =>
    Number(
      (await admin`select count(*)::int as n from pg_stat_activity where application_name = 'rmapp_wait_orphans' and state = 'active'`)[0]
        ?.n,
    );
  const locker = postgres(testDb.url, { max: 1, onnotice: () => {}, fetch_types: false });
  closers.push(() => locker.end());
  await locker.begin(async (sql) => {
    await sql`lock table rmapp_runs in access exclusive mode`;
    const outcomes = await Promise.all(
      Array.from({ length: 6 }, () =>
        client.waitFor(id, { timeoutMs: 300 }).then(
          () => 'returned',
          (e: { code?: string }) => e.code,
        ),
      ),
    );
    expect(outcomes).toEqual(Array.from({ length: 6 }, () => 'WAIT_TIMEOUT'));
    // Still locked: a read left running would still be waiting on it.
    await expect.poll(active, { timeout: 20_000 }).toBe(0);
  });
});
