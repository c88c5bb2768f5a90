/**
 * A worker's session locks (its chosen worker id's, and its owner's: the liveness other workers read,
 * claims.ts `expirePreviousIncarnation`) live on its LISTEN connection. A partition cuts that connection
 * on the worker's side, but Postgres does not know its client is gone until TCP keepalive tells it —
 * minutes — and the old backend keeps the locks. The worker's taking them again on its new connection
 * used to fail once, log "another process took worker id" (false: the holder was its own old backend)
 * and never try again: the locks, and the liveness signal, were lost for the rest of the process.
 *
 * Here a TCP proxy cuts the worker's side of every connection and keeps the server's side open (a
 * backend stranded as a partition leaves one); Postgres is never restarted. The worker must terminate
 * its own stranded backend, take both locks back, and say nothing of another process. When a
 * connection that really is another process's takes the id meanwhile, it must say so — once, naming the
 * holder — and take the lock back once that process lets go.
 */
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, openDatabase, type Engine } from '../src/index.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { readLedger } from './helpers/ledger.ts';
import { spawnRmapp, TEST_WORKFLOWS, until } from './helpers/processes.ts';
import { sequenceWorkflow } from './helpers/workflows.ts';

const idle = defineWorkflow({
  name: 'h2.idle',
  version: '1',
  input: z.object({}),
  machine: setup({}).createMachine({
    id: 'h2Idle',
    initial: 'waiting',
    states: { waiting: { on: { go: 'done' } }, done: { type: 'final' } },
  }),
});

/** The class of rmapp's session locks (database.ts `LOCK_CLASS`: "rmwk"). */
const LOCK_CLASS = 0x726d776b;

/**
 * A proxy to the machine's Postgres that can cut the client's side of every open connection while
 * keeping the server's side open and silent: the backend lives on, holding its session locks, as one
 * a partition cut off does until the server's keepalive gives up. New connections can be refused.
 */
async function strandingProxy() {
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket; stranded: boolean }>();
  const stranded = new Set<net.Socket>();
  let refusing = false;
  const server = net.createServer((client) => {
    if (refusing) return void client.destroy();
    const upstream = net.connect(5432, '127.0.0.1');
    const pair = { client, upstream, stranded: false };
    pairs.add(pair);
    client.on('data', (d) => pair.stranded || upstream.write(d));
    upstream.on('data', (d) => pair.stranded || client.write(d));
    client.on('error', () => {});
    upstream.on('error', () => {});
    client.on('close', () => {
      pairs.delete(pair);
      if (!pair.stranded) upstream.destroy();
    });
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    /**
     * Every open connection stranded: nothing is forwarded any more, and the server's side stays open
     * when the client's closes. `reset`: the client's side is reset now; `silence`: it is left silent,
     * for the client to give up on (the LISTEN connection's ping).
     */
    strandAll(how: 'reset' | 'silence' = 'reset') {
      for (const pair of [...pairs]) {
        pair.stranded = true;
        stranded.add(pair.upstream);
        if (how === 'reset') pair.client.destroy();
      }
    },
    refuseNew(refuse: boolean) {
      refusing = refuse;
    },
    async close() {
      for (const pair of pairs) pair.client.destroy();
      for (const s of stranded) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let testDb: TestDatabase;
let admin: pg.Client;
const closers: (() => Promise<unknown>)[] = [];

beforeEach(async () => {
  testDb = await createTestDatabase();
  admin = new pg.Client({ connectionString: testDb.url, application_name: 'h2-test-admin' });
  await admin.connect();
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => {});
  await admin.end().catch(() => {});
  await testDb.drop();
});

/** The pids holding rmapp's session locks in the test database, by lock key. */
async function lockHolders(): Promise<Map<number, number>> {
  const { rows } = await admin.query<{ objid: number; pid: number }>(
    `select l.objid::int8 as objid, l.pid from pg_locks l
      where l.locktype = 'advisory' and l.granted and l.objsubid = 2 and l.classid = $1::oid
        and l.database = (select oid from pg_database where datname = current_database())`,
    [LOCK_CLASS],
  );
  return new Map(rows.map((r) => [Number(r.objid), r.pid]));
}

async function alive(pid: number): Promise<boolean> {
  const { rows } = await admin.query('select 1 from pg_stat_activity where pid = $1', [pid]);
  return rows.length > 0;
}

/** An engine whose worker has an id of its own, through `proxyUrl`, logging into `logged`. */
async function startWorker(proxyUrl: string, logged: string[]): Promise<Engine> {
  const log = (level: string) => (obj: unknown, msg?: string) =>
    void logged.push(`${level}: ${typeof obj === 'string' ? obj : (msg ?? '')}`);
  const engine = createEngine({
    database: proxyUrl,
    workflows: [idle],
    workerId: 'h2-lock-worker',
    pollMs: 200,
    leaseMs: 4_000,
    logger: { error: log('error'), warn: log('warn'), info: log('info'), debug: () => {} } as never,
  });
  closers.push(() => engine.stop());
  await engine.startWorker();
  return engine;
}

it.each(['reset', 'silence'] as const)(
  'a worker cut off by a partition (its sockets %s) terminates its own stranded backend and takes its locks back, reporting no other process',
  async (how) => {
    const proxy = await strandingProxy();
    closers.push(() => proxy.close());
    const logged: string[] = [];
    const engine = await startWorker(proxy.url(testDb.name), logged);
    const before = await lockHolders();
    expect(before.size, 'the worker id’s lock and the owner’s lock are held').toBe(2);
    const [oldPid] = new Set(before.values());
    expect(new Set(before.values()).size, 'both on the LISTEN connection').toBe(1);

    proxy.strandAll(how);
    // The worker's new LISTEN connection takes the locks back: its own stranded backend is terminated.
    await until(
      async () => {
        const now = await lockHolders();
        return now.size === 2 && [...now.values()].every((pid) => pid !== oldPid);
      },
      30_000,
      `the worker to hold its locks again on a new backend (holders ${JSON.stringify([...(await lockHolders())])}, old ${oldPid})`,
    );
    expect(await alive(oldPid as number), `the stranded backend ${oldPid} was terminated`).toBe(false);
    expect(
      logged.filter((l) => /another process/.test(l)),
      'no other process was reported',
    ).toEqual([]);

    // And the worker still works through the new connections.
    const id = await engine.start(idle, {});
    await engine.send(id, { type: 'go' });
    expect((await engine.waitFor(id, { timeoutMs: 30_000 })).status).toBe('succeeded');
  },
  60_000,
);

it('another process takes the worker id while the worker is cut off: reported once, naming it; the lock is taken back once it lets go', async () => {
  const proxy = await strandingProxy();
  closers.push(() => proxy.close());
  const logged: string[] = [];
  await startWorker(proxy.url(testDb.name), logged);
  const before = await lockHolders();
  const [oldPid] = new Set(before.values());

  // The partition: the worker cannot connect, and its backend lives on until this "keepalive" ends it.
  proxy.refuseNew(true);
  proxy.strandAll();
  await admin.query('select pg_terminate_backend($1)', [oldPid]);
  await until(async () => !(await alive(oldPid as number)), 10_000, 'the stranded backend to exit');
  // Meanwhile another process takes the worker id (its lock only: the owner's is this process's own).
  const other = new pg.Client({ connectionString: testDb.url, application_name: 'h2-other-process' });
  await other.connect();
  closers.push(() => other.end());
  const { rows } = await other.query<{ held: boolean; pid: number }>(
    `select pg_try_advisory_lock($1, hashtext('rmapp.worker:h2-lock-worker')) as held, pg_backend_pid() as pid`,
    [LOCK_CLASS],
  );
  expect(rows[0]?.held, 'the other process took the id').toBe(true);
  const otherPid = rows[0]?.pid as number;
  proxy.refuseNew(false);

  await until(() => logged.some((l) => /another process took worker id/.test(l)), 30_000, 'the worker to report the other process');
  const reports = logged.filter((l) => /another process took worker id/.test(l));
  expect(reports[0], 'the report names the holder and what the worker does').toMatch(
    new RegExp(`backend ${otherPid}.*h2-other-process.*goes on with the runs it holds.*tries to take the id's lock back`),
  );
  // The owner's lock, no one else's, is held again on the worker's new backend.
  await until(
    async () => [...(await lockHolders()).values()].some((pid) => pid !== otherPid && pid !== oldPid),
    30_000,
    'the owner lock back',
  );

  // The other process lets go: the worker holds its id again, and has reported it once.
  await other.query('select pg_advisory_unlock_all()');
  await until(
    async () => {
      const now = [...(await lockHolders()).values()];
      return now.length === 2 && new Set(now).size === 1 && !now.includes(otherPid);
    },
    30_000,
    `the worker to take its id back (holders ${JSON.stringify([...(await lockHolders())])})`,
  );
  expect(
    logged.filter((l) => /another process took worker id/.test(l)),
    'reported once',
  ).toHaveLength(1);
}, 60_000);

it.each([
  ['once its start took both locks', 2],
  ['as its start takes its first lock', 1],
] as const)(
  'a real worker process cut off by a partition %s holds its locks again, says nothing of another process, and its kill frees the id for a restart',
  async (_when, locksBefore) => {
    const proxy = await strandingProxy();
    closers.push(() => proxy.close());
    const ledger = join(mkdtempSync(join(tmpdir(), 'h2-lock-')), 'ledger.jsonl');
    const worker = () =>
      spawnRmapp(['worker', '--workflows', TEST_WORKFLOWS, '--worker-id', 'h2proc', '--lease-ms', '30000', '--no-retention'], {
        DATABASE_URL: proxy.url(testDb.name),
        RMAPP_TEST_LEDGER: ledger,
      });
    const client = createEngine({ database: testDb.url, workflows: [sequenceWorkflow(6)] });
    closers.push(() => client.stop());
    const first = worker();
    closers.push(async () => {
      first.child.kill('SIGKILL');
      await first.exited;
    });
    // As soon as the locks are granted: the partition may come while the worker still starts.
    // The second case cuts the start off (it is tried again on a new store, which must know the old backend as this process's).
    await until(async () => (await lockHolders()).size >= locksBefore, 30_000, 'the worker to take its locks');
    const [oldPid] = new Set((await lockHolders()).values());

    proxy.strandAll('reset');
    await until(
      async () => {
        const now = [...(await lockHolders()).values()];
        return now.length === 2 && !now.includes(oldPid as number);
      },
      30_000,
      `the worker to hold its locks again`,
    ).catch(async (err: Error) => {
      const { rows } = await admin.query(
        'select pid, application_name, state, left(query, 80) as q, backend_start from pg_stat_activity where datname = current_database()',
      );
      throw new Error(
        `${err.message}: old ${oldPid}, holders ${JSON.stringify([...(await lockHolders())])}, activity ${JSON.stringify(rows)}, output ${first.output()}`,
      );
    });
    expect(await alive(oldPid as number), 'its stranded backend was terminated').toBe(false);
    expect(first.output(), 'no other process was reported').not.toMatch(/another process|another live process/);

    // Its runs still go, and the lock still marks it live: a restart after its kill takes its run at once.
    const id = await client.start('test.sequence', { slowStep: 'step2', slowMs: 60_000 });
    const step2Starts = () => readLedger(ledger).filter((e) => e.run === id && e.key.includes('step2') && e.phase === 'start').length;
    await until(() => step2Starts() === 1, 30_000, `the worker to start the slow step (${first.output()})`);
    first.child.kill('SIGKILL');
    await first.exited;
    await until(async () => (await lockHolders()).size === 0, 30_000, 'the killed worker’s locks to go with its connections');
    const restarted = spawnRmapp(
      ['worker', '--workflows', TEST_WORKFLOWS, '--worker-id', 'h2proc', '--lease-ms', '30000', '--no-retention'],
      {
        DATABASE_URL: testDb.url,
        RMAPP_TEST_LEDGER: ledger,
      },
    );
    closers.push(async () => {
      restarted.child.kill('SIGKILL');
      await restarted.exited;
    });
    // Its lease has 30 s to run: taken back at once, or the test times out waiting.
    await until(() => step2Starts() === 2, 20_000, `the restart to take the run back (${restarted.output()})`);
    expect(restarted.output()).not.toMatch(/in use by another live process/);
  },
  90_000,
);

it('a lock taken afresh while a backend this store lost still holds it (a start cut off and tried again) terminates that backend and is held', async () => {
  const proxy = await strandingProxy();
  closers.push(() => proxy.close());
  const db = await openDatabase({ url: proxy.url(testDb.name) });
  closers.push(() => db.close());
  const unlisten = await db.listen('h2_channel', () => {});
  closers.push(() => unlisten());
  const first = await db.holdLock!('h2.fresh-take', () => {});
  expect(first.held).toBe(true);
  const [oldPid] = (await lockHolders()).values();

  proxy.strandAll('reset');
  // Given up before the connection is made again (the start that took it failed), so nothing takes it back...
  await first.release();
  // ...until the start is tried again, on the new connection.
  let second: { held: boolean } | undefined;
  await until(
    async () => {
      second = await db.holdLock!('h2.fresh-take', () => {}).catch(() => undefined);
      return second !== undefined;
    },
    30_000,
    'the lock to be asked for on a new connection',
  );
  expect(second?.held, `the lock, refused by this store's own stranded backend ${oldPid}`).toBe(true);
  expect(await alive(oldPid as number), 'the stranded backend was terminated').toBe(false);
}, 60_000);
