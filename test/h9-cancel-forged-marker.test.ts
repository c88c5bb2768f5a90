/**
 * The owed-cleanup mark of a run cancelled while queued (persistence/run-admin.ts `CLEANUP_OWED`) is
 * only ever written for a run that ran before (its snapshot stored): a run that never ran has nothing
 * to clean up. A cancelled run that never ran whose status message reads as the mark (written by hand,
 * by another tool, a version that wrote it otherwise) must not make `cancel` run the definition's
 * cleanup — with no context, for work that never happened. The cleanups are counted in a ledger file
 * outside the engine.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/index.ts';
import { CLEANUP_OWED } from '../src/persistence/run-admin.ts';
import { queuedCleanup } from './fixtures/h2-queued-cleanup.ts';
import { useTestDatabase } from './helpers/postgres.ts';
import { readJsonLines } from './helpers/ledger.ts';

const store = useTestDatabase();
const dir = mkdtempSync(join(tmpdir(), 'h9-forged-'));
const ledger = join(dir, 'cleanups.jsonl');
let engine: Engine;
let savedLedger: string | undefined;

beforeAll(() => {
  savedLedger = process.env.H2_CLEANUP_LEDGER;
  process.env.H2_CLEANUP_LEDGER = ledger;
  engine = createEngine({ database: store.db, workflows: [queuedCleanup] });
});
afterAll(async () => {
  await engine.stop();
  if (savedLedger === undefined) delete process.env.H2_CLEANUP_LEDGER;
  else process.env.H2_CLEANUP_LEDGER = savedLedger;
  rmSync(dir, { recursive: true, force: true });
});

function cleanups(): { runId: string }[] {
  return readJsonLines<{ runId: string }>(ledger);
}

describe('a cancelled run that never ran, its status message reading as the owed-cleanup mark', () => {
  it('is not cleaned up by a cancel: nothing ran, nothing is owed', async () => {
    const runId = await engine.start(queuedCleanup, { key: 'never-ran' });
    // Cancelled before any worker took it: the run never ran (no snapshot) and no cleanup is owed.
    const first = await engine.cancel(runId, 'first');
    expect(first.cancelled).toBe(true);
    const [row] = await store.db.query<{ snapshot: unknown; status_message: string | null }>(
      'select snapshot, status_message from rmapp_runs where id = $1',
      [runId],
    );
    expect(row?.snapshot ?? null).toBeNull();
    expect(row?.status_message ?? null).toBeNull();
    // The mark's text, written over the message of that run that never ran.
    await store.db.query('update rmapp_runs set status_message = $2 where id = $1', [runId, CLEANUP_OWED]);
    const second = await engine.cancel(runId, 'second');
    const ran = cleanups().filter((c) => c.runId === runId);
    expect(ran, `cleanup of never-ran run ${runId} ran ${ran.length} time(s); cancel said: ${second.message}`).toHaveLength(0);
    expect(second.cancelled, second.message).toBe(false);
  });
});
