/**
 * The lease an owed cleanup runs under (state_machine/pending-cancel.ts `runOwedCleanup`,
 * persistence/run-admin.ts `takeOwedCleanup`), on real Postgres and on PGlite, with a ledger outside the
 * engine (a file each execution of the cleanup appends its start, abort and end to):
 * - a cleanup that returns after its lease passed to another execution (its process paused past it, its
 *   signal not read again) does not clear the mark while that execution runs the cleanup: the holder
 *   clears it once its own run ended (run-admin.ts `clearOwedCleanup`, fenced by the lease's owner);
 * - once its signal aborted, a cleanup's lease is renewed no more, and when the cleanup returns it is let
 *   go if it is still its own (run-admin.ts `releaseOwedCleanup`): the next execution takes it at once; a
 *   lease another execution took is left to it;
 * - on Postgres, the cleanup an engine that runs no worker is running for its `cancel` (its lease named
 *   `<worker id>:cleanup:<8 hex>`, no worker owner) is not taken back by a worker started under the same
 *   `--worker-id` — which does take back at once what an earlier incarnation proven gone held — even with
 *   the engine's cleanup lock gone with its LISTEN connection: the cleanup never runs twice at once.
 */
import { appendFileSync, mkdtempSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, openDatabase, silentLogger, type CleanupContext, type Database, type Engine } from '../src/index.ts';
import { CLEANUP_OWED } from '../src/persistence/run-admin.ts';
import { thisProcess } from '../src/persistence/process-identity.ts';
import { recordWorkerProcess } from '../src/persistence/worker-processes.ts';
import { runOwedCleanup } from '../src/state_machine/pending-cancel.ts';
import { failingRunFlow } from './helpers/failing-run-flow.ts';
import { readJsonLines } from './helpers/ledger.ts';
import { useTestDatabase } from './helpers/postgres.ts';
import { until } from './helpers/processes.ts';

interface Line {
  runId: string;
  who: string;
  phase: 'start' | 'aborted' | 'end';
}

const store = useTestDatabase();
const ledger = join(mkdtempSync(join(tmpdir(), 'h1-lease-fence-')), 'cleanups.jsonl');
const closers: (() => Promise<unknown>)[] = [];
/** The gates of the cleanups a test holds, opened after it (failed or not) so that nothing hangs. */
const gates = new Map<string, () => void>();
afterEach(async () => {
  for (const open of gates.values()) open();
  gates.clear();
  for (const close of closers.splice(0).reverse()) await close().catch(() => {});
});

/** What the cleanup of `who` does between its start and its end in the ledger (set by each test). */
const behaviour = new Map<string, (ctx: CleanupContext) => Promise<void>>();

/** The workflow as the execution `who` runs it: its cleanup writes `who` in the ledger. */
function flowFor(who: string) {
  return failingRunFlow({
    name: 'h1.lease-fence',
    cleanup: async (ctx) => {
      appendFileSync(ledger, `${JSON.stringify({ runId: ctx.runId, who, phase: 'start' })}\n`);
      await (behaviour.get(who) ?? (async () => {}))(ctx);
      appendFileSync(ledger, `${JSON.stringify({ runId: ctx.runId, who, phase: 'end' })}\n`);
    },
  });
}

/** A gate the cleanup of `who` waits at (its signal unread), opened by the returned function. */
function gate(who: string): () => void {
  let open: () => void = () => {};
  const opened = new Promise<void>((r) => (open = r));
  gates.set(who, open);
  behaviour.set(who, () => opened);
  return open;
}

const linesOf = (runId: string) => readJsonLines<Line>(ledger).filter((l) => l.runId === runId);
const started = (runId: string, who: string) => linesOf(runId).some((l) => l.who === who && l.phase === 'start');

/**
 * A run of `engine` (which runs no worker) that ran and was cancelled with its cleanup owed, as a cancel
 * that never learnt its outcome, or died before the cleanup, leaves it.
 */
async function owedRun(engine: Engine, db: Database): Promise<string> {
  const id = await engine.start('h1.lease-fence', { key: 'k' });
  await db.query(
    `update rmapp_runs set status = 'cancelled', status_message = $2, error = '{"message":"not wanted"}'::jsonb,
       snapshot = '{"status":"active","value":"working","context":{"key":"k"}}'::jsonb, finished_at = now() where id = $1`,
    [id, CLEANUP_OWED],
  );
  return id;
}

async function rowOf(db: Database, id: string) {
  const [row] = await db.query<{
    status_message: string | null;
    lease_owner: string | null;
    expired: boolean | null;
    stale: boolean | null;
  }>(
    // `stale`: expired for a second already — two renewal periods at a lease of 1.5 s.
    `select status_message, lease_owner, lease_expires_at <= now() as expired,
       lease_expires_at + interval '1 second' <= now() as stale from rmapp_runs where id = $1`,
    [id],
  );
  return row;
}

/** Runs run `id`'s owed cleanup as another execution (a worker's sweep elsewhere) does, under owner `owner`. */
function otherExecution(db: Database, id: string, who: string, owner: string): Promise<boolean> {
  return runOwedCleanup(
    db,
    {
      runId: id,
      reason: 'not wanted',
      context: { key: 'k' },
      definition: flowFor(who) as unknown as Parameters<typeof runOwedCleanup>[1]['definition'],
    },
    { worker: who, logger: silentLogger, leaseMs: 600_000, leaseOwner: owner },
  );
}

describe.each(['postgres', 'pglite'] as const)('the lease of an owed cleanup (%s)', (kind) => {
  async function engineA(leaseMs: number): Promise<{ engine: Engine; db: Database }> {
    let db = store.db;
    if (kind === 'pglite') {
      db = await openDatabase({ url: '', dataDir: 'memory://' });
      closers.push(() => db.close());
    }
    const engine = createEngine({
      database: kind === 'pglite' ? db : store.testDb.url,
      workflows: [flowFor('A')],
      workerId: `h1l-${kind}`,
      leaseMs,
    });
    closers.push(() => engine.stop({ graceMs: 0 }));
    return { engine, db };
  }

  it('a cleanup that returns after its lease passed to another execution leaves the mark to that execution', async () => {
    // A lease far longer than the test: no renewal and no fence of A's runs before its cleanup returns,
    // as in a process paused past its lease that wakes with its cleanup's own work due first.
    const { engine, db } = await engineA(600_000);
    const id = await owedRun(engine, db);
    const openA = gate('A');
    const cancelling = engine.cancel(id, 'not wanted');
    await until(() => started(id, 'A'), 30_000, 'the cancel to start the cleanup');
    // A's lease runs out while its process is paused; another execution takes it and runs the cleanup.
    await db.query(`update rmapp_runs set lease_expires_at = now() - interval '1 second' where id = $1`, [id]);
    const openB = gate('B');
    const runningB = otherExecution(db, id, 'B', 'h1l-b:0123abcd');
    await until(() => started(id, 'B'), 30_000, 'the other execution to take the lease and start the cleanup');

    // A wakes, its cleanup returns without reading its signal: the cancel answers, and throws nothing.
    openA();
    const answer = await cancelling;
    expect(answer.status).toBe('cancelled');
    const during = await rowOf(db, id);
    expect(during?.status_message, 'the mark was cleared while another execution still ran the cleanup').toBe(CLEANUP_OWED);
    expect(during?.lease_owner, 'the lease of the execution running the cleanup was taken from it').toMatch(
      /^h1l-b:0123abcd:cleanup:[0-9a-f]{8}$/,
    );
    expect((await engine.get(id)).statusMessage, 'a user sees the cleanup as done while it runs').toBe(CLEANUP_OWED);

    openB();
    expect(await runningB, 'the lease holder ran the cleanup').toBe(true);
    expect((await rowOf(db, id))?.status_message, 'the holder clears the mark once its cleanup ran').toBeNull();
    // At least once: the holder's run, under its lease, ended; it cleared the mark after its end.
    expect(linesOf(id).map((l) => `${l.who}:${l.phase}`)).toEqual(['A:start', 'B:start', 'A:end', 'B:end']);
  }, 60_000);

  it('an aborted cleanup renews its lease no more, and lets go of it when it returns: the next execution takes it at once', async () => {
    const leaseMs = 1_500;
    const { engine, db } = await engineA(leaseMs);
    const id = await owedRun(engine, db);
    let open: () => void = () => {};
    const opened = new Promise<void>((r) => (open = r));
    gates.set('A', open);
    behaviour.set('A', async (ctx) => {
      // The process is paused past four fifths of the lease (its event loop blocked): no renewal is sent,
      // no timer runs; the signal, read then, has aborted.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, leaseMs);
      if (ctx.signal?.aborted) appendFileSync(ledger, `${JSON.stringify({ runId: ctx.runId, who: 'A', phase: 'aborted' })}\n`);
      // Its stop takes a while (it winds down what it started).
      await opened;
    });
    const cancelling = engine.cancel(id, 'not wanted');
    await until(() => linesOf(id).some((l) => l.phase === 'aborted'), 30_000, 'the cleanup to see its signal aborted');
    // Renewed no more, the lease runs out and stays so while the aborted cleanup winds down (renewed on
    // every third of the lease, its expiry moved ahead and it never did).
    await until(async () => (await rowOf(db, id))?.stale === true, 15_000, 'the aborted cleanup’s lease to stay expired, unrenewed');
    expect(
      linesOf(id).some((l) => l.phase === 'end'),
      'the cleanup returned early',
    ).toBe(false);

    open();
    await cancelling;
    const after = await rowOf(db, id);
    expect(after?.lease_owner, 'the aborted cleanup kept its lease after it returned').toBeNull();
    expect(after?.status_message, 'an aborted cleanup stays owed').toBe(CLEANUP_OWED);
    // Taken at once (a sweep would find it so): not after the rest of a lease.
    expect(await otherExecution(db, id, 'B', 'h1l-b:0123abcd'), 'the next execution could not take the lease').toBe(true);
    expect((await rowOf(db, id))?.status_message).toBeNull();
    expect(linesOf(id).map((l) => `${l.who}:${l.phase}`)).toEqual(['A:start', 'A:aborted', 'A:end', 'B:start', 'B:end']);
  }, 60_000);

  it('an aborted cleanup whose lease another execution took leaves that lease alone when it returns', async () => {
    const { engine, db } = await engineA(1_500);
    const id = await owedRun(engine, db);
    let open: () => void = () => {};
    const opened = new Promise<void>((r) => (open = r));
    gates.set('A', open);
    behaviour.set('A', async (ctx) => {
      await new Promise<void>((r) => ctx.signal?.addEventListener('abort', () => r(), { once: true }));
      appendFileSync(ledger, `${JSON.stringify({ runId: ctx.runId, who: 'A', phase: 'aborted' })}\n`);
      await opened;
    });
    const cancelling = engine.cancel(id, 'not wanted');
    await until(() => started(id, 'A'), 30_000, 'the cancel to start the cleanup');
    const thief = 'h1l-t:0123abcd:cleanup:0123abcd';
    await db.query(`update rmapp_runs set lease_owner = $2, lease_expires_at = now() + interval '1 hour' where id = $1`, [id, thief]);
    await until(() => linesOf(id).some((l) => l.phase === 'aborted'), 30_000, 'a renewal to find the lease taken');
    open();
    await cancelling;
    const after = await rowOf(db, id);
    expect(after?.lease_owner, 'the returning cleanup let go of a lease it no longer held').toBe(thief);
    expect(after?.expired).toBe(false);
    expect(after?.status_message).toBe(CLEANUP_OWED);
  }, 60_000);
});

describe('a cancel from an engine that runs no worker, and a worker started under the same id (postgres)', () => {
  it('the restart takes back what a gone incarnation held, not the cleanup the live engine runs: never two at once', async () => {
    const workerId = 'h1l-w';
    // The cancelling engine: the operator's worker id, no worker. Its lease is long: taken back, the
    // cleanup would run again at once; left alone, not before this engine's cleanup ended.
    const a = createEngine({ database: store.testDb.url, workflows: [flowFor('A')], workerId, leaseMs: 600_000 });
    closers.push(() => a.stop({ graceMs: 0 }));
    const id = await owedRun(a, store.db);
    const openA = gate('A');
    const cancelling = a.cancel(id, 'not wanted');
    await until(() => started(id, 'A'), 30_000, 'the cancel to start the cleanup');
    expect((await rowOf(store.db, id))?.lease_owner, 'the lease of a worker-less engine’s cleanup').toMatch(
      new RegExp(`^${workerId}:cleanup:[0-9a-f]{8}$`),
    );
    // Its cleanup lock goes with its LISTEN connection (terminated; the engine lives on): only the lease
    // guards the cleanup now (test/a4-listen-lost-cleanup.test.ts).
    const terminated = await store.db.query<{ ok: boolean }>(
      `select pg_terminate_backend(l.pid) as ok from pg_locks l
       where l.locktype = 'advisory' and l.granted and l.classid = ${0x726d776b}::oid
         and l.objid = oid((hashtext('rmapp.cleanup:' || $1::text)::bigint + 4294967296) % 4294967296)`,
      [id],
    );
    expect(terminated.map((r) => r.ok)).toEqual([true]);

    // An earlier incarnation of the worker id, proven gone (its pid exited), that was running another
    // run's owed cleanup: the restart takes that lease back at once (previous-incarnations.ts).
    const dead = spawn(process.execPath, ['-e', '']);
    await new Promise((r) => dead.once('exit', r));
    const gone = `${workerId}:0badc0de`;
    await recordWorkerProcess(store.db, gone, workerId, { ...thisProcess(), pid: dead.pid as number, start: undefined });
    const other = await owedRun(a, store.db);
    await store.db.query(`update rmapp_runs set lease_owner = $2, lease_expires_at = now() + interval '1 hour' where id = $1`, [
      other,
      `${gone}:cleanup:0123abcd`,
    ]);

    const b = createEngine({ database: store.testDb.url, workflows: [flowFor('B')], workerId, leaseMs: 1_000, pollMs: 50 });
    closers.push(() => b.stop({ graceMs: 0 }));
    await b.startWorker();
    await until(
      () => linesOf(other).some((l) => l.who === 'B' && l.phase === 'end'),
      30_000,
      'the restart to take back the gone incarnation’s cleanup and run it',
    );
    // Several more sweeps of B (one a lease) while A's cleanup runs.
    await sleep(3_000);
    expect(
      linesOf(id).map((l) => `${l.who}:${l.phase}`),
      'the worker ran the cleanup the live engine was running',
    ).toEqual(['A:start']);
    expect((await rowOf(store.db, id))?.lease_owner).toMatch(new RegExp(`^${workerId}:cleanup:[0-9a-f]{8}$`));

    openA();
    expect((await cancelling).status).toBe('cancelled');
    await until(async () => (await rowOf(store.db, id))?.status_message === null, 15_000, 'the mark cleared by the engine’s cleanup');
    await sleep(1_500);
    expect(
      linesOf(id).map((l) => `${l.who}:${l.phase}`),
      'the cleanup ran other than once, whole',
    ).toEqual(['A:start', 'A:end']);
  }, 90_000);
});
