/**
 * A step's AbortSignal lives as long as the step: every attempt and every `ctx.sleep` of it waits for
 * the session's commit with that signal. A listener left on it per wait piled up (a leak, and Node's
 * MaxListenersExceededWarning on the application's stderr past ten).
 */
import { getEventListeners } from 'node:events';
import { afterAll, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, openDatabase, silentLogger, step, WorkflowError } from '../src/index.ts';
import { engineDatabaseFor } from './helpers/postgres.ts';

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

const ATTEMPTS = 25;

it(
  `a step retried ${ATTEMPTS} times and sleeping ${ATTEMPTS} times keeps a bounded number of abort listeners, and Node warns of none`,
  { timeout: 60_000 },
  async () => {
    const listeners: { retried?: number; slept?: number } = {};
    const retried = step(
      async ({ attempt, signal }: { attempt: number; signal: AbortSignal }) => {
        if (attempt < ATTEMPTS) throw new WorkflowError('not yet', { code: 'NOT_YET', category: 'transient' });
        listeners.retried = getEventListeners(signal, 'abort').length;
        return 1;
      },
      { retry: { maxAttempts: ATTEMPTS, initialDelayMs: 1, maxDelayMs: 1, jitter: 0 } },
    );
    const sleeper = step(async ({ sleep, signal }: { sleep: (ms: number) => Promise<void>; signal: AbortSignal }) => {
      for (let i = 0; i < ATTEMPTS; i++) await sleep(1);
      listeners.slept = getEventListeners(signal, 'abort').length;
      return 1;
    });
    const machine = setup({ actors: { retried, sleeper } }).createMachine({
      initial: 'retrying',
      states: {
        retrying: { invoke: { src: 'retried', onDone: 'sleeping' } },
        sleeping: { invoke: { src: 'sleeper', onDone: 'done' } },
        done: { type: 'final' },
      },
    });
    const workflow = defineWorkflow({ name: 'test.abort-listeners', machine, input: z.object({}) });
    const warnings: string[] = [];
    const onWarning = (w: Error) => void warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    cleanups.push(async () => void process.off('warning', onWarning));
    const db = await openDatabase(await engineDatabaseFor('pglite', cleanups));
    cleanups.push(() => db.close());
    const engine = createEngine({ database: db, workflows: [workflow], logger: silentLogger });
    cleanups.push(() => engine.stop());
    await engine.startWorker();
    const run = await engine.waitFor(await engine.start(workflow, {}), { timeoutMs: 50_000 });
    expect(run.status).toBe('succeeded');
    // The engine's own (its abort on stop) and the step's: not one per wait.
    expect(listeners, 'abort listeners on the step’s signal at its last attempt and after its last sleep').toEqual({
      retried: expect.toSatisfy((n: number) => n <= 3),
      slept: expect.toSatisfy((n: number) => n <= 3),
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(warnings.filter((w) => w.includes('MaxListeners'))).toEqual([]);
  },
);
