/**
 * An owed cleanup whose lease's take was answered only after that lease had expired (a process starved
 * of CPU, a slow network: its answer waited past the lease) must not start its cleanup: another
 * execution may already hold the lease and run it. Forced here: the take of execution A lands, its
 * answer is held until the database says A's lease expired and execution B — whose lock did not stop
 * it, as after A's LISTEN connection was lost (pending-cancel.ts `holdCleanup`) — took the lease and
 * started the cleanup. Before the fix A ran the cleanup beside B, B's lease valid all along; seen
 * under load in test/a4-owed-sweep-many-workers.test.ts (a 500 ms lease's cleanup started 51 ms after
 * its lease had expired).
 */
import { expect, it } from 'vitest';
import type { WorkflowDefinition } from '../src/index.ts';
import { silentLogger } from '../src/persistence/logger.ts';
import { CLEANUP_OWED } from '../src/persistence/run-admin.ts';
import { getRun } from '../src/persistence/runs.ts';
import { isCleanupOwed } from '../src/state_machine/owed-cleanups.ts';
import { runOwedCleanup } from '../src/state_machine/pending-cancel.ts';
import { failingRunFlow, owedCleanupRun, storesOnOneDatabase } from './helpers/failing-run-flow.ts';
import { hookedStore } from './helpers/hooked-store.ts';
import { until } from './helpers/processes.ts';

const { open, track } = storesOnOneDatabase();

it('a cleanup whose lease was taken but answered after it expired is not run beside the next holder', async () => {
  const db = await open();
  const log: string[] = [];
  const running = new Set<string>();
  let bStarted!: () => void;
  const bStart = new Promise<void>((resolve) => (bStarted = resolve));
  let letBFinish!: () => void;
  const bFinish = new Promise<void>((resolve) => (letBFinish = resolve));
  const flowOf = (who: 'A' | 'B') =>
    failingRunFlow({
      name: 'h1.late-take',
      cleanup: async () => {
        log.push(`${who} started${running.size > 0 ? ` while ${[...running].join(', ')} ran` : ''}`);
        running.add(who);
        if (who === 'B') {
          bStarted();
          await bFinish;
        }
        running.delete(who);
      },
    });

  const runId = await owedCleanupRun(db, track, flowOf('A'));
  const run = await getRun(db, runId);
  const target = (who: 'A' | 'B') => ({
    runId,
    reason: 'cancelled',
    context: { key: '1' },
    definition: flowOf(who) as unknown as WorkflowDefinition,
  });

  const dbB = await open();
  let bRan: Promise<boolean> | undefined;
  // A's take is applied; its answer comes back only once the lease it took expired and B runs the cleanup.
  const dbA = hookedStore(
    await open(),
    () => {},
    async (sql) => {
      if (!sql.includes('set lease_owner = $3, lease_expires_at = now()')) return;
      await until(
        async () =>
          (await db.query<{ over: boolean }>(`select lease_expires_at <= now() as over from rmapp_runs where id = $1`, [runId]))[0]
            ?.over === true,
        30_000,
        "A's lease to expire",
      );
      bRan = runOwedCleanup(dbB, target('B'), { worker: 'B', logger: silentLogger, leaseMs: 60_000 });
      await bStart;
    },
  );

  const aRan = await runOwedCleanup(dbA, target('A'), { worker: 'A', logger: silentLogger, leaseMs: 200 });
  letBFinish();
  expect(await bRan).toBe(true);
  expect(
    log.filter((l) => l.includes('while')),
    `executions started beside another: ${JSON.stringify(log)}`,
  ).toEqual([]);
  expect(aRan, 'A, its lease expired before it knew it held it, says it ran the cleanup').toBe(false);
  expect(log).toEqual(['B started']);
  const after = await getRun(db, runId);
  expect(after && isCleanupOwed(after), 'the mark is cleared by B, which ran it').toBe(false);
  expect(run?.statusMessage).toBe(CLEANUP_OWED);
}, 60_000);
