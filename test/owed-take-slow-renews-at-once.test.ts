/**
 * An owed cleanup whose lease's take is answered late, but within the lease (a slow pool, a busy
 * process: here half of it), renews its lease at once. Its renewals used to start a third of the lease
 * after the answer, so the first one was sent at 5/6 of the lease, past the fence at 4/5 (measured from
 * before the take was sent): the cleanup was aborted while its lease was valid and ran again under the
 * next holder — most of the double runs a loaded test/a4-owed-sweep-many-workers.test.ts showed.
 */
import { expect, it } from 'vitest';
import type { WorkflowDefinition } from '../src/index.ts';
import { silentLogger } from '../src/persistence/logger.ts';
import { getRun } from '../src/persistence/runs.ts';
import { isCleanupOwed } from '../src/state_machine/owed-cleanups.ts';
import { runOwedCleanup } from '../src/state_machine/pending-cancel.ts';
import { failingRunFlow, owedCleanupRun, storesOnOneDatabase } from './helpers/failing-run-flow.ts';
import { hookedStore } from './helpers/hooked-store.ts';

const { open, track } = storesOnOneDatabase();

/** The lease the execution under test takes: long enough that its renewals' round trips fit in a fifth. */
const LEASE_MS = 3_000;

it('a cleanup whose take was answered half a lease late renews at once and is not aborted', async () => {
  const db = await open();
  const aborts: string[] = [];
  let runs = 0;
  const flow = failingRunFlow({
    name: 'owed.slow-take',
    cleanup: async ({ signal }) => {
      runs += 1;
      if (!signal) throw new Error('the cleanup was given no signal');
      // Runs for a lease and a half, renewing as it goes; a fence tripped meanwhile aborts its signal.
      const end = Date.now() + LEASE_MS * 1.5;
      while (Date.now() < end && !signal.aborted) await new Promise((r) => setTimeout(r, 50));
      if (signal.aborted) aborts.push(String((signal.reason as Error)?.message ?? signal.reason));
    },
  });

  const runId = await owedCleanupRun(db, track, flow);

  // The take lands at once; its answer is held for half the lease.
  const slow = hookedStore(
    await open(),
    () => {},
    async (sql) => {
      if (sql.includes('set lease_owner = $3, lease_expires_at = now()')) await new Promise((r) => setTimeout(r, LEASE_MS / 2));
    },
  );
  const ran = await runOwedCleanup(
    slow,
    { runId, reason: 'cancelled', context: { key: '1' }, definition: flow as unknown as WorkflowDefinition },
    { worker: 'A', logger: silentLogger, leaseMs: LEASE_MS },
  );
  expect(aborts, 'the cleanup was aborted though its lease was renewable').toEqual([]);
  expect(ran, 'runOwedCleanup says it ran the cleanup').toBe(true);
  expect(runs).toBe(1);
  const after = await getRun(db, runId);
  expect(after && isCleanupOwed(after), 'the mark is cleared by the execution that ran it').toBe(false);
}, 60_000);
