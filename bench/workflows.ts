/**
 * Benchmark workflows (also a `--workflows` module for worker processes the benchmark spawns):
 * `bench.six` — 6 sequential no-op steps, durable after every step, the workload all systems run;
 * `bench.wait` — waits for a `go` signal (memory of 10,000 waiting runs).
 * With RMAPP_BENCH_HANG_STEP=4 in its environment, a process hangs in step 4 (recovery benchmark).
 */
import { setup } from 'xstate';
import { z } from 'zod';
import { defineWorkflow, step } from '../dist/index.js';

const hangAt = Number(process.env.RMAPP_BENCH_HANG_STEP ?? 0);

/** bench/statement-gap.ts marks a step's start and end through this global; unset elsewhere. */
const benchMark = () => (globalThis as Record<symbol, unknown>)[Symbol.for('rmapp.bench.mark')] as ((kind: string) => void) | undefined;

const noop = step(async ({ input, signal }: { input: { n: number }; signal: AbortSignal }) => {
  benchMark()?.('D');
  if (input.n === hangAt) {
    await new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
  }
  benchMark()?.('D2');
  return input.n;
});

const states: Record<string, object> = {};
for (let n = 1; n <= 6; n++) {
  states[`step${n}`] = { invoke: { src: 'noop', input: { n }, onDone: n === 6 ? 'done' : `step${n + 1}` } };
}
states.done = { type: 'final' };

const sixMachine = setup({ actors: { noop } }).createMachine({
  id: 'six',
  initial: 'step1',
  states: states as Record<string, { type?: 'final' }>,
});

const waitMachine = setup({}).createMachine({
  id: 'wait',
  initial: 'waiting',
  states: { waiting: { on: { go: 'done' } }, done: { type: 'final' } },
});

export const six = defineWorkflow({ name: 'bench.six', machine: sixMachine, input: z.object({}).passthrough() });
export const wait = defineWorkflow({ name: 'bench.wait', machine: waitMachine, input: z.object({}).passthrough() });
export const workflows = [six, wait];
