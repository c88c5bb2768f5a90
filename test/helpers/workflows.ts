/** Small machines the engine's own tests run. Steps count their executions in a shared map or file. */
import { appendFileSync } from 'node:fs';
import { assign, setup } from 'xstate';
import { z } from 'zod';
import { defineWorkflow, step } from '../../src/index.ts';

/** Executions per step name, counted outside the engine. */
export const executions = new Map<string, number>();
const count = (name: string) => executions.set(name, (executions.get(name) ?? 0) + 1);

/** Appends `name` to the file named by RMAPP_TEST_COUNTER_FILE (crash tests count across processes). */
export function countInFile(name: string): void {
  const file = process.env.RMAPP_TEST_COUNTER_FILE;
  if (file) appendFileSync(file, `${name}\n`);
}

/**
 * `test.sequence`: N sequential steps adding to a sum. A step named in `slowStep` sleeps `slowMs`
 * (the crash test kills the process there).
 */
export function sequenceWorkflow(steps = 6) {
  const add = step(async ({ input, signal }: { input: { name: string; value: number; slowStep?: string; slowMs?: number }; signal: AbortSignal }) => {
    count(input.name);
    countInFile(input.name);
    // The crash test makes a step slow only in the process it is going to kill.
    const slowMs = process.env.RMAPP_TEST_SLOW_STEP === input.name ? Number(process.env.RMAPP_TEST_SLOW_MS ?? 60_000) : input.slowStep === input.name ? input.slowMs : undefined;
    if (slowMs) {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, slowMs);
        signal.addEventListener('abort', () => {
          clearTimeout(t);
          reject(signal.reason);
        });
      });
    }
    return input.value;
  });
  type Ctx = { sum: number; slowStep?: string | undefined; slowMs?: number | undefined };
  const states: Record<string, object> = {};
  for (let i = 1; i <= steps; i++) {
    states[`step${i}`] = {
      invoke: {
        src: 'add',
        input: ({ context }: { context: Ctx }) => ({ name: `step${i}`, value: i, slowStep: context.slowStep, slowMs: context.slowMs }),
        onDone: { target: i === steps ? 'done' : `step${i + 1}`, actions: assign<Ctx, { type: string; output?: number }, undefined, never, never>({ sum: ({ context, event }) => context.sum + (event.output ?? 0) }) },
      },
    };
  }
  states.done = { type: 'final' };
  const machine = setup({
    types: {} as { context: Ctx; input: { slowStep?: string; slowMs?: number } },
    actors: { add },
  }).createMachine({
    id: 'sequence',
    context: ({ input }) => ({ sum: 0, slowStep: input.slowStep, slowMs: input.slowMs }),
    initial: 'step1',
    states: states as Record<string, { type?: 'final' }>,
    output: ({ context }) => ({ sum: context.sum }),
  });
  return defineWorkflow({
    name: 'test.sequence',
    machine,
    input: z.object({ slowStep: z.string().optional(), slowMs: z.number().int().positive().optional() }),
  });
}

/** `test.fails`: one step that always throws a permanent error, with no onError: the run fails. */
export function failingWorkflow() {
  const boom = step(async () => {
    count('boom');
    throw Object.assign(new Error('the widget is broken'), { category: 'permanent', code: 'WIDGET_BROKEN' });
  });
  const machine = setup({ actors: { boom } }).createMachine({
    id: 'fails',
    initial: 'working',
    states: { working: { invoke: { src: 'boom', onDone: 'done' } }, done: { type: 'final' } },
  });
  return defineWorkflow({ name: 'test.fails', machine, input: z.object({}).passthrough() });
}
