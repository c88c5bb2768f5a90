/**
 * A queued retried run cancelled in place by a call that never learnt the outcome (every answer lost:
 * `CANCEL_OUTCOME_UNKNOWN`) is left cancelled with its cleanup owed (persistence/run-admin.ts
 * `CLEANUP_OWED`). Only another `cancel` of that run used to run it. The caller that got the error may
 * never call again — a process killed at that point, the GitHub service's `@rmapp cancel` handler
 * during a deploy, a script that gave up — and the run shows `cancelled`: nothing else ran the cleanup,
 * while workers that register the definition kept running. Now a worker's sweep of owed cleanups
 * (src/state_machine/owed-cleanups.ts) runs it, once. Cleanups are counted in a ledger file outside the
 * engine. More attacks on the sweep: test/owed-cleanup-sweep.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Database, type Engine } from '../src/index.ts';
import { CLEANUP_OWED } from '../src/persistence/run-admin.ts';
import { failingKeys, queuedCleanup } from './fixtures/h2-queued-cleanup.ts';
import { useTestDatabase } from './helpers/postgres.ts';
import { until } from './helpers/processes.ts';
import { readJsonLines } from './helpers/ledger.ts';

const store = useTestDatabase();
const dir = mkdtempSync(join(tmpdir(), 'h9-owed-'));
const ledger = join(dir, 'cleanups.jsonl');
const engines: Engine[] = [];
let savedLedger: string | undefined;

beforeAll(() => {
  savedLedger = process.env.H2_CLEANUP_LEDGER;
  process.env.H2_CLEANUP_LEDGER = ledger;
});
afterAll(async () => {
  for (const e of engines) await e.stop().catch(() => {});
  if (savedLedger === undefined) delete process.env.H2_CLEANUP_LEDGER;
  else process.env.H2_CLEANUP_LEDGER = savedLedger;
  rmSync(dir, { recursive: true, force: true });
});

function cleanupsOf(runId: string): number {
  return readJsonLines<{ runId: string }>(ledger).filter((c) => c.runId === runId).length;
}

/** `db` whose in-place cancellations are applied and their answers lost (a connection broken during COMMIT). */
function answersLost(db: Database): Database {
  return {
    ...db,
    query: async (text, params, options) => {
      const rows = await db.query(text, params, options);
      if (/set status = 'cancelled'/.test(text)) throw Object.assign(new Error('connection lost during COMMIT'), { code: 'ECONNRESET' });
      return rows as never;
    },
  };
}

function engine(db: Database): Engine {
  const e = createEngine({ database: db, workflows: [queuedCleanup], pollMs: 200 });
  engines.push(e);
  return e;
}

describe('a cleanup owed by a cancellation whose every answer was lost', () => {
  it('is run by the workers without another cancel', async () => {
    const key = 'h9-unattended';
    failingKeys.add(key);
    const worker = engine(store.db);
    await worker.startWorker();
    const runId = await worker.start(queuedCleanup, { key });
    await until(async () => (await worker.get(runId)).status === 'failed', 30_000, 'the run failed');
    await worker.stop();
    failingKeys.delete(key);
    // Retried into its key's queue (it ran: its snapshot is kept), and cancelled there; no answer comes.
    const client = engine(store.db);
    await client.retry(runId);
    expect((await client.get(runId)).status).toBe('pending');
    const lossy = engine(answersLost(store.db));
    await expect(lossy.cancel(runId, 'stop it')).rejects.toMatchObject({ code: 'CANCEL_OUTCOME_UNKNOWN' });
    const [row] = await store.db.query<{ status: string; status_message: string | null }>(
      'select status, status_message from rmapp_runs where id = $1',
      [runId],
    );
    expect(row).toEqual({ status: 'cancelled', status_message: CLEANUP_OWED });
    expect(cleanupsOf(runId)).toBe(0);
    // The caller never calls again. Workers that register the definition run on.
    const next = engine(store.db);
    await next.startWorker();
    await until(() => cleanupsOf(runId) > 0, 30_000, 'the owed cleanup run by a worker').catch(() => {});
    expect(cleanupsOf(runId), `cleanups of run ${runId} cancelled with its cleanup owed, no cancel called again`).toBe(1);
  }, 120_000);
});
