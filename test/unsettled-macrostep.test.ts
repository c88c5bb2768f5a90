/**
 * A machine that never settles: an eventless (`always`) transition, or a `raise`, that loops. Plain
 * XState spins for ever (xstate 5.33). In a worker that blocked its event loop — no timer, no renewal,
 * no other run — and after the lease every worker that claimed the run met the event again and blocked
 * in turn: one `engine.send` stopped them all. The run fails instead, naming the event and the state,
 * with the event kept for `engine.retry` of a fixed definition; the worker goes on with its other runs.
 */
import { assign, raise, setup } from 'xstate';
import { z } from 'zod';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, defineWorkflow, type Engine } from '../src/index.ts';

const machine = setup({ types: {} as { context: { n: number } } }).createMachine({
  id: 'spinner',
  context: { n: 0 },
  initial: 'idle',
  states: {
    idle: { on: { spin: 'a', bounce: 'bouncing', finish: 'done' } },
    // Two states that hand over to each other for ever, counting.
    a: { always: { target: 'b', actions: assign({ n: ({ context }) => context.n + 1 }) } },
    b: { always: { target: 'a' } },
    // A raise answered by a raise.
    bouncing: { entry: raise({ type: 'ball' }), on: { ball: { actions: raise({ type: 'ball' }) } } },
    done: { type: 'final' },
  },
});
const spinner = defineWorkflow({ name: 'unsettled.spinner', machine, input: z.object({}) });

let engine: Engine;
beforeAll(async () => {
  engine = createEngine({ database: { url: '', dataDir: 'memory://' }, workflows: [spinner], pollMs: 20 });
  await engine.startWorker();
}, 60_000);
afterAll(() => engine?.stop({ graceMs: 100 }));

for (const event of ['spin', 'bounce'] as const) {
  it(`a loop that never settles ('${event}') fails its run, and the worker goes on`, async () => {
    const looping = await engine.start(spinner, {});
    const other = await engine.start(spinner, {});
    await engine.send(looping, { type: event });
    const failed = await engine.waitFor(looping, { timeoutMs: 30_000 });
    expect(failed.status).toBe('failed');
    expect(failed.error?.code).toBe('MACHINE_ERROR');
    expect(failed.error?.message).toMatch(/more than 10000 microsteps without settling/);
    expect(failed.error?.message).toContain(`while handling event "${event}" in state "idle"`);
    expect(failed.state, 'stored as it was before the event').toBe('idle');
    await engine.send(other, { type: 'finish' });
    expect((await engine.waitFor(other, { timeoutMs: 20_000 })).status, 'the worker is stuck').toBe('succeeded');
  });
}
