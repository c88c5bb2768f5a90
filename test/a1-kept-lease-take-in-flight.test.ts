/**
 * An engine closing its embedded store (PGlite on disk) while one of its owed cleanups is being leased:
 * the take is on its way when the close keeps the leases of the cleanups running (run-queries.ts
 * `closeOpening`, pending-cancel.ts `keepRunningCleanups`). The take lands, unkept, and the cleanup runs
 * on in this process after the close — and the next process to open the store takes its lease over at
 * once (run-admin.ts `takeOwedCleanup` with `soleHolder`), running the cleanup beside this one while
 * this one's signal has not aborted.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { defineWorkflow, migrate, openDatabase, type Database, type Logger } from '../src/index.ts';
import { CLEANUP_OWED, takeOwedCleanup } from '../src/persistence/run-admin.ts';
import { insertRun } from '../src/persistence/runs.ts';
import type { WorkflowDefinition } from '../src/state_machine/definition.ts';
import { getRun } from '../src/persistence/runs.ts';
import { runCleanupIfOwed } from '../src/state_machine/owed-cleanups.ts';
import { keepRunningCleanups } from '../src/state_machine/pending-cancel.ts';

describe('an embedded store closed while an owed cleanup is being leased', () => {
  it('leaves its lease kept, or runs no cleanup: the next process does not take it over beside a running one', async () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), 'a1-kept-')), 'pgdata');
    const seed = await openDatabase({ dataDir });
    await migrate(seed);
    const runId = 'a1-kept-1';
    await insertRun(seed, { id: runId, workflow: 'a1.kept', workflowVersion: '1', input: {} });
    await seed.query(
      `update rmapp_runs set status = 'cancelled', status_message = $2, snapshot = '{"context":{}}'::jsonb,
         error = '{"message":"cancelled"}'::jsonb, finished_at = now() where id = $1`,
      [runId, CLEANUP_OWED],
    );
    await seed.close();

    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const seen = { started: false };
    let signalOf: AbortSignal | undefined;
    const definition = defineWorkflow({
      name: 'a1.kept',
      version: '1',
      input: z.object({}),
      cleanup: async ({ signal }) => {
        seen.started = true;
        signalOf = signal;
        await released;
      },
      machine: setup({}).createMachine({ id: 'a1Kept', initial: 'done', states: { done: { type: 'final' } } }),
    });

    const db = await openDatabase({ dataDir });
    let closing: Promise<void> | undefined;
    // The engine's close (run-queries.ts `closeOpening`) begins while the take is on its way.
    const closeAsTheEngineDoes = async () => {
      await keepRunningCleanups(db).catch(() => {});
      await db.close();
    };
    const hooked: Database = Object.assign(Object.create(null) as Database, db, {
      query: <T>(text: string, params?: readonly unknown[]) => {
        const answer = db.query<T>(text, params);
        if (!closing && text.includes('set lease_owner = $3')) closing = closeAsTheEngineDoes();
        return answer;
      },
    });
    const logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} } as unknown as Logger;
    const outcome = runCleanupIfOwed(
      hooked,
      { id: runId, workflow: 'a1.kept', workflowVersion: '1' },
      () => definition as unknown as WorkflowDefinition,
      {
        worker: 'a1-engine',
        logger,
        leaseMs: 30_000,
      },
    ).catch((err: unknown) => err);
    while (!closing) await sleep(5);
    await closing;
    await sleep(50);

    // The next process to open the store (this process's in-memory holds aside: another process has none).
    const next = await openDatabase({ dataDir });
    const owedAtNext = (await getRun(next, runId))?.statusMessage === CLEANUP_OWED;
    const takenByNext = await takeOwedCleanup(next, runId, 'next-process:cleanup:00000000', 30_000, next.soleHolder === true);
    const runningUnabortedHere = seen.started && signalOf?.aborted === false;
    release();
    await outcome;
    await next.close();
    // The cleanup is still owed for the next process; it takes the lease over at once only if this process
    // runs no cleanup under it (before the fix: taken at once while this one ran on, its signal unaborted).
    expect(owedAtNext).toBe(true);
    expect({ takenByNext, runningUnabortedHere }).not.toEqual({ takenByNext: true, runningUnabortedHere: true });
  });
});
