/**
 * A machine that never settles: an eventless (`always`) transition or a `raise` that loops, or events
 * sent back and forth for ever (to itself, or between it and a child). Plain XState spins for ever
 * (xstate 5.33). In a worker that blocked its event loop — no timer, no renewal, no other run — and
 * after the lease every worker that claimed the run met the event again and blocked in turn: one
 * `engine.send` stopped them all. The run fails instead once its actors have held the event loop for a
 * fifth of the lease (at least a second), its event kept for `engine.retry` of a fixed definition; the
 * worker goes on with its other runs. A legitimate burst is not taken for a loop.
 */
import { assign, enqueueActions, raise, sendParent, sendTo, setup } from 'xstate';
import { z } from 'zod';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, defineWorkflow, type Engine } from '../src/index.ts';

/** Answers every `ping` from its parent with a `ping` back. */
const echo = setup({}).createMachine({ on: { ping: { actions: sendParent({ type: 'ping' }) } } });
const machine = setup({ actors: { echo }, types: {} as { context: { n: number } } }).createMachine({
  id: 'spinner',
  context: { n: 0 },
  invoke: { id: 'echo', src: 'echo' },
  initial: 'idle',
  states: {
    idle: {
      on: {
        spin: 'a',
        bounce: 'bouncing',
        selfping: 'selfPinging',
        pingpong: 'pingPonging',
        burst: {
          actions: enqueueActions(({ enqueue }) => {
            for (let i = 0; i < 15_000; i++) enqueue.raise({ type: 'tick' });
          }),
        },
        tick: { actions: assign({ n: ({ context }) => context.n + 1 }) },
        finish: 'done',
      },
    },
    // Two states that hand over to each other for ever, counting.
    a: { always: { target: 'b', actions: assign({ n: ({ context }) => context.n + 1 }) } },
    b: { always: { target: 'a' } },
    // A raise answered by a raise.
    bouncing: { entry: raise({ type: 'ball' }), on: { ball: { actions: raise({ type: 'ball' }) } } },
    // An event the machine sends itself, each a new event.
    selfPinging: {
      entry: sendTo(({ self }) => self, { type: 'ping' }),
      on: { ping: { actions: sendTo(({ self }) => self, { type: 'ping' }) } },
    },
    // Events between the machine and its child, back and forth.
    pingPonging: { entry: sendTo('echo', { type: 'ping' }), on: { ping: { actions: sendTo('echo', { type: 'ping' }) } } },
    done: { type: 'final' },
  },
  output: ({ context }) => ({ n: context.n }),
});
const spinner = defineWorkflow({ name: 'unsettled.spinner', machine, input: z.object({}) });

let engine: Engine;
beforeAll(async () => {
  // A 5 s lease: a stretch may last a second (maxSpinMs).
  engine = createEngine({ database: { url: '', dataDir: 'memory://' }, workflows: [spinner], pollMs: 20, leaseMs: 5_000 });
  await engine.startWorker();
}, 60_000);
afterAll(() => engine?.stop({ graceMs: 100 }));

for (const event of ['spin', 'bounce', 'selfping', 'pingpong'] as const) {
  it(`a loop that never settles ('${event}') fails its run, and the worker goes on`, async () => {
    const looping = await engine.start(spinner, {});
    const other = await engine.start(spinner, {});
    await engine.send(looping, { type: event });
    const failed = await engine.waitFor(looping, { timeoutMs: 60_000 });
    expect(failed.status).toBe('failed');
    expect(failed.error?.code).toBe('MACHINE_ERROR');
    expect(failed.error?.message).toMatch(/without letting the worker do anything else/);
    expect(failed.state, 'stored as it was before the event').toBe('idle');
    await engine.send(other, { type: 'finish' });
    expect((await engine.waitFor(other, { timeoutMs: 20_000 })).status, 'the worker is stuck').toBe('succeeded');
  });
}

it('a legitimate burst — 15,000 events raised by one action — is not taken for a loop', async () => {
  const id = await engine.start(spinner, {});
  await engine.send(id, { type: 'burst' });
  await engine.send(id, { type: 'finish' });
  const run = await engine.waitFor(id, { timeoutMs: 60_000 });
  expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
  expect(run.output).toEqual({ n: 15_000 });
});
