/**
 * An owed cleanup that throws is recorded as `cleanup.failed` and counts as run (state_machine/pending-cancel.ts
 * `runOwedCleanup`). When that record cannot be written — the database went away while the cleanup ran —
 * the call must not throw: the cancellation landed before the cleanup, a cancel rejecting then told its
 * caller it failed, and the execution's lease was neither cleared nor let go. Found by an attacker (A1).
 * On real Postgres and on PGlite; the store's history insert is failed by a hook (test/helpers/hooked-store.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, openDatabase, type Database, type Logger } from '../src/index.ts';
import { CLEANUP_OWED } from '../src/persistence/run-admin.ts';
import { runOwedCleanup } from '../src/state_machine/pending-cancel.ts';
import { failingRunFlow } from './helpers/failing-run-flow.ts';
import { hookedStore } from './helpers/hooked-store.ts';
import { useTestDatabase } from './helpers/postgres.ts';

const store = useTestDatabase();
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => {});
});

let cleanups = 0;
const flow = failingRunFlow({
  name: 'owed.failure-unrecorded',
  cleanup: async () => {
    cleanups++;
    throw new Error('the cleanup failed');
  },
});

/** A logger that keeps the warnings' messages. */
function keptWarnings(): { logger: Logger; warnings: string[] } {
  const warnings: string[] = [];
  const none = () => {};
  const logger = {
    trace: none,
    debug: none,
    info: none,
    warn: (...args: unknown[]) => void warnings.push(String(args.find((a) => typeof a === 'string') ?? '')),
    error: (...args: unknown[]) => void warnings.push(String(args.find((a) => typeof a === 'string') ?? '')),
    fatal: none,
    child: () => logger,
  } as unknown as Logger;
  return { logger, warnings };
}

describe.each(['postgres', 'pglite'] as const)('an owed cleanup whose failure cannot be recorded (%s)', (kind) => {
  it('does not throw: the failure is said in the log, and the lease does not outlive the call', async () => {
    let db: Database = store.db;
    if (kind === 'pglite') {
      db = await openDatabase({ url: '', dataDir: 'memory://' });
      closers.push(() => db.close());
    }
    const engine = createEngine({ database: kind === 'pglite' ? db : store.testDb.url, workflows: [flow] });
    closers.push(() => engine.stop({ graceMs: 0 }));
    const id = await engine.start(flow, { key: 'k' });
    await db.query(
      `update rmapp_runs set status = 'cancelled', status_message = $2, error = '{"message":"not wanted"}'::jsonb,
         snapshot = '{"status":"active","value":"working","context":{"key":"k"}}'::jsonb, finished_at = now() where id = $1`,
      [id, CLEANUP_OWED],
    );
    // The database goes away for history writes once the cleanup ran: the record of its failure is lost.
    const broken = hookedStore(db, (sql) => {
      if (sql.includes('insert into rmapp_run_history'))
        throw Object.assign(new Error('Connection terminated unexpectedly'), { code: '57P01' });
    });
    const { logger, warnings } = keptWarnings();
    const before = cleanups;
    const ran = await runOwedCleanup(
      broken,
      {
        runId: id,
        reason: 'not wanted',
        context: { key: 'k' },
        definition: flow as unknown as Parameters<typeof runOwedCleanup>[1]['definition'],
      },
      { worker: 'owed-failure', logger, leaseMs: 600_000 },
    ).then(
      (value) => ({ value }),
      (err: unknown) => ({ threw: (err as Error).message }),
    );
    expect(ran, 'the owed cleanup threw when its failure could not be recorded').toEqual({ value: true });
    expect(cleanups - before, 'the cleanup ran').toBe(1);
    expect(
      warnings.some((w) => w.includes(id) && w.includes('could not be recorded')),
      `no warning named the unrecorded failure: ${JSON.stringify(warnings)}`,
    ).toBe(true);
    // It ran to its end, failing: counted as run, its mark cleared and its lease with it.
    const [row] = await db.query<{ status_message: string | null; lease_owner: string | null }>(
      'select status_message, lease_owner from rmapp_runs where id = $1',
      [id],
    );
    expect(row, 'the run still owes its cleanup, or its lease outlived the call').toEqual({ status_message: null, lease_owner: null });
  }, 60_000);
});
