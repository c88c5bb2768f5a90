/**
 * Cancelling a run no worker has taken yet (`pending`) when the answer to the cancel statement is lost:
 * the run's history says why it ended, once. The `run.cancelled` entry was a second statement after the
 * cancellation's: a lost answer (the connection broken after Postgres committed) made `cancel` throw
 * before it, and a cancel called again found the run finished — cancelled, with no entry saying so. Now
 * the entry is written by the cancellation's own statement, which is sent again while its outcome is
 * unknown and recognises its own effect. Real Postgres and PGlite, in process (a store whose statement
 * is applied and its answer then lost, or lost before it is sent), and a real `rmapp runs cancel`
 * process with the lost answer injected by `RMAPP_DB_FAULT=cancel:unanswered:1:1`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, type Database, type Engine, type HistoryEvent } from '../src/index.ts';
import { createTestDatabase, openTestStore } from './helpers/postgres.ts';
import { hookedStore } from './helpers/hooked-store.ts';
import { runRmapp } from './helpers/processes.ts';

const idle = defineWorkflow({
  name: 'pending.cancel',
  version: '1',
  input: z.object({}).passthrough(),
  machine: setup({}).createMachine({ id: 'idle', initial: 'waiting', states: { waiting: {} } }),
});

/** The in-place cancellation of a pending run (persistence/run-admin.ts `cancelPendingRun`). */
const isPendingCancel = (sql: string) => sql.includes("set status = 'cancelled'") && sql.includes("status = 'pending'");
const lostReply = () => Object.assign(new Error('connection reset after COMMIT (test)'), { code: 'ECONNRESET' });
const cancelledEntries = (history: HistoryEvent[]) => history.filter((h) => h.type === 'run.cancelled');

describe.each(['postgres', 'pglite'] as const)('a pending run cancelled, its answer lost (%s)', (kind) => {
  const engines: Engine[] = [];
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    for (const e of engines.splice(0).reverse()) await e.stop().catch(() => {});
    await close?.();
    close = undefined;
  });

  for (const where of ['after it was applied', 'before it was sent'] as const) {
    it(`the cancel whose statement's answer is lost ${where} ends the run with one run.cancelled entry`, async () => {
      const store = await openTestStore(kind);
      close = store.close;
      let sendings = 0;
      let lose = true;
      const db: Database = hookedStore(
        store.db,
        (sql) => {
          if (!isPendingCancel(sql)) return;
          sendings += 1;
          if (where === 'before it was sent' && lose) {
            lose = false;
            throw lostReply();
          }
        },
        (sql) => {
          if (where === 'after it was applied' && lose && isPendingCancel(sql)) {
            lose = false;
            throw lostReply();
          }
        },
      );
      // No worker: the run stays pending.
      const engine = createEngine({ database: db, workflows: [idle], pollMs: 50 });
      engines.push(engine);
      const id = await engine.start(idle, {});
      expect((await engine.get(id)).status).toBe('pending');

      const result = await engine.cancel(id, 'not wanted').catch((err: Error) => err);
      // Called again, as a client that saw an error would: nothing more may be written.
      const again = await engine.cancel(id, 'not wanted').catch((err: Error) => err);
      const run = await engine.get(id);
      expect(run.status).toBe('cancelled');
      expect(run.error).toMatchObject({ code: 'CANCELLED', message: 'not wanted' });
      const entries = cancelledEntries(await engine.history(id));
      expect(
        entries.map((h) => h.data),
        'the history says why the run ended, once',
      ).toEqual([{ reason: 'not wanted' }]);
      expect(result, 'the cancel tells what happened').toMatchObject({ cancelled: true, status: 'cancelled' });
      expect(sendings, 'the statement was sent again, once').toBe(2);
      expect(again).toMatchObject({ cancelled: false, status: 'cancelled' });
    });
  }
});

it('rmapp runs cancel of a pending run whose answer is lost (RMAPP_DB_FAULT=cancel:unanswered:1:1) records run.cancelled once', async () => {
  const testDb = await createTestDatabase();
  const engine = createEngine({ database: testDb.url, workflows: [idle], pollMs: 50 });
  try {
    const id = await engine.start(idle, {});
    const out = await runRmapp(['runs', 'cancel', id, '--reason', 'from the CLI'], {
      DATABASE_URL: testDb.url,
      RMAPP_DB_FAULT: 'cancel:unanswered:1:1',
    });
    expect(out.code, `${out.stdout}${out.stderr}`).toBe(0);
    expect(out.stdout).toMatch(/cancelled before it started/);
    expect(out.stdout + out.stderr, 'the fault was injected').toMatch(/injected lost reply/);
    const run = await engine.get(id);
    expect(run.status).toBe('cancelled');
    expect(cancelledEntries(await engine.history(id)).map((h) => h.data)).toEqual([{ reason: 'from the CLI' }]);
  } finally {
    await engine.stop();
    await testDb.drop();
  }
}, 60_000);
