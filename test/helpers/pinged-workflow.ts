/**
 * A workflow that counts `ping` signals in every state — while idle, while its step runs, while it is
 * being released to wait — and finishes once it has counted `pings`: a ping lost or taken twice shows
 * as a run that never finishes or an output above the count sent (test/adv3-release-signal-race,
 * test/adv3-two-workers-load).
 */
import { assign, setup } from 'xstate';
import { z } from 'zod';
import { defineWorkflow, step } from '../../src/index.ts';

export function pingedWorkflow(name: string, pings: number, workMs: () => number) {
  const work = step(async () => {
    await new Promise((r) => setTimeout(r, workMs()));
    return 1;
  });
  const machine = setup({
    actors: { work },
    types: { context: {} as { pings: number }, events: {} as { type: 'ping' } },
    guards: { all: ({ context }) => context.pings >= pings },
    actions: { count: assign({ pings: ({ context }) => context.pings + 1 }) },
  }).createMachine({
    id: name.replace(/\W/g, '_'),
    context: { pings: 0 },
    initial: 'idle',
    on: { ping: { actions: 'count' } },
    states: {
      idle: { always: { guard: 'all', target: 'done' }, on: { ping: { target: 'working', actions: 'count' } } },
      working: { invoke: { src: 'work', onDone: 'idle' } },
      done: { type: 'final' },
    },
    output: ({ context }) => ({ pings: context.pings }),
  });
  return defineWorkflow({ name, machine, input: z.object({}) });
}
