/**
 * Adversarial: signals sent while runs are being released into `waiting` (commits.ts, RELEASE_COMMIT
 * for a batch of one, rmapp_commit_runs for a batch of several) must never be lost and must be taken
 * exactly once: every run counts its pings in every state and finishes at the count sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Database, type Engine } from '../src/index.ts';
import { pingedWorkflow } from './helpers/pinged-workflow.ts';
import { openTestStore } from './helpers/postgres.ts';

const PINGS = 6;
const RUNS = 30;

const pinged = pingedWorkflow('adv3.pinged', PINGS, () => Math.random() * 5);

for (const kind of ['postgres', 'pglite'] as const) {
  describe(`signals sent while runs are released into waiting (${kind})`, () => {
    let db: Database;
    let close: (() => Promise<void>) | undefined;
    let engine: Engine;
    const used = { release: 0, batch: 0 };
    beforeAll(async () => {
      ({ db, close } = await openTestStore(kind));
      const raw = db;
      const counted: Database = {
        ...raw,
        query: (text, params) => {
          if (text.includes('lease_owner = null, lease_expires_at = null')) used.release += 1;
          if (text.includes('rmapp_commit_runs(')) used.batch += 1;
          return raw.query(text, params);
        },
      } as Database;
      engine = createEngine({ database: counted, workflows: [pinged], pollMs: 20, leaseMs: 5_000, concurrency: RUNS });
      await engine.startWorker();
    }, 60_000);
    afterAll(async () => {
      await engine?.stop();
      await close?.();
    });

    it('every ping is taken exactly once and every run finishes', async () => {
      for (let round = 0; round < 3; round++) await pingRound();
      // Both forms of the release were exercised: the single-run statement and the batch function.
      // (On PGlite every release of this load went through the batch: one connection, bigger batches.)
      if (kind === 'postgres') expect(used.release, 'RELEASE_COMMIT statements').toBeGreaterThan(0);
      expect(used.batch, 'rmapp_commit_runs batches').toBeGreaterThan(0);
    }, 300_000);

    async function pingRound(): Promise<void> {
      const ids = await Promise.all(Array.from({ length: RUNS }, () => engine.start('adv3.pinged', {})));
      await Promise.all(
        ids.map(async (id) => {
          for (let i = 0; i < PINGS; i++) {
            await new Promise((r) => setTimeout(r, Math.random() * 15));
            await engine.send(id, { type: 'ping' });
          }
        }),
      );
      const until = Date.now() + 60_000;
      for (;;) {
        const runs = await Promise.all(ids.map((id) => engine.get(id)));
        if (runs.every((r) => r.status === 'succeeded')) break;
        if (Date.now() > until) {
          const stuck = runs
            .filter((r) => r.status !== 'succeeded')
            .map((r) => ({ id: r.id, status: r.status, state: r.state, wakeAt: r.wakeAt }));
          const inbox = await db.query(
            `select run_id, id, consumed_at is not null as consumed, outcome from rmapp_run_inbox where run_id = any($1) order by run_id, id`,
            [stuck.map((s) => s.id)],
          );
          throw new Error(`runs that lost a ping (never finished): ${JSON.stringify(stuck)} inbox: ${JSON.stringify(inbox)}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      for (const id of ids) expect((await engine.get(id)).output, `run ${id}`).toEqual({ pings: PINGS });
      const [inbox] = await db.query<{ unconsumed: number; notReceived: number }>(
        `select count(*) filter (where consumed_at is null)::int as "unconsumed",
           count(*) filter (where outcome is distinct from 'received')::int as "notReceived" from rmapp_run_inbox`,
      );
      expect(inbox).toEqual({ unconsumed: 0, notReceived: 0 });
    }
  });
}
