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

/** One line of the execution ledger (RMAPP_TEST_LEDGER): a step execution starting or ending. */
export interface LedgerEntry {
  run: string;
  key: string;
  attempt: number;
  pid: number;
  phase: 'start' | 'end' | 'abort';
  /** Epoch ms. */
  t: number;
}

/** Appends to the ledger file named by RMAPP_TEST_LEDGER, outside the engine and its database. */
function ledger(entry: Omit<LedgerEntry, 'pid' | 't'>): void {
  const file = process.env.RMAPP_TEST_LEDGER;
  if (file) appendFileSync(file, `${JSON.stringify({ ...entry, pid: process.pid, t: Date.now() })}\n`);
}

/**
 * `test.sequence`: N sequential steps adding to a sum. A step named in `slowStep` sleeps `slowMs`
 * (the crash test kills the process there); `everyMs` makes every step take that long. Each execution
 * is written to the ledger (RMAPP_TEST_LEDGER) when it starts and when it ends or is aborted.
 */
export function sequenceWorkflow(steps = 6) {
  type AddInput = { name: string; value: number; slowStep?: string; slowMs?: number; everyMs?: number };
  const add = step(
    async ({
      input,
      signal,
      runId,
      idempotencyKey,
      attempt,
    }: {
      input: AddInput;
      signal: AbortSignal;
      runId: string;
      idempotencyKey: string;
      attempt: number;
    }) => {
      count(input.name);
      countInFile(input.name);
      ledger({ run: runId, key: idempotencyKey, attempt, phase: 'start' });
      // The crash test makes a step slow only in the process it is going to kill.
      const slowMs =
        process.env.RMAPP_TEST_SLOW_STEP === input.name
          ? Number(process.env.RMAPP_TEST_SLOW_MS ?? 60_000)
          : input.slowStep === input.name
            ? input.slowMs
            : input.everyMs;
      if (slowMs) {
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(resolve, slowMs);
          signal.addEventListener('abort', () => {
            clearTimeout(t);
            ledger({ run: runId, key: idempotencyKey, attempt, phase: 'abort' });
            reject(signal.reason);
          });
        });
      }
      ledger({ run: runId, key: idempotencyKey, attempt, phase: 'end' });
      return input.value;
    },
  );
  type Ctx = { sum: number; slowStep?: string | undefined; slowMs?: number | undefined; everyMs?: number | undefined };
  const states: Record<string, object> = {};
  for (let i = 1; i <= steps; i++) {
    states[`step${i}`] = {
      invoke: {
        src: 'add',
        input: ({ context }: { context: Ctx }) => ({
          name: `step${i}`,
          value: i,
          slowStep: context.slowStep,
          slowMs: context.slowMs,
          everyMs: context.everyMs,
        }),
        onDone: {
          target: i === steps ? 'done' : `step${i + 1}`,
          actions: assign<Ctx, { type: string; output?: number }, undefined, never, never>({
            sum: ({ context, event }) => context.sum + (event.output ?? 0),
          }),
        },
      },
    };
  }
  states.done = { type: 'final' };
  const machine = setup({
    types: {} as { context: Ctx; input: { slowStep?: string; slowMs?: number; everyMs?: number } },
    actors: { add },
  }).createMachine({
    id: 'sequence',
    context: ({ input }) => ({ sum: 0, slowStep: input.slowStep, slowMs: input.slowMs, everyMs: input.everyMs }),
    initial: 'step1',
    states: states as Record<string, { type?: 'final' }>,
    output: ({ context }) => ({ sum: context.sum }),
  });
  return defineWorkflow({
    name: 'test.sequence',
    machine,
    input: z.object({
      slowStep: z.string().optional(),
      slowMs: z.number().int().positive().optional(),
      everyMs: z.number().int().positive().optional(),
    }),
  });
}

/**
 * A machine that waits, throws on a `boom` event (a poison event: the run fails naming it) and ends on
 * `finish` (in its final state `done`); registered under `name`.
 */
export function poisonedByBoom(name: string) {
  const machine = setup({}).createMachine({
    id: 'poisoned',
    initial: 'waiting',
    states: {
      waiting: {
        on: {
          boom: {
            actions: () => {
              throw new Error('boom');
            },
          },
          finish: 'done',
        },
      },
      done: { type: 'final' },
    },
  });
  return defineWorkflow({ name, machine, input: z.object({}) });
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

/**
 * `test.spawns`: children spawned without an id (`spawn('counter')` in `assign`, refs kept in the
 * context), each counting the `inc` events it gets; `spawn` makes one, `incAll` sends `inc` to each
 * ref. XState names such a child after a counter global to the process.
 */
export function spawnsWorkflow() {
  const counter = setup({ types: {} as { context: { n: number } } }).createMachine({
    id: 'counter',
    context: { n: 0 },
    on: { inc: { actions: assign({ n: ({ context }) => context.n + 1 }) } },
  });
  type Ref = { id: string; send(e: { type: string }): void };
  const machine = setup({ actors: { counter }, types: {} as { context: { refs: Ref[] } } }).createMachine({
    id: 'spawns',
    context: { refs: [] },
    on: {
      spawn: { actions: assign({ refs: ({ context, spawn }) => [...context.refs, spawn('counter') as unknown as Ref] }) },
      // A child under an id the sender chose, which may look like one XState makes (`x:5`).
      spawnAs: {
        actions: assign({
          refs: ({ context, spawn, event }) => [
            ...context.refs,
            spawn('counter', { id: (event as unknown as { id: string }).id }) as unknown as Ref,
          ],
        }),
      },
      incAll: { actions: ({ context }) => context.refs.forEach((r) => r.send({ type: 'inc' })) },
    },
  });
  return defineWorkflow({ name: 'test.spawns', machine, input: z.object({}) });
}
