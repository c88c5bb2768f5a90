/**
 * Owed cleanups (persistence/run-admin.ts `CLEANUP_OWED`) after a review, on real Postgres:
 * - `rmapp versions check` (a real CLI process) reports, and exits 1 for, the cleanups owed by cancelled
 *   runs of a version the deploy drops: no worker would run them, and retention keeps their runs;
 * - a cleanup `engine.cancel` runs is leased under its worker's owner (`<owner>:cleanup:<8 hex>`), which a
 *   restart under its `--worker-id` takes back (previous-incarnations.ts);
 * - `forgetWorkerProcesses` keeps the record of an owner holding only a live cleanup lease;
 * - a cancelled run shows no lease owner while its cleanup runs (`engine.get`, the HTTP API);
 * - a renewal of a cleanup's lease never moves its expiry back;
 * - the cleanup's `signal` aborts when a renewal finds its lease taken, or when no renewal held it for
 *   most of a lease (its row locked by another transaction: every renewal waits); the cleanup then
 *   stays owed.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, openDatabase, type CleanupContext, type Database, type Engine } from '../src/index.ts';
import { CLEANUP_OWED, expireOwedCleanupLeases, renewOwedCleanup, takeOwedCleanup } from '../src/persistence/run-admin.ts';
import { forgetWorkerProcesses, previousOwners, recordWorkerProcess } from '../src/persistence/worker-processes.ts';
import { thisProcess } from '../src/persistence/process-identity.ts';
import { startApiServer } from './helpers/api-server.ts';
import { fixtureModule } from './helpers/fixture-bundles.ts';
import { rawTransaction, useTestDatabase } from './helpers/postgres.ts';
import { killAll, ROOT, runRmapp, until } from './helpers/processes.ts';
import { versioned } from './fixtures/versioned-workflows.ts';

const store = useTestDatabase();
const closers: (() => Promise<unknown>)[] = [];
/** Lets go of a held cleanup (heldCleanup) before the engines stop, a test failed or not. */
let releaseHeld: () => void = () => {};
afterEach(async () => {
  releaseHeld();
  for (const close of closers.splice(0).reverse()) await close().catch(() => {});
});
afterAll(() => killAll());

/** What the cleanup of {@link gated} does, set by each test (default: return at once). */
let cleanupDoes: (ctx: CleanupContext) => Promise<void> = async () => {};

/** A keyed workflow (one run per key at a time) that waits for `go`, with a cleanup the test drives. */
const gated = defineWorkflow({
  name: 'h1.gated',
  version: '1',
  input: z.object({ key: z.string() }),
  concurrency: { limit: 1, key: (i) => i.key },
  cleanup: (ctx) => cleanupDoes(ctx),
  machine: setup({ types: {} as { input: { key: string }; context: { key: string } } }).createMachine({
    id: 'h1Gated',
    context: ({ input }) => input,
    initial: 'waiting',
    states: { waiting: { on: { go: 'done' } }, done: { type: 'final' } },
  }),
});

async function rowOf(id: string, db: Database = store.db) {
  const [row] = await db.query<{ lease_owner: string | null; status_message: string | null; status: string }>(
    'select lease_owner, status_message, status from rmapp_runs where id = $1',
    [id],
  );
  return row;
}

/**
 * An engine (worker id `h1-w`, chosen as `--worker-id` is) whose worker runs run A of key `key`, waiting;
 * and run B of that key queued behind it, given A's snapshot as a retried run queued for the slot has
 * one: `engine.cancel(B)` cancels it in place and runs its cleanup (pending-cancel.ts `runOwedCleanup`).
 */
async function queuedBehindRunning(key: string, leaseMs: number, db: Database = store.db): Promise<{ engine: Engine; queued: string }> {
  const database = db === store.db ? store.testDb.url : db;
  const engine = createEngine({ database, workflows: [gated], workerId: 'h1-w', leaseMs, pollMs: 50 });
  closers.push(() => engine.stop({ graceMs: 0 }));
  await engine.startWorker();
  const running = await engine.start(gated, { key });
  await until(async () => (await engine.get(running)).state === 'waiting', 30_000, `run ${running} to wait`);
  const queued = await engine.start(gated, { key });
  expect((await engine.get(queued)).status, 'the second run of the key is queued').toBe('pending');
  await db.query('update rmapp_runs set snapshot = (select snapshot from rmapp_runs where id = $2) where id = $1', [queued, running]);
  return { engine, queued };
}

/** A cleanup that waits until `release()` (or its signal aborts), telling what it was given. */
function heldCleanup() {
  let release: () => void = () => {};
  const released = new Promise<void>((r) => (release = r));
  const seen: { ctx?: CleanupContext; aborted?: unknown; started: boolean; calls: number } = { started: false, calls: 0 };
  cleanupDoes = async (ctx) => {
    seen.calls += 1;
    if (seen.calls > 1) return;
    seen.ctx = ctx;
    seen.started = true;
    await Promise.race([
      released,
      new Promise<void>((resolve) =>
        ctx.signal?.addEventListener(
          'abort',
          () => {
            seen.aborted = ctx.signal?.reason;
            resolve();
          },
          { once: true },
        ),
      ),
    ]);
  };
  releaseHeld = () => release();
  return { seen, release: () => release() };
}

describe('rmapp versions check and owed cleanups', () => {
  it('a deploy dropping the version of a cancelled run that still owes its cleanup: the check names it and exits 1', async () => {
    const MODULE = fixtureModule(`${ROOT}test/fixtures/versioned-workflows.ts`);
    const v1 = createEngine({ database: store.testDb.url, workflows: [versioned('v1')] });
    closers.push(() => v1.stop());
    const id = await v1.start('test.versioned', {});
    // As a cancellation whose call never learnt it (or died before the cleanup) leaves a run that ran.
    await store.db.query(
      `update rmapp_runs set status = 'cancelled', status_message = $2, snapshot = '{"status":"active","value":"review","context":{}}'::jsonb,
         finished_at = now() where id = $1`,
      [id, CLEANUP_OWED],
    );
    const version = versioned('v1').version;
    const check = (deploy: string, ...args: string[]) =>
      runRmapp(['--workflows', MODULE, 'versions', 'check', ...args], { DATABASE_URL: store.testDb.url, RMAPP_TEST_DEPLOY: deploy });

    const text = await check('v2');
    expect(text.code, `versions check passed a deploy that drops an owed cleanup's version:\n${text.stdout}${text.stderr}`).toBe(1);
    expect(text.stdout).toContain(`test.versioned@${version}  1 run`);
    expect(text.stdout).toMatch(/keep the definition of version \w+, with its cleanup, in previousVersions/);

    const json = await check('v2', '--json');
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as { stranded: number; owedCleanups: { workflow: string; version: string; runs: number }[] };
    expect(report.stranded).toBe(0);
    expect(report.owedCleanups.map((o) => ({ workflow: o.workflow, version: o.version, runs: o.runs }))).toEqual([
      { workflow: 'test.versioned', version, runs: 1 },
    ]);
  }, 120_000);
});

describe('the lease of a cleanup engine.cancel runs', () => {
  it('is named after its worker’s owner, which a restart under the worker id takes back; the run shows no lease owner', async () => {
    const held = heldCleanup();
    const { engine, queued } = await queuedBehindRunning('owner', 600_000);
    const cancelling = engine.cancel(queued, 'not wanted');
    await until(() => held.seen.started, 30_000, 'the cleanup to start');
    const owner = engine.workerOwner as string;
    const row = await rowOf(queued);
    expect(row?.lease_owner, `the cleanup's lease is not named after the worker's owner ${owner}`).toMatch(
      new RegExp(`^${owner.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:cleanup:[0-9a-f]{8}$`),
    );
    // What a restart under the id reads and does once this process is proven gone (previous-incarnations.ts).
    const previous = await previousOwners(store.db, 'h1-w', []);
    expect(
      previous.map((p) => p.owner),
      'a restart under the id does not see the cleanup as the owner’s',
    ).toContain(owner);

    // A finished run has no lease owner to a user, whatever its row holds while the cleanup runs.
    expect((await engine.get(queued)).leaseOwner, 'engine.get shows the cleanup’s lease owner').toBeNull();
    expect((await engine.list({ status: 'cancelled' })).find((r) => r.id === queued)?.leaseOwner).toBeNull();
    const server = await startApiServer(engine, undefined);
    closers.push(() => server.close());
    const answer = (await (await fetch(`${server.url}/api/runs/${queued}`)).json()) as { run?: { leaseOwner?: unknown; status?: string } };
    expect(answer.run?.status).toBe('cancelled');
    expect(answer.run?.leaseOwner, 'the API shows the cleanup’s lease owner').toBeNull();

    expect(await expireOwedCleanupLeases(store.db, [owner]), 'the restart path takes the cleanup back').toBe(1);
    held.release();
    await cancelling;
  }, 60_000);
});

describe.each(['postgres', 'pglite'] as const)('the cleanup’s signal (%s)', (kind) => {
  it('aborts when a renewal finds the lease taken; the cleanup stays owed', async () => {
    const held = heldCleanup();
    let db = store.db;
    if (kind === 'pglite') {
      const embedded = await openDatabase({ url: '', dataDir: 'memory://' });
      closers.push(() => embedded.close());
      db = embedded;
    }
    const { engine, queued } = await queuedBehindRunning('taken', 600, db);
    const cancelling = engine.cancel(queued, 'not wanted');
    await until(() => held.seen.started, 30_000, 'the cleanup to start');
    expect(held.seen.ctx?.signal, 'the cleanup was given no signal').toBeInstanceOf(AbortSignal);
    // Another execution took the lease (as one does once it expired unrenewed).
    await db.query(
      `update rmapp_runs set lease_owner = 'h1-thief:0123abcd:cleanup:0123abcd', lease_expires_at = now() + interval '1 hour' where id = $1`,
      [queued],
    );
    await until(() => held.seen.aborted !== undefined, 30_000, 'the signal to abort once a renewal found the lease taken');
    expect(held.seen.aborted).toMatchObject({ code: 'CLEANUP_LEASE_LOST' });
    await cancelling;
    expect((await rowOf(queued, db))?.status_message, 'the mark of an aborted cleanup is left for the lease’s holder').toBe(CLEANUP_OWED);
  }, 60_000);

  // A row lock held by another transaction: only on Postgres (PGlite serves one connection).
  if (kind === 'postgres')
    it('aborts when no renewal holds the lease for most of it (every renewal waits on the row’s lock)', async () => {
      const held = heldCleanup();
      const { engine, queued } = await queuedBehindRunning('blocked', 600);
      const cancelling = engine.cancel(queued, 'not wanted');
      await until(() => held.seen.started, 30_000, 'the cleanup to start');
      await rawTransaction(store.testDb.url, async (tx) => {
        await tx.query('select 1 from rmapp_runs where id = $1 for update', [queued]);
        await until(() => held.seen.aborted !== undefined, 30_000, 'the signal to abort while no renewal could be answered');
      });
      expect(held.seen.aborted).toMatchObject({ code: 'CLEANUP_LEASE_LOST' });
      await cancelling;
      // Left owed: the next holder of the lease (this worker's sweep, once it expired) runs it again, whole.
      await until(async () => (await rowOf(queued))?.status_message === null, 30_000, 'the sweep to run the cleanup again');
      expect(held.seen.calls, 'the cleanup ran again after its abort').toBe(2);
    }, 60_000);
});

describe('owed-cleanup leases in persistence', () => {
  /** A cancelled run whose owed cleanup is leased by `owner` until `expires` (an SQL expression). */
  async function leasedCleanup(id: string, owner: string, expires: string): Promise<void> {
    await store.db.query(
      `insert into rmapp_runs (id, workflow, workflow_version, status, input, snapshot, status_message, lease_owner, lease_expires_at)
       values ($1, 'h1.gated', '1', 'cancelled', '{}'::jsonb, '{}'::jsonb, $2, $3, ${expires})`,
      [id, CLEANUP_OWED, owner],
    );
  }

  it('a renewal never moves the lease’s expiry back', async () => {
    await leasedCleanup('h1-renew', 'h1-r:0123abcd:cleanup:0123abcd', 'null');
    expect(await takeOwedCleanup(store.db, 'h1-renew', 'h1-r:0123abcd:cleanup:0123abcd', 3_600_000)).toBe(true);
    expect(await renewOwedCleanup(store.db, 'h1-renew', 'h1-r:0123abcd:cleanup:0123abcd', 1_000)).toBe(true);
    const [row] = await store.db.query<{ left: number }>(
      `select extract(epoch from lease_expires_at - now())::float8 as left from rmapp_runs where id = 'h1-renew'`,
    );
    expect(row?.left, 'the renewal shortened an hour’s lease').toBeGreaterThan(3_000);
  });

  it('forgetWorkerProcesses keeps the record of an earlier owner holding only a live cleanup lease', async () => {
    const live = 'h1-f:aaaaaaaa';
    const done = 'h1-f:bbbbbbbb';
    await recordWorkerProcess(store.db, live, 'h1-f', thisProcess());
    await recordWorkerProcess(store.db, done, 'h1-f', thisProcess());
    await leasedCleanup('h1-forget-live', `${live}:cleanup:0123abcd`, `now() + interval '1 hour'`);
    await leasedCleanup('h1-forget-done', `${done}:cleanup:0123abcd`, `now() - interval '1 second'`);
    await forgetWorkerProcesses(store.db, 'h1-f', ['h1-f:cccccccc']);
    const kept = await store.db.query<{ owner: string }>(
      `select owner from rmapp_worker_processes where worker_id = 'h1-f' order by owner`,
    );
    expect(
      kept.map((r) => r.owner),
      'the record of the owner still running a cleanup was deleted (or an expired one kept)',
    ).toEqual([live]);
  });
});
