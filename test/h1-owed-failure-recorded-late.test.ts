/**
 * An owed cleanup that threw within its lease counts as run (pending-cancel.ts `runOwedCleanup`) even
 * when recording its failure (`cleanup.failed`) takes past the lease: nobody took the lease meanwhile,
 * so its mark is cleared under it, and the cleanup is not run again. Forced here: the lease's renewals
 * and the failure's record are held until the database says the lease expired. Before the fix the
 * lease's fence, still armed while the failure was recorded, aborted the finished cleanup's signal,
 * the mark was left and the next execution ran the cleanup a second time — seen under load in
 * test/a4-owed-sweep-many-workers.test.ts, for every fifth cleanup (the ones that throw).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { expect, it } from 'vitest';
import type { WorkflowDefinition } from '../src/index.ts';
import { silentLogger } from '../src/persistence/logger.ts';
import { getRun } from '../src/persistence/runs.ts';
import { runCleanupIfOwed } from '../src/state_machine/owed-cleanups.ts';
import { runOwedCleanup } from '../src/state_machine/pending-cancel.ts';
import { failingRunFlow, owedCleanupRun, storesOnOneDatabase } from './helpers/failing-run-flow.ts';
import { hookedStore } from './helpers/hooked-store.ts';
import { until } from './helpers/processes.ts';

const { open, track } = storesOnOneDatabase();

it('a cleanup that threw within its lease is not run again because its failure was recorded late', async () => {
  const db = await open();
  const ran: string[] = [];
  const flowOf = (who: string) =>
    failingRunFlow({
      name: 'h1.failure-late',
      cleanup: async () => {
        ran.push(who);
        throw new Error('the cleanup is broken');
      },
    });
  const runId = await owedCleanupRun(db, track, flowOf('runner'));

  let letRenewalsGo!: () => void;
  const renewalsHeld = new Promise<void>((resolve) => (letRenewalsGo = resolve));
  const expired = () =>
    until(
      async () =>
        (await db.query<{ over: boolean }>(`select lease_expires_at <= now() as over from rmapp_runs where id = $1`, [runId]))[0]?.over ===
        true,
      30_000,
      'the lease to expire',
    );
  const dbA = hookedStore(await open(), async (sql, params) => {
    if (sql.includes('greatest(lease_expires_at')) await renewalsHeld;
    if (sql.includes('insert into rmapp_run_history') && JSON.stringify(params).includes('cleanup.failed')) {
      await expired();
      // The lease's fence was due before this timer: any timer of the cleanup's has run by now.
      await sleep(1);
    }
  });
  const target = { runId, reason: 'cancelled', context: { key: '1' }, definition: flowOf('A') as unknown as WorkflowDefinition };
  // Long enough that its take is answered within four fifths of it on a loaded machine: taken later, the
  // cleanup would not start at all (test/h1-owed-take-answered-late.test.ts).
  const aRan = await runOwedCleanup(dbA, target, { worker: 'A', logger: silentLogger, leaseMs: 2_000 });
  letRenewalsGo();

  const next = await runCleanupIfOwed(
    db,
    { id: runId, workflow: 'h1.failure-late', workflowVersion: '1' },
    () => flowOf('B') as unknown as WorkflowDefinition,
    {
      worker: 'B',
      logger: silentLogger,
    },
  );
  expect(ran, 'executions of the cleanup (A threw within its lease, B is the next execution)').toEqual(['A']);
  expect(aRan, 'the cleanup that threw within its lease counts as run').toBe(true);
  expect(next, 'the next execution finds the cleanup owed no more').toBe('not-owed');
  const history = await db.query<{ log: string }>(`select log::text as log from rmapp_run_history where run_id = $1`, [runId]);
  expect(history.filter((h) => h.log.includes('cleanup.failed'))).toHaveLength(1);
  expect((await getRun(db, runId))?.statusMessage ?? null).toBeNull();
}, 60_000);
