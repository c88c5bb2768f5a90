/**
 * A prune's batch is scanned, then locked and checked again (retention.ts `pruneRuns`). A failed run
 * the scan found old enough may be retried (`engine.retry`) and fail again before the lock: it is then
 * of the batch's status again, but finished just now, younger than its retention age. The check after
 * the lock must look at its age too, not only at its status and its family.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, step, WorkflowError, type Engine } from '../src/index.ts';
import { pruneRuns } from '../src/persistence/retention.ts';
import { engineDatabaseFor } from './helpers/postgres.ts';
import { hookedStore } from './helpers/hooked-store.ts';

const DAY = 86_400_000;

const failing = step(
  async () => {
    throw new WorkflowError('always fails', { code: 'H8_FAIL', category: 'permanent' });
  },
  { retry: { maxAttempts: 1 } },
);
const machine = setup({ actors: { failing } }).createMachine({
  id: 'h8prune',
  initial: 'work',
  states: { work: { invoke: { src: 'failing', onDone: 'done' } }, done: { type: 'final' } },
});
const wf = defineWorkflow({ name: 'h8.prune-retried', machine, input: z.object({}) });

/** Databases dropped after every engine of the file has stopped. */
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

describe.each(['postgres', 'pglite'] as const)('prune of a failed run retried between scan and lock (%s)', (kind) => {
  let engine: Engine;
  afterAll(async () => engine?.stop());

  it('keeps a run that failed again just now', async () => {
    engine = createEngine({ database: await engineDatabaseFor(kind, cleanups), workflows: [wf], pollMs: 50 });
    await engine.startWorker();
    const id = await engine.start(wf, {});
    expect((await engine.waitFor(id, { timeoutMs: 20_000 })).status).toBe('failed');
    const db = await engine.db();
    // Failed two months ago: past the 30-day age of failed runs.
    await db.query(
      `update rmapp_runs set created_at = now() - interval '60 days', finished_at = now() - interval '60 days' where id = $1`,
      [id],
    );

    let retried = false;
    const hooked = hookedStore(db, async (sql) => {
      // Between the batch's scan and its lock: the operator retries the run; it fails again at once.
      if (!retried && sql.includes('rmapp.prune_batch')) {
        retried = true;
        await engine.retry(id);
        for (let i = 0; i < 400; i++) {
          const rows = await db.query<{ status: string; finished_at: Date | null }>(
            `select status, finished_at from rmapp_runs where id = $1`,
            [id],
          );
          if (rows[0]?.status === 'failed' && rows[0].finished_at && rows[0].finished_at.getTime() > Date.now() - DAY) return;
          await new Promise((r) => setTimeout(r, 25));
        }
        throw new Error('the retried run did not fail again');
      }
    });
    const result = await pruneRuns(hooked, { succeededMs: 7 * DAY, failedMs: 30 * DAY, cancelledMs: 7 * DAY });
    expect(retried).toBe(true);
    const left = await db.query<{ id: string; finished_at: Date }>(`select id, finished_at from rmapp_runs where id = $1`, [id]);
    // The run finished again moments ago: 30 days must pass before a prune may take it.
    expect(
      left.map((r) => r.id),
      `pruned ${result.runs} run(s), the retried run among them though it finished just now`,
    ).toEqual([id]);
  }, 60_000);
});
