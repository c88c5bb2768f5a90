/**
 * An owed cleanup's renewals are sent a third of the lease apart counted from the send its window is
 * trusted from, and a take answered late is renewed before the cleanup starts. Each renewal's answer must
 * come before the fence at 4/5 of the lease from its send; counted from the take's answer, the first
 * renewal of a take answered a little late had under a fifth of the lease for its round trip, and a take
 * answered later still started the cleanup on what was left of its window — in CI (a loaded machine)
 * the cleanup of test/a3-session-cleanup-fence.test.ts was aborted under renewals that all succeeded,
 * and run again.
 */
import { describe, expect, it } from 'vitest';
import type { WorkflowDefinition } from '../src/index.ts';
import { silentLogger } from '../src/persistence/logger.ts';
import { getRun } from '../src/persistence/runs.ts';
import { isCleanupOwed } from '../src/state_machine/owed-cleanups.ts';
import { runOwedCleanup } from '../src/state_machine/pending-cancel.ts';
import { failingRunFlow, owedCleanupRun, storesOnOneDatabase } from './helpers/failing-run-flow.ts';
import { hookedStore } from './helpers/hooked-store.ts';

const { open, track } = storesOnOneDatabase();

const LEASE_MS = 1_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const isTake = (sql: string) => sql.includes('set lease_owner = $3, lease_expires_at = now()');
const isRenewal = (sql: string) => sql.includes('set lease_expires_at = greatest(lease_expires_at');

/** Runs an owed cleanup (a lease and a half of work) on a store whose take and renewals answer late. */
async function cleanupWithSlowAnswers(takeMs: number, renewalMs: number, leaseMs = LEASE_MS) {
  const db = await open();
  const aborts: string[] = [];
  let runs = 0;
  const flow = failingRunFlow({
    name: `owed.window-${takeMs}-${renewalMs}`,
    cleanup: async ({ signal }) => {
      runs += 1;
      if (!signal) throw new Error('the cleanup was given no signal');
      const end = Date.now() + leaseMs * 1.5;
      while (Date.now() < end && !signal.aborted) await sleep(20);
      if (signal.aborted) aborts.push(String((signal.reason as Error)?.message ?? signal.reason));
    },
  });
  const runId = await owedCleanupRun(db, track, flow);
  const slow = hookedStore(
    await open(),
    () => {},
    async (sql) => {
      if (isTake(sql)) await sleep(takeMs);
      else if (isRenewal(sql)) await sleep(renewalMs);
    },
  );
  const ran = await runOwedCleanup(
    slow,
    { runId, reason: 'cancelled', context: { key: '1' }, definition: flow as unknown as WorkflowDefinition },
    { worker: 'A', logger: silentLogger, leaseMs },
  );
  const after = await getRun(db, runId);
  return { aborts, ran, runs, owed: after ? isCleanupOwed(after) : undefined };
}

describe('an owed cleanup on a database that answers its take and renewals slowly', () => {
  it('a take answered just under a third of the lease late, each renewal answered after a fifth of it', async () => {
    // Before: first renewal sent 300 + 333 ms after the take was sent, answered at 833, past the fence at 800.
    const got = await cleanupWithSlowAnswers(300, 200);
    expect(got.aborts, 'the cleanup was aborted though every renewal was answered within its window').toEqual([]);
    expect(got).toMatchObject({ ran: true, runs: 1, owed: false });
  }, 60_000);

  it('a take answered at 70 % of the lease, its renewals answered after 15 % of it', async () => {
    // Before: the cleanup started with 100 ms of its window left and its renewal answered 150 ms after it.
    const got = await cleanupWithSlowAnswers(700, 150);
    expect(got.aborts, 'the cleanup was aborted though every renewal was answered within its window').toEqual([]);
    expect(got).toMatchObject({ ran: true, runs: 1, owed: false });
  }, 60_000);

  it('a take answered half a lease late, renewals answered at once', async () => {
    // Renewed only a third of the lease after the answer, the first renewal was sent at 5/6 of the lease,
    // past the fence at 4/5 — most of the double runs a loaded test/a4-owed-sweep-many-workers.test.ts showed.
    const got = await cleanupWithSlowAnswers(1_500, 0, 3_000);
    expect(got.aborts, 'the cleanup was aborted though its lease was renewable').toEqual([]);
    expect(got).toMatchObject({ ran: true, runs: 1, owed: false });
  }, 60_000);

  it('a take answered at 70 % of the lease whose renewal is answered past its own window does not start the cleanup', async () => {
    const got = await cleanupWithSlowAnswers(700, 900);
    expect(got, 'the cleanup started though its lease could not be renewed in time').toMatchObject({ ran: false, runs: 0, owed: true });
  }, 60_000);
});
