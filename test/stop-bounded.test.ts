/**
 * `engine.stop()` returns whatever the database does: a commit held on a row lock, a claim held by an
 * ACCESS EXCLUSIVE lock, a server that stops answering without closing anything. Past its bound the
 * stop gives the runs it still holds up, as a crash would, says so, and closes its connections by
 * force; the next worker resumes them from their last durable state, no step running on two workers at
 * once. A healthy stop called twice at once is one stop: nothing given up, every lease released. A
 * stop during a start (or its retry's backoff) leaves no worker running (the library's and `rmapp
 * worker`'s on SIGTERM); concurrent starts make one worker.
 */
import { setup } from 'xstate';
import { z } from 'zod';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, defineWorkflow, openDatabase, step, type Database, type Engine } from '../src/index.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { startFaultProxy, type FaultProxy } from './helpers/pg-fault-proxy.ts';
import { spawnRmapp, until } from './helpers/processes.ts';
import { closedPort } from './helpers/ports.ts';
import { createServer, type Server } from 'node:net';
import postgres from 'postgres';

interface Execution {
  runId: string;
  step: string;
  worker: string;
  start: number;
  end: number | null;
}
const ledger: Execution[] = [];
let gate: { open: () => void; opened: Promise<void> } = newGate();
function newGate() {
  let open = () => {};
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

/** The same workflow per engine, its steps recording which engine ran them; `first` waits for the gate. */
function workflowFor(worker: string) {
  const record = (name: string, work: () => Promise<void>) =>
    step(async ({ runId }) => {
      const e: Execution = { runId, step: name, worker, start: performance.now(), end: null };
      ledger.push(e);
      try {
        await work();
      } finally {
        e.end = performance.now();
      }
      return name;
    });
  const machine = setup({
    actors: { first: record('first', () => gate.opened), second: record('second', () => new Promise((r) => setTimeout(r, 50))) },
  }).createMachine({
    id: 'stopping',
    initial: 'one',
    states: {
      one: { invoke: { src: 'first', onDone: 'two' } },
      two: { invoke: { src: 'second', onDone: 'done' } },
      done: { type: 'final' },
    },
  });
  return defineWorkflow({ name: 'test.stopping', machine, input: z.object({}) });
}

function recordingLogger() {
  const lines: { level: 'error' | 'warn'; message: string }[] = [];
  const at =
    (level: 'error' | 'warn') =>
    (fields: object | string, message?: string): void => {
      lines.push({ level, message: typeof fields === 'string' ? fields : (message ?? '') });
    };
  return { lines, logger: { error: at('error'), warn: at('warn') } };
}

let testDb: TestDatabase;
let admin: Database;
let proxy: FaultProxy;
const engines: Engine[] = [];

beforeAll(async () => {
  testDb = await createTestDatabase({ empty: true });
  admin = await openDatabase({ url: testDb.url });
  proxy = await startFaultProxy();
});
afterAll(async () => {
  for (const e of engines) await e.stop({ graceMs: 0 }).catch(() => {});
  await admin.close();
  await proxy.close();
  await testDb.drop();
});

function engine(name: string, url: string, logger = recordingLogger().logger): Engine {
  const e = createEngine({ database: url, workflows: [workflowFor(name)], leaseMs: 1_000, pollMs: 100, workerId: name, logger });
  engines.push(e);
  return e;
}

/** engine.stop() within 30 s, or false (before the fix it waited for the database for ever). */
async function stopsWithin30s(e: Engine, graceMs = 0): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const stopped = await Promise.race([
    e.stop({ graceMs }).then(() => true),
    new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), 30_000))),
  ]);
  clearTimeout(timer);
  return stopped;
}

/** Runs of `ids` whose `second` step did not run exactly once, and executions of a step that overlapped on two workers. */
function ledgerProblems(ids: string[]): string[] {
  const problems: string[] = [];
  for (const id of ids) {
    const seconds = ledger.filter((e) => e.runId === id && e.step === 'second').length;
    if (seconds !== 1) problems.push(`${id}: second ran ${seconds} times`);
    for (const name of ['first', 'second']) {
      const runs = ledger.filter((e) => e.runId === id && e.step === name).sort((a, b) => a.start - b.start);
      for (let i = 1; i < runs.length; i++) {
        const [prev, next] = [runs[i - 1]!, runs[i]!];
        if (prev.worker !== next.worker && (prev.end === null || prev.end > next.start)) {
          problems.push(`${id}: ${name} ran on ${prev.worker} and ${next.worker} at once`);
        }
      }
    }
  }
  return problems;
}

/** Starts `n` runs on `e` and waits until each is in its gated first step. */
async function startGated(e: Engine, n: number): Promise<string[]> {
  gate = newGate();
  await e.startWorker();
  const ids = await Promise.all(Array.from({ length: n }, () => e.start('test.stopping', {})));
  await until(() => ids.every((id) => ledger.some((x) => x.runId === id && x.step === 'first')), 20_000, 'every run in its first step');
  return ids;
}

/** A new worker on the direct URL finishes `ids`; the ledger holds no double or overlapping execution. */
async function resumedElsewhere(ids: string[], name: string): Promise<void> {
  const next = engine(name, testDb.url);
  await next.startWorker();
  for (const id of ids) {
    const done = await next.waitFor(id, { timeoutMs: 30_000 });
    expect(done.status, `${id}: ${JSON.stringify(done.error)}`).toBe('succeeded');
  }
  expect(ledgerProblems(ids)).toEqual([]);
  await next.stop();
}

it('returns while a commit waits on a row lock, naming the runs it gave up; another worker finishes them', async () => {
  const { lines, logger } = recordingLogger();
  const a = engine('lock-a', testDb.url, logger);
  const ids = await startGated(a, 3);
  const locker = await openDatabase({ url: testDb.url, maxConnections: 1 });
  try {
    // One message holds the lock for 60 s: the steps' ends cannot be committed meanwhile.
    const held = locker.script([`select id from rmapp_runs for update`, `select pg_sleep(60)`]).catch(() => null);
    await until(
      async () =>
        (
          await admin.query(
            `select 1 from pg_stat_activity where query like '%pg_sleep(60)%' and state = 'active' and pid <> pg_backend_pid()`,
          )
        ).length > 0,
      10_000,
      'the lock to be held',
    );
    gate.open();
    await until(
      async () =>
        (await admin.query(`select 1 from pg_stat_activity where wait_event_type = 'Lock' and application_name = 'rmapp'`)).length > 0,
      10_000,
      'a commit waiting on the lock',
    );
    expect(await stopsWithin30s(a), 'engine.stop() returned while its commit waited on a lock').toBe(true);
    const gaveUp = lines.find((l) => l.message.includes('gave up its stop'));
    expect(gaveUp?.level, `the stop's report; logged: ${JSON.stringify(lines)}`).toBe('error');
    expect(gaveUp?.message).toMatch(/3 run\(s\) still held/);
    await admin.query(
      `select pg_terminate_backend(pid) from pg_stat_activity where query like '%pg_sleep(60)%' and pid <> pg_backend_pid()`,
    );
    await held;
  } finally {
    await locker.close();
  }
  await resumedElsewhere(ids, 'lock-b');
});

it('returns while its claim waits on an ACCESS EXCLUSIVE lock of rmapp_runs', async () => {
  const { lines, logger } = recordingLogger();
  const a = engine('table-lock-a', testDb.url, logger);
  await a.startWorker();
  const locker = await openDatabase({ url: testDb.url, maxConnections: 1 });
  try {
    const held = locker.script([`lock table rmapp_runs in access exclusive mode`, `select pg_sleep(60)`]).catch(() => null);
    await until(
      async () =>
        (
          await admin.query(
            `select 1 from pg_stat_activity where wait_event_type = 'Lock' and application_name = 'rmapp' and query like '%rmapp_runs%'`,
          )
        ).length > 0,
      10_000,
      "the worker's claim waiting on the lock",
    );
    expect(await stopsWithin30s(a), 'engine.stop() returned while its claim waited on a lock').toBe(true);
    expect(lines.map((l) => l.message).join('\n')).toMatch(/gave up its stop after \d+ ms waiting for the database; it held no run/);
    await admin.query(
      `select pg_terminate_backend(pid) from pg_stat_activity where query like '%pg_sleep(60)%' and pid <> pg_backend_pid()`,
    );
    await held;
  } finally {
    await locker.close();
  }
});

it('returns when the server stops answering without closing its connections', async () => {
  const { lines, logger } = recordingLogger();
  const a = engine('frozen-a', proxy.url(new URL(testDb.url).pathname.slice(1)), logger);
  const ids = await startGated(a, 3);
  proxy.freeze();
  gate.open();
  expect(await stopsWithin30s(a), 'engine.stop() returned while the server did not answer').toBe(true);
  expect(lines.find((l) => l.message.includes('gave up its stop'))?.message).toMatch(/3 run\(s\) still held/);
  await resumedElsewhere(ids, 'frozen-b');
});

it('a timer that fires while its run is being given back does not leave the run leased by the stopped worker', async () => {
  // A step still running when the grace ends is aborted before its run is given back
  // (test/stop-unreturned-step.test.ts); what still commits during a release is a timer or a signal.
  for (const e of engines) await e.stop({ graceMs: 0 });
  gate = newGate();
  const timed = setup({}).createMachine({
    id: 'timed',
    initial: 'one',
    // `two` waits less than the eviction's delay: the run stays held there, and only the release frees it.
    states: { one: { after: { 300: 'two' } }, two: { after: { 60_000: 'done' } }, done: { type: 'final' } },
  });
  const real = await openDatabase({ url: testDb.url });
  let delayed = false;
  // The first release waits until the step it raced has committed (the run moved past its version).
  const db: Database = {
    ...real,
    query: async <T>(text: string, params: readonly unknown[] = []) => {
      if (!delayed && /^\s*update rmapp_runs set lease_owner = null/.test(text)) {
        delayed = true;
        gate.open();
        await until(
          async () => {
            const [row] = await admin.query<{ version: number }>('select version from rmapp_runs where id = $1', [params[0]]);
            return (row?.version ?? 0) > Number(params[2]);
          },
          10_000,
          'the step to commit while the release is on its way',
        );
      }
      return real.query<T>(text, params);
    },
  };
  const e = createEngine({
    database: db,
    workflows: [defineWorkflow({ name: 'test.timed', machine: timed, input: z.object({}) })],
    leaseMs: 30_000,
    pollMs: 100,
    evictAfterMs: 120_000,
    workerId: 'release-a',
  });
  engines.push(e);
  try {
    await e.startWorker();
    const id = await e.start('test.timed', {});
    await until(async () => (await e.get(id)).status === 'running', 20_000, 'the run held in its first state');
    await e.stop({ graceMs: 0 });
    expect(delayed, 'the release was sent').toBe(true);
    const [row] = await admin.query<{ lease_owner: string | null; state_value: unknown }>(
      'select lease_owner, state_value from rmapp_runs where id = $1',
      [id],
    );
    expect(row, `run ${id} after the stop (a 30 s lease)`).toEqual({ lease_owner: null, state_value: 'two' });
  } finally {
    await real.close();
  }
});

it('a second stop while the first persists waits for it: nothing is given up and every lease is released', async () => {
  const { lines, logger } = recordingLogger();
  const a = engine('twice-a', testDb.url, logger);
  const ids = await startGated(a, 10);
  gate.open();
  const first = a.stop({ graceMs: 5_000 });
  await new Promise((r) => setTimeout(r, 20));
  await a.stop({ graceMs: 5_000 });
  await first;
  expect(
    lines.filter((l) => l.level === 'error'),
    'errors logged by a healthy stop',
  ).toEqual([]);
  const held = await admin.query<{ id: string }>(`select id from rmapp_runs where id = any($1) and lease_owner is not null`, [ids]);
  expect(held, 'runs still leased after a graceful stop').toEqual([]);
  await resumedElsewhere(ids, 'twice-b');
  const firsts = ids.map((id) => ledger.filter((e) => e.runId === id && e.step === 'first').length);
  expect(firsts, 'executions of the first step (its end was persisted by the stop)').toEqual(ids.map(() => 1));
});

it('the longest grace (2147483647 ms, what --grace-ms takes) waits for the running steps instead of giving the runs up at once', async () => {
  // The stop's bound, grace + max(grace, lease / 2, 1 s), overflowed Node's timers, which fire such a
  // delay after 1 ms: the stop gave up every run in its first milliseconds.
  const { lines, logger } = recordingLogger();
  const a = engine('longest-grace', testDb.url, logger);
  const ids = await startGated(a, 3);
  const stopped = a.stop({ graceMs: 2_147_483_647 });
  await new Promise((r) => setTimeout(r, 300));
  gate.open();
  await stopped;
  expect(
    lines.filter((l) => l.level === 'error').map((l) => l.message),
    'errors logged by a stop with time to spare',
  ).toEqual([]);
  const first = ids.map((id) => ledger.find((e) => e.runId === id && e.step === 'first')?.end !== null);
  expect(first, 'the first step of each run finished during the grace').toEqual(ids.map(() => true));
  const held = await admin.query<{ id: string }>(`select id from rmapp_runs where id = any($1) and lease_owner is not null`, [ids]);
  expect(held, 'runs still leased after a graceful stop').toEqual([]);
  await resumedElsewhere(ids, 'longest-grace-b');
});

/** A server that accepts connections and never answers (a black hole behind a live port). */
async function blackHole(): Promise<{ port: number; server: Server }> {
  const server = createServer(() => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as { port: number }).port, server };
}

it('returns while its LISTEN connection reconnects to a server that never answers', async () => {
  const own = await startFaultProxy();
  try {
    const a = engine('listen-a', own.url(new URL(testDb.url).pathname.slice(1)));
    await a.startWorker();
    own.holdNewConnections();
    // The listening backend dies: the reconnect hangs (the open connections still work).
    await admin.query(
      `select pg_terminate_backend(pid) from pg_stat_activity where query ilike 'LISTEN%' and datname = current_database()`,
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(await stopsWithin30s(a), 'engine.stop() returned while its LISTEN connection hung').toBe(true);
  } finally {
    await own.close();
  }
});

it('a stop while the database is being opened returns, and the start gives up: no worker runs', async () => {
  const hole = await blackHole();
  try {
    const a = engine('opening-a', `postgres://postgres@127.0.0.1:${hole.port}/x`);
    const started = a.startWorker().then(
      () => 'started',
      (err: unknown) => (err as Error).message,
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(await stopsWithin30s(a), 'engine.stop() returned while the database was opening').toBe(true);
    expect(await started, 'what the start threw').toMatch(/stopped while its worker was starting/);
    expect(a.workerOwner, 'a worker left running after the stop').toBeNull();
  } finally {
    hole.server.close();
  }
});

it('a stop during a start whose migration waits for another migrator leaves nothing waiting on the server', async () => {
  const fresh = await createTestDatabase({ empty: true });
  const other = await openDatabase({ url: fresh.url });
  // Another process migrating: the migrations' advisory lock held in an open transaction.
  const holder = await postgres(fresh.url, { max: 1, onnotice: () => {} }).reserve();
  try {
    await holder`begin`;
    await holder`select pg_advisory_xact_lock(${0x726d617070})`;
    const a = engine('migrating-a', fresh.url);
    const started = a.startWorker().then(
      () => 'started',
      (err: unknown) => (err as Error).message,
    );
    const ours = () =>
      other.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity where datname = current_database() and application_name = 'rmapp' and pid <> pg_backend_pid()`,
      );
    await until(
      async () =>
        ((
          await other.query<{ n: number }>(
            `select count(*)::int as n from pg_stat_activity where datname = current_database() and application_name = 'rmapp' and wait_event_type = 'Lock'`,
          )
        )[0]?.n ?? 0) > 0,
      20_000,
      'the start’s migration to wait for the lock',
    );
    expect(await stopsWithin30s(a), 'engine.stop() returned').toBe(true);
    expect(await started).toMatch(/stopped while its worker was starting/);
    // The backend that waited is terminated: it does not keep waiting, holding its connection slot and its
    // place in the lock's queue, to apply the migration once the lock is free, after its process is gone.
    await until(async () => (await ours())[0]?.n === 0, 20_000, 'the stopped start’s backend to be gone');
    await holder`commit`;
    await new Promise((r) => setTimeout(r, 300));
    expect((await other.query<{ t: string | null }>(`select to_regclass('public.rmapp_migrations')::text as t`))[0]?.t).toBeNull();
    // The next start migrates and works.
    const b = engine('migrating-b', fresh.url);
    await b.startWorker();
    await b.stop({ graceMs: 0 });
  } finally {
    holder.release();
    await other.close();
    await fresh.drop();
  }
});

it('a stop racing a start leaves no worker; the engine starts again and runs', async () => {
  const a = engine('race-a', testDb.url);
  for (const wait of [0, 1, 5, 20]) {
    const started = a.startWorker().then(
      () => 'started',
      (err: unknown) => (err as { code?: string }).code ?? String(err),
    );
    await new Promise((r) => setTimeout(r, wait));
    await a.stop({ graceMs: 0 });
    expect(['started', 'ENGINE_STOPPED']).toContain(await started);
    expect(a.workerOwner, `a worker left running after a stop ${wait} ms into its start`).toBeNull();
  }
  gate = newGate();
  gate.open();
  await a.startWorker();
  const id = await a.start('test.stopping', {});
  expect((await a.waitFor(id, { timeoutMs: 20_000 })).status).toBe('succeeded');
});

it('two starts at once make one worker: after a stop no worker claims anything', async () => {
  // No other worker of this file may claim the run below.
  for (const e of engines) await e.stop({ graceMs: 0 });
  gate = newGate();
  gate.open();
  // The caller's own database: the stop does not close it, so a worker it left would go on claiming.
  const own = await openDatabase({ url: testDb.url });
  const a = createEngine({ database: own, workflows: [workflowFor('twice-a')], leaseMs: 1_000, pollMs: 100, workerId: 'twice-a' });
  engines.push(a);
  await Promise.all([a.startWorker(), a.startWorker(), a.startWorker()]);
  await a.stop({ graceMs: 0 });
  const id = await a.start('test.stopping', {});
  // pollMs is 100: a worker left running would have claimed it ten times over.
  await new Promise((r) => setTimeout(r, 1_000));
  const [row] = await admin.query<{ status: string; lease_owner: string | null }>(
    'select status, lease_owner from rmapp_runs where id = $1',
    [id],
  );
  expect(row, `run ${id} taken by a worker the stop left running`).toEqual({ status: 'pending', lease_owner: null });
  await own.close();
});

/** An engine on the caller's own database (a stop does not close it: a worker left over keeps claiming). */
async function ownEngine(name: string): Promise<{ e: Engine; own: Database }> {
  const own = await openDatabase({ url: testDb.url });
  const e = createEngine({ database: own, workflows: [workflowFor(name)], leaseMs: 1_000, pollMs: 100, workerId: name });
  engines.push(e);
  return { e, own };
}

/** Whether a run started now stays pending for a second (pollMs 100): no worker of `own` is left. */
async function nothingClaims(e: Engine): Promise<{ status: string; lease_owner: string | null } | undefined> {
  const id = await e.start('test.stopping', {});
  await new Promise((r) => setTimeout(r, 1_000));
  const [row] = await admin.query<{ status: string; lease_owner: string | null }>(
    'select status, lease_owner from rmapp_runs where id = $1',
    [id],
  );
  await admin.query('delete from rmapp_runs where id = $1', [id]);
  return row;
}

it('a stop in the same tick as a start, or while a restart waits for a first stop, leaves no worker', async () => {
  for (const e of engines) await e.stop({ graceMs: 0 });
  gate = newGate();
  gate.open();
  const { e, own } = await ownEngine('tick-a');
  try {
    const started = e.startWorker().then(
      () => 'started',
      (err: unknown) => (err as { code?: string }).code,
    );
    await e.stop({ graceMs: 0 });
    expect(await started, 'a start the same-tick stop did not abort').toBe('ENGINE_STOPPED');
    expect(await nothingClaims(e), 'a run taken after the same-tick stop').toEqual({ status: 'pending', lease_owner: null });

    // A restart (stop, then start) and a shutdown while the restart waits for the first stop.
    await e.startWorker();
    await e.start('test.stopping', {});
    const first = e.stop({ graceMs: 500 });
    const restart = e.startWorker().then(
      () => 'started',
      (err: unknown) => (err as { code?: string }).code,
    );
    await e.stop({ graceMs: 0 });
    await first;
    expect(await restart, 'a restart the second stop did not abort').toBe('ENGINE_STOPPED');
    expect(e.workerOwner).toBeNull();
    expect(await nothingClaims(e), 'a run taken after the second stop').toEqual({ status: 'pending', lease_owner: null });

    // A start called right after a stop is a new start: it begins once the stop is done.
    const doomed = e.startWorker().catch((err: unknown) => (err as { code?: string }).code);
    const stopped = e.stop({ graceMs: 0 });
    const next = e.startWorker();
    await stopped;
    await next;
    expect(await doomed).toBe('ENGINE_STOPPED');
    expect(e.workerOwner, 'the start called after the stop').not.toBeNull();
    await e.stop({ graceMs: 0 });
  } finally {
    await own.close();
  }
});

it('a start retrying a database that is down gives up with ENGINE_STOPPED when the engine stops', async () => {
  const a = engine('retry-a', `postgres://postgres@127.0.0.1:${await closedPort()}/x`);
  const retries: number[] = [];
  const started = a.startWorker({ retry: { onRetry: (_err, attempt) => retries.push(attempt) } }).then(
    () => 'started',
    (err: unknown) => (err as { code?: string }).code ?? String(err),
  );
  await until(() => retries.length >= 3, 20_000, 'three failed attempts');
  expect(await stopsWithin30s(a), 'engine.stop() returned').toBe(true);
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    started,
    new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still retrying 20 s after the stop'), 20_000))),
  ]);
  clearTimeout(timer);
  expect(outcome, 'the start after a stop during its backoff').toBe('ENGINE_STOPPED');
  expect(a.workerOwner).toBeNull();
});

/** SIGTERM to `worker` after `delayMs`; its exit code, or 'still running' (then killed) after `withinMs`. */
async function exitOnSigterm(
  worker: ReturnType<typeof spawnRmapp>,
  delayMs: number,
  withinMs: number,
): Promise<number | null | 'still running'> {
  await new Promise((r) => setTimeout(r, delayMs));
  worker.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([
    worker.exited,
    new Promise<'still running'>((resolve) => (timer = setTimeout(() => resolve('still running'), withinMs))),
  ]);
  clearTimeout(timer);
  if (code === 'still running') worker.child.kill('SIGKILL');
  return code;
}

it('rmapp worker exits on SIGTERM while its start waits for a server that never answers', async () => {
  const hole = await blackHole();
  try {
    const worker = spawnRmapp(['worker', '--database-url', `postgres://postgres@127.0.0.1:${hole.port}/x`]);
    // The opening is cut at the stop: not waited for until the connect times out (30 s) or the stop's
    // bound forces it (15 s at the default lease), which is what 10 s tells apart.
    expect(await exitOnSigterm(worker, 1_500, 10_000), worker.output()).toBe(0);
    expect(worker.output()).toMatch(/stopped before it started/);
  } finally {
    hole.server.close();
  }
});

it('rmapp worker on PGlite exits on a SIGTERM sent while the store opens (the event loop blocked)', async () => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const failures: string[] = [];
  for (const delayMs of [1_500, 2_500]) {
    const dir = mkdtempSync(join(tmpdir(), 'rmapp-sigterm-'));
    try {
      const worker = spawnRmapp(['worker'], { DATABASE_URL: '', RMAPP_DATA_DIR: join(dir, 'data') });
      const code = await exitOnSigterm(worker, delayMs, 30_000);
      if (code !== 0) failures.push(`SIGTERM ${delayMs} ms after spawn: ${code}; ${worker.output()}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  expect(failures).toEqual([]);
});
