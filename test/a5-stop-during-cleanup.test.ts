/**
 * A worker stopped gracefully while the definition's cleanup of a run it cancelled runs: the stop gave
 * the run's lease back at once (a session in `terminating` has no step running, so the grace did not wait
 * for it, and its release found nothing unwritten), and ended the session without aborting the cleanup's
 * signal. Another worker then took the run, took the cancellation from the inbox again and ran the cleanup
 * beside the first process's, whose signal never aborted. Two engines in one process on Postgres; each
 * cleanup step is written to a ledger outside the engine with the engine that ran it and what its signal said.
 */
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { setup } from 'xstate';
import { z } from 'zod';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, defineWorkflow, step, type Engine } from '../src/index.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { readJsonLines } from './helpers/ledger.ts';

interface Entry {
  engine: string;
  phase: 'step' | 'stopped' | 'end';
  step: number;
  aborted: boolean;
  t: number;
}

const waitForAbort = step(
  ({ signal }: { signal: AbortSignal }) =>
    new Promise<never>((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true })),
);

/** The same definition for each engine, its cleanup writing which engine ran each of its steps. */
function definitionFor(engine: string, ledger: string) {
  return defineWorkflow({
    name: 'a5.stop-during-cleanup',
    version: '1',
    input: z.object({ key: z.string() }),
    cleanup: async ({ signal }) => {
      const write = (phase: Entry['phase'], i: number) =>
        appendFileSync(ledger, `${JSON.stringify({ engine, phase, step: i, aborted: signal?.aborted ?? false, t: Date.now() })}\n`);
      for (let i = 0; i < 40; i++) {
        if (signal?.aborted) return write('stopped', i);
        write('step', i);
        await sleep(50);
      }
      write('end', 40);
    },
    machine: setup({ types: {} as { input: { key: string }; context: { key: string } }, actors: { waitForAbort } }).createMachine({
      id: 'a5StopDuringCleanup',
      context: ({ input }) => input,
      initial: 'waiting',
      states: { waiting: { invoke: { src: 'waitForAbort', onDone: 'done' } }, done: { type: 'final' } },
    }),
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe('a worker stopped gracefully while its cancelled run cleans up (Postgres)', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  });

  it('does not hand the run over while the cleanup runs unaborted', async () => {
    const testDb: TestDatabase = await createTestDatabase();
    cleanups.push(() => testDb.drop());
    const dir = mkdtempSync(join(tmpdir(), 'a5-stop-cleanup-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const ledger = join(dir, 'ledger.jsonl');
    const options = { database: testDb.url, leaseMs: 1_000, pollMs: 50 };
    const a: Engine = createEngine({ ...options, workerId: 'a5-a', workflows: [definitionFor('a', ledger)] });
    const b: Engine = createEngine({ ...options, workerId: 'a5-b', workflows: [definitionFor('b', ledger)] });
    cleanups.push(
      () => a.stop({ graceMs: 0 }),
      () => b.stop({ graceMs: 0 }),
    );

    await a.startWorker();
    const runId = await a.start('a5.stop-during-cleanup', { key: 'k' });
    await until('the run to be running on a', async () => ((await a.get(runId)).status === 'running' ? true : undefined));
    await a.cancel(runId, 'stop during cleanup');
    await until('a to start the cleanup', () => (readJsonLines<Entry>(ledger).some((e) => e.engine === 'a') ? true : undefined));
    await a.stop({ graceMs: 100 });
    await b.startWorker();
    await until('the run to end', async () => ((await b.get(runId)).status === 'cancelled' ? true : undefined));
    // a's cleanup returns on its own (40 steps of 50 ms) or when its signal aborts.
    await until('a cleanup to return', () =>
      readJsonLines<Entry>(ledger).some((e) => e.engine === 'a' && e.phase !== 'step') ? true : undefined,
    );

    const entries = readJsonLines<Entry>(ledger);
    const lastOfA = Math.max(...entries.filter((e) => e.engine === 'a' && e.phase === 'step').map((e) => e.t));
    const bStepsBeside = entries.filter((e) => e.engine === 'b' && e.phase === 'step' && e.t <= lastOfA);
    expect(
      bStepsBeside,
      `engine b ran cleanup steps while engine a (stopped) still ran its own, its signal unaborted: ${JSON.stringify(entries)}`,
    ).toEqual([]);
    expect(
      entries.filter((e) => e.engine === 'a' && e.phase === 'stopped'),
      `a's cleanup signal never aborted: ${JSON.stringify(entries)}`,
    ).toHaveLength(1);
    // Stays owed, it ran again, whole, on the worker that took the run.
    expect(
      entries.filter((e) => e.engine === 'b' && e.phase === 'end'),
      `b did not run the cleanup to its end: ${JSON.stringify(entries)}`,
    ).toHaveLength(1);
    expect((await b.get(runId)).status).toBe('cancelled');
  });
});
