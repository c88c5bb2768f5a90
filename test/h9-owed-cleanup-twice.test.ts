/**
 * Two cancels of one queued retried run, close together (a double click in the dashboard, `@rmapp cancel`
 * written twice, a script and an operator): the first cancels the run in place and runs the
 * definition's cleanup; the second, arriving while that cleanup runs, finds the owed-cleanup mark
 * (persistence/run-admin.ts `CLEANUP_OWED`, cleared only once the first cleanup is done) and runs the
 * cleanup again, at the same time as the first. The mark stands for "a caller never learnt the outcome
 * or died", yet also covers "a caller is running it now". Before the mark, the second cancel said the
 * run had already finished. At least once is promised, but not two at once while the first caller
 * lives: the cleanup is held by a session lock (state_machine/pending-cancel.ts `holdCleanup`).
 */
import { setup } from 'xstate';
import { z } from 'zod';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, defineWorkflow, step, type Engine } from '../src/index.ts';
import { useTestDatabase } from './helpers/postgres.ts';
import { until } from './helpers/processes.ts';

const store = useTestDatabase();
const engines: Engine[] = [];
afterAll(async () => {
  for (const e of engines) await e.stop().catch(() => {});
});

let failing = true;
let release: () => void = () => {};
const gate = new Promise<void>((resolve) => (release = resolve));
const started: string[] = [];

const work = step(
  async () => {
    if (failing) throw Object.assign(new Error('the step is broken'), { category: 'permanent' });
    return 1;
  },
  { retry: { maxAttempts: 1 } },
);

const slowCleanup = defineWorkflow({
  name: 'h9.slow-cleanup',
  version: '1',
  input: z.object({ key: z.string() }),
  concurrency: { limit: 1, key: (i) => i.key },
  cleanup: async ({ runId }) => {
    started.push(runId);
    await gate;
  },
  machine: setup({ types: {} as { input: { key: string }; context: { key: string } }, actors: { work } }).createMachine({
    id: 'h9SlowCleanup',
    context: ({ input }) => input,
    initial: 'working',
    states: { working: { invoke: { src: 'work', onDone: 'done' } }, done: { type: 'final' } },
  }),
});

function engine(): Engine {
  const e = createEngine({ database: store.db, workflows: [slowCleanup], pollMs: 200 });
  engines.push(e);
  return e;
}

describe('two cancels of a queued retried run, the second while the first runs the cleanup', () => {
  it('run the cleanup once at a time', async () => {
    const worker = engine();
    await worker.startWorker();
    const runId = await worker.start(slowCleanup, { key: 'h9-twice' });
    await until(async () => (await worker.get(runId)).status === 'failed', 30_000, 'the run failed');
    await worker.stop();
    failing = false;
    const a = engine();
    const b = engine();
    await a.retry(runId);
    expect((await a.get(runId)).status).toBe('pending');
    const first = a.cancel(runId, 'first');
    await until(() => started.length === 1, 30_000, "the first cancel's cleanup started");
    // The second cancel, from another engine (another process), while the first cleanup runs.
    const second = b.cancel(runId, 'second');
    await until(() => started.length > 1, 5_000, 'a second cleanup').catch(() => {});
    const concurrent = started.length;
    release();
    await Promise.all([first, second]);
    expect(concurrent, `cleanups of run ${runId} started while the first still ran; second cancel: ${(await second).message}`).toBe(1);
  }, 90_000);
});
