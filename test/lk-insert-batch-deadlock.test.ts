/**
 * Two engines' grouped inserts of local starts (state_machine/insert-batcher.ts) that share idempotency
 * keys in opposite orders. A batch inserts its runs in id order, so two batches take their primary-key
 * entries in one order, but their idempotency-key entries in whatever order the keys fall: batch A
 * (ids a1 < a3, keys K1, K2) and batch B (ids b1 < b2, keys K2, K1) each hold one key the other waits
 * for, and Postgres aborts one as a deadlock's victim (40P01). Nothing of the victim was written; its
 * starts must still get their answers (a new run, or the run that took the key first), not the error.
 *
 * The interleaving is made certain with two transactions of the test's own: one holds the parent row
 * the engines' first, lone starts lock (so that the next starts of each engine gather into one batch),
 * the other an uncommitted run holding key KX, which stops batch A after its first row until batch B
 * waits on it.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createEngine, silentLogger } from '../src/index.ts';
import { useHeldLockDatabase, waitingWorkflow } from './helpers/held-locks.ts';

const wait = waitingWorkflow('lk.wait');
const db = useHeldLockDatabase();
const client = () => db.client();

/** Waits until `n` backends of the database wait on a lock (true), or `withinMs` has passed (false). */
async function lockWaiters(watch: pg.Client, n: number, withinMs = Infinity): Promise<boolean> {
  const until = Date.now() + withinMs;
  for (;;) {
    const { rows } = await watch.query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
    );
    if ((rows[0]?.n ?? 0) >= n) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('grouped inserts of two engines with shared idempotency keys', () => {
  it('answers every start when Postgres picks one batch as a deadlock victim', async () => {
    const a = db.track(createEngine({ database: db.url, workflows: [wait], logger: silentLogger, concurrency: 50 }));
    const b = db.track(createEngine({ database: db.url, workflows: [wait], logger: silentLogger, concurrency: 50 }));
    await a.startWorker();
    await b.startWorker();
    const parent = await a.start(wait, {}, { runId: 'lk-parent' });
    const watch = await client();
    const holdParent = await client();
    const holdKey = await client();
    const tag = randomUUID().slice(0, 8);
    const [k1, k2, kx] = [`${tag}-k1`, `${tag}-k2`, `${tag}-kx`];

    await holdKey.query('begin');
    await holdKey.query(
      `insert into rmapp_runs (id, workflow, workflow_version, idempotency_key, status) values ('lk-x', 'lk.other', 'v', $1, 'succeeded')`,
      [kx],
    );
    await holdParent.query('begin');
    await holdParent.query(`select id from rmapp_runs where id = $1 for update`, [parent]);
    // Each engine's lone insert waits on the parent's row: the starts after it gather into one batch.
    // Every start is settled as it is made: one that fails while the test awaits something else (held on
    // KX past the statement timeout under load) is its answer, read below, not an unhandled rejection.
    const lone = Promise.allSettled([
      a.start(wait, {}, { runId: 'lk-a0', parentRunId: parent }),
      b.start(wait, {}, { runId: 'lk-b0', parentRunId: parent }),
    ]);
    await lockWaiters(watch, 2);
    const starts = {
      a1: a.start(wait, {}, { runId: 'lk-a1', idempotencyKey: k1 }),
      a2: a.start(wait, {}, { runId: 'lk-a2', idempotencyKey: kx }),
      a3: a.start(wait, {}, { runId: 'lk-a3', idempotencyKey: k2 }),
      b1: b.start(wait, {}, { runId: 'lk-b1', idempotencyKey: k2 }),
      b2: b.start(wait, {}, { runId: 'lk-b2', idempotencyKey: k1 }),
    };
    const settling = Promise.allSettled(Object.values(starts));
    // Let each engine run its starts' first macrosteps and queue them behind its lone insert.
    await new Promise((r) => setTimeout(r, 2_000));
    await holdParent.query('commit');
    for (const s of await lone) if (s.status === 'rejected') throw s.reason;
    // Batch A waits on KX after inserting K1; batch B inserts K2 and waits on A's K1. On a machine so
    // loaded that the starts had not all gathered behind the lone inserts, the batches form otherwise and
    // no second waiter comes: KX is let go after 3 s, well within the engine's statement timeout (7.5 s)
    // that a start held on it longer would fail with, and the starts must still all be answered.
    await lockWaiters(watch, 2, 3_000);
    await holdKey.query('rollback');

    const settled = await settling;
    const failed = Object.keys(starts)
      .map((name, i) => [name, settled[i]] as const)
      .filter(([, s]) => s?.status === 'rejected')
      .map(
        ([name, s]) =>
          `${name}: ${String((s as PromiseRejectedResult).reason?.code)} ${String((s as PromiseRejectedResult).reason?.message)}`,
      );
    expect(failed, `starts that failed instead of being answered: ${failed.join('; ')}`).toEqual([]);
    const ids = settled.map((s) => (s as PromiseFulfilledResult<string>).value);
    // Each key names one run, whichever batch took it.
    expect(ids[0], 'K1 named two runs').toBe(ids[4]);
    expect(ids[2], 'K2 named two runs').toBe(ids[3]);
  }, 60_000);
});
