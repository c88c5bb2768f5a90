/**
 * A step's `timeoutMs` bounds its attempt's work, not its durable `ctx.sleep`: a run that leaves memory
 * during the sleep resumes the attempt after it with a new timeout, so counting the sleep in memory made
 * the outcome depend on `evictAfterMs` alone (docs/engine-internals.md, "Step records"). The same step
 * and machine run with the run kept in memory and with it evicted during the sleep; both must succeed
 * with the first attempt.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, step } from '../src/index.ts';
import { engineDatabaseFor } from './helpers/postgres.ts';

const napper = step(
  async ({ sleep, attempt }: { sleep(ms: number): Promise<void>; attempt: number }) => {
    await sleep(1_500);
    return attempt;
  },
  { timeoutMs: 500, retry: { maxAttempts: 1 } },
);
const machine = setup({ actors: { napper } }).createMachine({
  id: 'b2SleepTimeout',
  initial: 'napping',
  states: { napping: { invoke: { src: 'napper', onDone: 'done' } }, done: { type: 'final' } },
});
const wf = defineWorkflow({ name: 'b2.sleep-timeout', machine, input: z.object({}) });

describe.each(['postgres', 'pglite'] as const)('a sleep longer than its step timeout (%s)', (kind) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it.each([
    ['kept in memory', 60_000],
    ['evicted during the sleep', 50],
  ] as const)(
    'succeeds with the run %s',
    async (_how, evictAfterMs) => {
      const engine = createEngine({ database: await engineDatabaseFor(kind, cleanups), workflows: [wf], evictAfterMs, pollMs: 100 });
      cleanups.push(() => engine.stop());
      await engine.startWorker();
      const id = await engine.start(wf, {});
      const run = await engine.waitFor(id, { timeoutMs: 20_000 });
      expect({ status: run.status, error: run.error?.code ?? null }, `run with evictAfterMs ${evictAfterMs}`).toEqual({
        status: 'succeeded',
        error: null,
      });
    },
    30_000,
  );
});
