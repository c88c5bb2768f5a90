/**
 * An attempt that timed out is over, though its function may go on (it ignored its abort): its
 * `ctx.sleep` must not write into the step's record, which the next attempt of the same execution uses
 * (docs/engine-internals.md, "Step records": only the newest execution changes its record). Before, the
 * stale attempt's sleep stored its due time and `parked` in that record: the next attempt's own sleep
 * found that due time and took it for its own (it slept what was left of the stale one's and recorded no
 * sleep of its own), and the record said parked while that attempt worked.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, step, type Engine } from '../src/index.ts';
import { engineDatabaseFor } from './helpers/postgres.ts';

describe.each(['pglite', 'postgres'] as const)('ctx.sleep of an attempt that timed out (%s)', (kind) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('leaves the next attempt its own sleep', async () => {
    // Attempt 1 ignores its abort and sleeps once attempt 2 runs; attempt 2 sleeps after that.
    let staleSlept!: () => void;
    const staleSleptOnce = new Promise<void>((r) => (staleSlept = r));
    let secondStarted!: () => void;
    const secondStartedOnce = new Promise<void>((r) => (secondStarted = r));
    const napper = step(
      async ({ attempt, sleep }: { attempt: number; sleep(ms: number): Promise<void> }) => {
        if (attempt === 1) {
          await secondStartedOnce;
          await sleep(50).catch(() => {});
          staleSlept();
          return 'stale';
        }
        secondStarted();
        await staleSleptOnce;
        await sleep(100);
        return 'second';
      },
      { timeoutMs: 200, retry: { maxAttempts: 2, initialDelayMs: 0, maxDelayMs: 0 } },
    );
    const machine = setup({ actors: { napper } }).createMachine({
      id: 'b2StaleSleep',
      initial: 'napping',
      states: { napping: { invoke: { src: 'napper', onDone: 'done' } }, done: { type: 'final' } },
    });
    const wf = defineWorkflow({ name: 'b2.stale-sleep', machine, input: z.object({}) });
    const engine: Engine = createEngine({ database: await engineDatabaseFor(kind, cleanups), workflows: [wf], evictAfterMs: 60_000 });
    cleanups.push(() => engine.stop());
    await engine.startWorker();
    const id = await engine.start(wf, {});
    const run = await engine.waitFor(id, { timeoutMs: 20_000 });
    expect(run.status).toBe('succeeded');
    const sleeps = (await engine.history(id)).filter((h) => h.type === 'step.sleeping').map((h) => h.attempt);
    expect(sleeps, 'the sleeps recorded, by attempt: the stale attempt 1 must record none, attempt 2 its own').toEqual([2]);
  }, 30_000);
});
