/**
 * Backends terminated at exact points of the wire protocol (issue 13): no database driver error may
 * become an unhandled rejection or an uncaught exception in an rmapp process, and a reconnect never
 * hands an old error to the next statement. A proxy in front of Postgres makes each point
 * deterministic (test/helpers/pg-fault-proxy.ts); docs/database-driver.md explains the driver faults.
 */
import { spawn } from 'node:child_process';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import postgres from 'postgres';
import { createEngine, openDatabase, type Database, type Engine } from '../src/index.ts';
import { durabilityWorkflows } from './helpers/durability-workflows.ts';
import { startFaultProxy, type FaultProxy } from './helpers/pg-fault-proxy.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { killAll, ROOT, spawnRmapp, TEST_WORKFLOWS, until } from './helpers/processes.ts';
import { failingWorkflow, sequenceWorkflow } from './helpers/workflows.ts';

let testDb: TestDatabase;
let proxy: FaultProxy;
let client: Engine;
let db: Database;
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  testDb = await createTestDatabase({ empty: true });
  db = await openDatabase({ url: testDb.url });
  client = createEngine({ database: db, workflows: [sequenceWorkflow(6), failingWorkflow(), ...durabilityWorkflows()] });
  await client.db();
});
afterEach(async () => {
  killAll();
  for (const close of closers.splice(0)) await close().catch(() => {});
  await proxy?.close();
});
afterAll(async () => {
  await client.stop();
  await db.close();
  await testDb.drop();
});

/** Runs an ES module in a child Node from the repository root; resolves with its exit code and output. */
function runNodeModule(source: string, env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', source], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, output })));
}

it('the proxy reproduces the driver fault: postgres.js with its default type fetch dies of an unhandled rejection', async () => {
  proxy = await startFaultProxy();
  proxy.cutFirstStatement(1);
  // The caller handles every error it can see; the process still dies, from a promise it never had.
  const { code, output } = await runNodeModule(
    `import postgres from 'postgres';
     const sql = postgres(process.env.URL, { max: 1, onnotice() {} });
     await sql\`select 1\`.catch((e) => console.log('caught:', e.code));
     await new Promise((r) => setTimeout(r, 300));
     await sql.end();
     console.log('survived');`,
    { URL: proxy.url(testDb.name) },
  );
  expect(proxy.cuts[0], 'the first statement of the connection').toMatch(/pg_catalog\.pg_type/);
  expect(code, `plain postgres.js should have died; its output:\n${output}`).not.toBe(0);
  expect(output).toMatch(/57P01|terminating connection/);
  expect(output).not.toMatch(/survived/);
});

it("postgres.js replays a terminated statement's error onto the next one; rmapp's store does not", async () => {
  proxy = await startFaultProxy();
  const raw = postgres(proxy.url(testDb.name), { max: 1, fetch_types: false, onnotice: () => {} });
  closers.push(() => raw.end());
  const store = await openDatabase({ url: proxy.url(testDb.name), maxConnections: 1 });
  closers.push(() => store.close());

  proxy.cutMatching(/cut me/);
  await expect(raw.unsafe(`select 'cut me'`)).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
  // The driver fault that made rmapp leave postgres.js (docs/database-driver.md).
  await expect(raw.unsafe('select 1 as x'), 'postgres.js 3.4.9 replays the old 57P01').rejects.toMatchObject({ code: '57P01' });

  // rmapp's store: the cut statement fails with the server's own error, the next one simply runs.
  await expect(store.query(`select 'cut me'`)).rejects.toMatchObject({ code: '57P01' });
  expect(await store.query<{ x: number }>('select 1 as x')).toEqual([{ x: 1 }]);
  expect(await store.query<{ x: number }>('select $1::int as x', [2])).toEqual([{ x: 2 }]);
  await expect(store.script([`select 'cut me'`])).rejects.toMatchObject({ code: '57P01' });
  expect(await store.script<{ x: number }>(['select 1 as a', 'select 3 as x'])).toEqual([{ x: 3 }]);
  proxy.cutMatching(null);
  proxy.cutFirstStatement(1);
  const fresh = await openDatabase({ url: proxy.url(testDb.name), maxConnections: 1 });
  closers.push(() => fresh.close());
  await expect(fresh.query('select 4 as x'), 'the first statement of a new connection is cut').rejects.toMatchObject({ code: '57P01' });
  expect(await fresh.query<{ x: number }>('select 5 as x')).toEqual([{ x: 5 }]);
  expect(proxy.cuts).toEqual([`select 'cut me'`, `select 'cut me'`, `select 'cut me'`, 'select 4 as x']);
});

it('a storm of terminated backends under 20 concurrent statement loops leaves no connection wedged', async () => {
  const store = await openDatabase({ url: testDb.url, maxConnections: 10 });
  closers.push(() => store.close());
  const outcomes = new Map<string, number>();
  let stop = false;
  const loop = async (i: number) => {
    while (!stop) {
      const r = await (
        i % 4 === 1
          ? store.query('select pg_sleep(0.005), $1::int as i', [i])
          : i % 4 === 3
            ? store.query('select pg_sleep(0.005), $1::int as i', [i], { timeoutMs: 10_000 })
            : store.script(['select pg_sleep(0.005)', `select ${i} as i`])
      ).then(
        () => 'ok',
        (e: { code?: string }) => e.code ?? 'no code',
      );
      outcomes.set(r, (outcomes.get(r) ?? 0) + 1);
    }
  };
  const loops = Array.from({ length: 20 }, (_, i) => loop(i));
  for (let k = 0; k < 15; k++) {
    await new Promise((r) => setTimeout(r, 100 + (k % 3) * 100));
    await db.query(
      `select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and application_name = 'rmapp' and pid <> pg_backend_pid()`,
      [testDb.name],
    );
  }
  stop = true;
  await Promise.all(loops);
  expect(
    [...outcomes.keys()].filter((k) => k !== 'ok' && k !== '57P01'),
    `outcomes: ${JSON.stringify([...outcomes])}`,
  ).toEqual([]);
  // Every connection of the pool works again: 30 statements at once, each on whatever connection is free.
  const after = await Promise.all(Array.from({ length: 30 }, (_, i) => store.query<{ i: number }>('select $1::int as i', [i])));
  expect(after.map((rows) => rows[0]?.i)).toEqual(Array.from({ length: 30 }, (_, i) => i));
});

it('a backend terminated inside a script (one transaction) fails only that script: no crash, no hung pool, nothing applied', async () => {
  const store = await openDatabase({ url: testDb.url, maxConnections: 2 });
  closers.push(() => store.close());
  await store.query('create table if not exists script_probe (n int)');
  // Before the fix, a transaction (sql.begin) whose backend died threw a TypeError from a timer.
  // The rejection is taken at once (it may come before the assertion below is reached).
  const running = store.script(['insert into script_probe values (1)', 'select pg_sleep(5)', 'select 1 as x']).then(
    () => {
      throw new Error('the script should have failed');
    },
    (err: unknown) => err,
  );
  const probe = `select pid from pg_stat_activity where query like '%script_probe%' and state = 'active' and datname = $1 and pid <> pg_backend_pid()`;
  await until(async () => (await db.query(probe, [testDb.name])).length === 1, 10_000, 'the script to run');
  const [victim] = await db.query<{ pid: number }>(probe, [testDb.name]);
  await db.query('select pg_terminate_backend($1)', [victim?.pid]);
  expect(await running).toMatchObject({ code: '57P01' });
  for (let i = 0; i < 3; i++) expect(await store.query<{ x: number }>('select $1::int as x', [i])).toEqual([{ x: i }]);
  expect(await db.query('select n from script_probe'), 'the insert before the termination was rolled back').toEqual([]);
});

it('a worker process whose connections are terminated at startup and mid-run survives, and every run finishes', async () => {
  proxy = await startFaultProxy();
  const ids: string[] = [];
  for (let i = 0; i < 40; i++) ids.push(await client.start('test.sequence', { slowStep: 'step3', slowMs: 100 }));
  const worker = spawnRmapp(['--workflows', TEST_WORKFLOWS, 'worker', '--lease-ms', '10000', '--concurrency', '10', '--poll-ms', '200'], {
    DATABASE_URL: proxy.url(testDb.name),
  });
  const succeeded = async () =>
    (
      await db.query<{ n: number }>(
        `select count(*)::int as n from rmapp_runs where status = 'succeeded' and id in (select jsonb_array_elements_text($1::jsonb))`,
        [JSON.stringify(ids)],
      )
    )[0]?.n ?? 0;
  // A driver that fetched array types would meet this rule at every new connection.
  proxy.cutMatching(/pg_catalog\.pg_type/);
  for (const target of [5, 20]) {
    await until(async () => (await succeeded()) >= target || worker.child.exitCode !== null, 60_000, `${target} runs to succeed`);
    expect(worker.child.exitCode, `the worker died:\n${worker.output()}`).toBeNull();
    // Every open connection (the pool and the LISTEN one) is terminated, and the first statement of
    // each of the next six new connections is cut right after the startup handshake.
    proxy.cutFirstStatement(6);
    expect(proxy.terminateAll()).toBeGreaterThan(0);
  }
  await until(async () => (await succeeded()) === ids.length || worker.child.exitCode !== null, 90_000, 'every run to succeed');
  expect(worker.child.exitCode, `the worker died:\n${worker.output()}`).toBeNull();
  expect(await succeeded()).toBe(ids.length);
  expect(proxy.cuts.length, 'statements cut at the start of new connections').toBeGreaterThanOrEqual(6);
  expect(proxy.cuts.filter((c) => /pg_type/.test(c))).toEqual([]);
  expect(worker.output()).not.toMatch(/unhandled|uncaught|TypeError/i);
  worker.child.kill('SIGTERM');
  expect(await worker.exited, `graceful exit after SIGTERM:\n${worker.output()}`).toBe(0);
});

it('a client engine whose first statement met a terminated backend works on its next call', async () => {
  proxy = await startFaultProxy();
  proxy.cutFirstStatement(1);
  const engine = createEngine({ database: proxy.url(testDb.name), workflows: [sequenceWorkflow(6)] });
  closers.push(() => engine.stop());
  await expect(engine.start('test.sequence', {}), 'the migration met the cut').rejects.toMatchObject({ code: '57P01' });
  const id = await engine.start('test.sequence', {});
  expect((await engine.get(id)).status).toBe('pending');
});

it('a worker whose start-up meets terminated backends waits for the database, then works; a bad URL exits 1 at once', async () => {
  proxy = await startFaultProxy();
  proxy.cutMatching(/is not registered on worker/, 2);
  const worker = spawnRmapp(['--workflows', TEST_WORKFLOWS, 'worker', '--poll-ms', '100'], { DATABASE_URL: proxy.url(testDb.name) });
  await until(() => /rmapp worker .* on /.test(worker.output()) || worker.child.exitCode !== null, 60_000, 'the worker to start');
  expect(worker.child.exitCode, worker.output()).toBeNull();
  expect(worker.output().match(/the database is not reachable/g), worker.output()).toHaveLength(2);
  const id = await client.start('test.sequence', {});
  await until(async () => (await client.get(id)).status === 'succeeded', 30_000, 'the run to succeed on that worker');
  worker.child.kill('SIGTERM');
  expect(await worker.exited, worker.output()).toBe(0);

  const bad = spawnRmapp(['--workflows', TEST_WORKFLOWS, 'worker'], { DATABASE_URL: 'mysql://nope' });
  expect(await bad.exited, bad.output()).toBe(1);
  expect(bad.output()).toMatch(/DATABASE_URL is not a Postgres connection string: got "mysql:\/\/nope"/);
});
