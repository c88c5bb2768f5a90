/**
 * A running run cancelled: its worker runs the definition's cleanup, under the run's lease. That worker
 * then loses the database (a silent network loss: its renewals get no answer) while the cleanup runs,
 * and another worker takes the run over once the lease expired and runs the cleanup again. The first
 * worker's cleanup must have been told by then (its `signal`, README, Cancellation), as a step is by
 * self-fencing, or both run it at once. Real processes, real Postgres behind a fault proxy; the cleanup
 * writes each of its steps to a ledger file outside the engine.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { createEngine, type Engine } from '../src/index.ts';
import { cleanupsAfterAll } from './helpers/cleanups.ts';
import { cleanupEntries, stepsAfterTakeOver } from './helpers/cleanup-steps.ts';
import { startFaultProxy } from './helpers/pg-fault-proxy.ts';
import { createTestDatabase, engineDatabaseFor } from './helpers/postgres.ts';
import { killAll, ROOT, spawnRmapp, until, type Spawned } from './helpers/processes.ts';
import { cancelledWhileRunning } from './fixtures/a3-fenced-cleanup.ts';

const cleanups = cleanupsAfterAll();
afterAll(() => killAll());

const FIXTURE = join(ROOT, 'test/fixtures/a3-fenced-cleanup.ts');
const LEASE_MS = 1_500;
/** The lease of the tests whose renewals must all be answered in time. */
const LONG_LEASE_MS = 2_000;

/** Starts a run that stays running, cancels it, and waits until worker `a` runs its cleanup. */
async function cancelWhileRunning(engine: Engine, a: Spawned, ledger: string): Promise<{ runId: string; aPid: number }> {
  const runId = await engine.start(cancelledWhileRunning, { key: 'k' });
  await until(async () => (await engine.get(runId))?.status === 'running', 60_000, `run ${runId} to run\n${a.output()}`);
  await engine.cancel(runId, 'a3: stop it');
  const aPid = a.child.pid as number;
  await until(() => cleanupEntries(ledger).some((e) => e.pid === aPid), 30_000, `worker A to run the cleanup\n${a.output()}`);
  return { runId, aPid };
}

test(
  'a worker cut off from the database while its cancelled run cleans up stops the cleanup before another worker runs it',
  { timeout: 90_000 },
  async () => {
    const testDb = await createTestDatabase();
    cleanups.push(() => testDb.drop());
    const proxy = await startFaultProxy();
    cleanups.push(() => proxy.close());
    const ledger = join(mkdtempSync(join(tmpdir(), 'a3-cut-')), 'ledger.jsonl');
    const env = { A3_LEDGER: ledger, A3_CLEANUP_STEPS: '100000', A3_STEP_MS: '20' };
    const args = ['--workflows', FIXTURE, 'worker', '--lease-ms', String(LEASE_MS), '--no-retention'];
    const a = spawnRmapp([...args, '--worker-id', 'a3-a'], { ...env, DATABASE_URL: proxy.url(testDb.name) });
    const engine = createEngine({ database: testDb.url, workflows: [cancelledWhileRunning] });
    cleanups.push(() => engine.stop());

    const { runId, aPid } = await cancelWhileRunning(engine, a, ledger);

    // Connected, its lease renewed: the cleanup runs on for more than two leases, unstopped.
    const stepsA = () => cleanupEntries(ledger).filter((e) => e.pid === aPid);
    await until(() => stepsA().length > (2 * LEASE_MS) / 20 + 10, 30_000, 'worker A to clean up for two leases');
    expect(
      stepsA().filter((e) => e.phase !== 'step'),
      'worker A stopped its cleanup while its lease was renewed',
    ).toEqual([]);

    proxy.freeze();
    const b = spawnRmapp([...args, '--worker-id', 'a3-b'], { ...env, DATABASE_URL: testDb.url });
    const bPid = b.child.pid as number;
    await until(() => cleanupEntries(ledger).some((e) => e.pid === bPid), 60_000, `worker B to run the cleanup again\n${b.output()}`);
    await new Promise((r) => setTimeout(r, 300));

    // Every step worker A ran after B had started its own: A's lease had expired (B took the run), so A's
    // cleanup should have been stopped before.
    const after = stepsAfterTakeOver(ledger, aPid, bPid);
    expect(
      after.map(
        (e) => `worker A (pid ${aPid}) ran cleanup step ${e.step} after worker B (pid ${bPid}) ran the cleanup of run ${runId} again`,
      ),
    ).toEqual([]);
    expect(stepsA().at(-1)?.phase, "worker A's cleanup signal aborted once its lease went unrenewed").toBe('stopped');
  },
);

test(
  'a worker stopped (SIGSTOP) past its lease while its cancelled run cleans up, resumed after another worker took the run, takes no further step',
  { timeout: 90_000 },
  async () => {
    const testDb = await createTestDatabase();
    cleanups.push(() => testDb.drop());
    const ledger = join(mkdtempSync(join(tmpdir(), 'a3-stop-')), 'ledger.jsonl');
    const env = { A3_LEDGER: ledger, A3_CLEANUP_STEPS: '100000', A3_STEP_MS: '20', DATABASE_URL: testDb.url };
    const args = ['--workflows', FIXTURE, 'worker', '--lease-ms', String(LEASE_MS), '--no-retention'];
    const a = spawnRmapp([...args, '--worker-id', 'a3-a'], env);
    const engine = createEngine({ database: testDb.url, workflows: [cancelledWhileRunning] });
    cleanups.push(() => engine.stop());

    const { runId, aPid } = await cancelWhileRunning(engine, a, ledger);

    a.child.kill('SIGSTOP');
    const b = spawnRmapp([...args, '--worker-id', 'a3-b'], env);
    const bPid = b.child.pid as number;
    await until(() => cleanupEntries(ledger).some((e) => e.pid === bPid), 60_000, `worker B to run the cleanup again\n${b.output()}`);
    const bStartedAt = cleanupEntries(ledger).findIndex((e) => e.pid === bPid);
    a.child.kill('SIGCONT');
    await until(() => cleanupEntries(ledger).some((e, i) => i > bStartedAt && e.pid === aPid), 30_000, 'worker A to go on');
    await new Promise((r) => setTimeout(r, 300));

    // A's lease expired while it was stopped (B took the run): the first look at its signal says so.
    const after = stepsAfterTakeOver(ledger, aPid, bPid);
    expect(
      after.map(
        (e) => `worker A (pid ${aPid}) ran cleanup step ${e.step} after worker B (pid ${bPid}) ran the cleanup of run ${runId} again`,
      ),
    ).toEqual([]);
  },
);

test.each(['pglite', 'postgres'] as const)(
  'a cleanup that runs for several leases on a %s worker whose renewals succeed is not fenced: it ends, and the run is cancelled',
  { timeout: 60_000 },
  async (kind) => {
    const ledger = join(mkdtempSync(join(tmpdir(), 'a3-long-')), 'ledger.jsonl');
    process.env.A3_LEDGER = ledger;
    // Three leases of 20 ms steps. The lease is long enough that a loaded machine's pauses (a renewal's
    // round trip, the event loop) fit in its fence margin: with 500 ms, a stall of 400 ms in CI self-fenced
    // the session — right to, as its lease could have expired — and the cleanup ran again.
    process.env.A3_CLEANUP_STEPS = String((3 * LONG_LEASE_MS) / 20);
    cleanups.push(() => {
      delete process.env.A3_LEDGER;
      delete process.env.A3_CLEANUP_STEPS;
    });
    const dropped: (() => Promise<void>)[] = [];
    cleanups.push(async () => {
      for (const drop of dropped) await drop();
    });
    const database = await engineDatabaseFor(kind, dropped);
    const engine = createEngine({ database, workflows: [cancelledWhileRunning], leaseMs: LONG_LEASE_MS, pollMs: 50 });
    cleanups.push(() => engine.stop());
    await engine.startWorker();
    const runId = await engine.start(cancelledWhileRunning, { key: 'k' });
    await until(async () => (await engine.get(runId))?.status === 'running', 30_000, `run ${runId} to run`);
    await engine.cancel(runId, 'a3: stop it');
    await until(async () => (await engine.get(runId))?.status === 'cancelled', 30_000, `run ${runId} to end cancelled`);
    const phases = cleanupEntries(ledger).map((e) => e.phase);
    expect(
      phases.filter((p) => p !== 'step'),
      `the cleanup of run ${runId} (${phases.length} ledger lines, stopped at step ${cleanupEntries(ledger).find((e) => e.phase === 'stopped')?.step})`,
    ).toEqual(['end']);
  },
);
