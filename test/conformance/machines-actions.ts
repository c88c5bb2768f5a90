/**
 * Conformance cases on actions: `assign` (partial updaters, property assigners), `raise`,
 * `enqueueActions`, `emit`, entry/exit order and XState's predictable execution order. Each names the
 * XState test (statelyai/xstate `packages/core/test/`) it is taken from.
 */
import { assign, emit, enqueueActions, raise, setup } from 'xstate';
import type { Case } from './case.ts';

type Log = { log: string[] };

export const actionCases: Case[] = [
  {
    id: 'assign-partial',
    from: 'assign.test.ts › applies the assignment to multiple properties (static + prop assignment)',
    killBetween: true,
    machine: setup({ types: {} as { context: { count: number; foo: string; bar: number; baz: boolean } } }).createMachine({
      id: 'as',
      context: { count: 0, foo: 'bar', bar: 1, baz: false },
      initial: 'active',
      states: {
        active: {
          on: {
            INC: { actions: assign({ count: ({ context }) => context.count + 1 }) },
            MANY: { actions: assign({ foo: 'static', bar: ({ context }) => context.bar + context.count, baz: true }) },
            WHOLE: { actions: assign(({ context }) => ({ ...context, count: context.count * 10 })) },
          },
        },
      },
    }),
    steps: [{ type: 'INC' }, { type: 'MANY' }, { type: 'unknown' }, { type: 'WHOLE' }],
  },
  {
    id: 'assign-from-event',
    from: 'assign.test.ts › can assign from event',
    machine: setup({ types: {} as { context: { count: number } } }).createMachine({
      id: 'ae',
      context: { count: 1 },
      initial: 'active',
      states: { active: { on: { INC: { actions: assign({ count: ({ event }) => (event as unknown as { value: number }).value }) } } } },
    }),
    steps: [
      { type: 'INC', value: 30 },
      { type: 'INC', value: 7 },
    ],
  },
  {
    id: 'assign-params',
    from: 'assign.test.ts › should provide the action parameters to the partial assigner',
    machine: setup({
      types: {} as { context: { count: number } },
      actions: { add: assign({ count: ({ context }, params: { by: number }) => context.count + params.by }) },
    }).createMachine({
      id: 'ap',
      context: { count: 0 },
      on: { ADD: { actions: { type: 'add', params: ({ event }) => ({ by: (event as unknown as { by: number }).by }) } } },
    }),
    steps: [
      { type: 'ADD', by: 2 },
      { type: 'ADD', by: 5 },
    ],
  },
  {
    id: 'entry-exit-order',
    from: 'actions.test.ts › should return the entry and exit actions of a deep transition',
    killBetween: true,
    machine: setup({ types: {} as { context: Log } }).createMachine({
      id: 'ee',
      context: { log: [] },
      initial: 'a',
      states: {
        a: {
          entry: assign({ log: ({ context }) => [...context.log, 'enter a'] }),
          exit: assign({ log: ({ context }) => [...context.log, 'exit a'] }),
          on: { go: 'b.b1' },
        },
        b: {
          entry: assign({ log: ({ context }) => [...context.log, 'enter b'] }),
          exit: assign({ log: ({ context }) => [...context.log, 'exit b'] }),
          initial: 'b1',
          states: {
            b1: {
              entry: assign({ log: ({ context }) => [...context.log, 'enter b1'] }),
              exit: assign({ log: ({ context }) => [...context.log, 'exit b1'] }),
            },
          },
          on: { go: 'a' },
        },
      },
    }),
    steps: [{ type: 'go' }, { type: 'go' }, { type: 'go' }],
  },
  {
    id: 'raise-enqueue',
    from: 'actions.test.ts › enqueueActions › should execute actions in order / raise',
    killBetween: true,
    machine: setup({ types: {} as { context: { n: number } } }).createMachine({
      id: 'r',
      context: { n: 0 },
      initial: 'a',
      states: {
        a: {
          on: {
            go: {
              actions: enqueueActions(({ enqueue, context }) => {
                enqueue.assign({ n: context.n + 1 });
                if (context.n >= 1) enqueue.raise({ type: 'done' });
              }),
            },
            done: 'b',
          },
        },
        b: { type: 'final' },
      },
      output: ({ context }) => context,
    }),
    steps: [{ type: 'go' }, { type: 'go' }],
  },
  {
    id: 'enqueue-check',
    from: 'actions.test.ts › enqueueActions › should be able to check a guard',
    machine: setup({
      types: {} as { context: { allowed: boolean; n: number } },
      guards: { allowed: ({ context }) => context.allowed },
    }).createMachine({
      id: 'ec',
      context: { allowed: false, n: 0 },
      on: {
        allow: { actions: assign({ allowed: true }) },
        bump: {
          actions: enqueueActions(({ enqueue, check, context }) => {
            if (check('allowed')) enqueue.assign({ n: context.n + 1 });
          }),
        },
      },
    }),
    steps: [{ type: 'bump' }, { type: 'allow' }, { type: 'bump' }],
  },
  {
    id: 'emit',
    from: 'emit.test.ts › enqueue.emit(…) emits events that can be listened to on actorRef.on(…)',
    killBetween: true,
    machine: setup({}).createMachine({
      id: 'em',
      initial: 'a',
      states: {
        a: {
          on: { say: { actions: [emit({ type: 'said' }), enqueueActions(({ enqueue }) => enqueue.emit({ type: 'again' }))], target: 'b' } },
        },
        b: {},
      },
    }),
    steps: [{ type: 'say' }],
  },
  {
    id: 'raised-event-actions',
    from: 'predictableExec.test.ts › should call raised transition builtin actions with raised event',
    killBetween: true,
    machine: setup({ types: {} as { context: { got: string } } }).createMachine({
      id: 'pe',
      context: { got: '' },
      initial: 'a',
      states: {
        a: { on: { NEXT: 'b' } },
        b: {
          entry: raise({ type: 'RAISED', tag: 'x' }),
          on: {
            RAISED: {
              target: 'c',
              actions: assign({ got: ({ event }) => `${event.type}:${String((event as unknown as { tag: string }).tag)}` }),
            },
          },
        },
        c: {},
      },
    }),
    steps: [{ type: 'NEXT' }],
  },
  {
    id: 'intermediate-context',
    from: 'predictableExec.test.ts › should correctly provide intermediate context value to a custom action executed in between assign actions',
    machine: setup({ types: {} as { context: { counter: number; seen: number[] } } }).createMachine({
      id: 'ic',
      context: { counter: 0, seen: [] },
      initial: 'foo',
      states: {
        foo: {
          on: {
            NEXT: {
              target: 'bar',
              actions: [
                assign({ counter: ({ context }) => context.counter + 1 }),
                assign({ seen: ({ context }) => [...context.seen, context.counter] }),
                assign({ counter: ({ context }) => context.counter + 1 }),
              ],
            },
          },
        },
        bar: {},
      },
    }),
    steps: [{ type: 'NEXT' }],
  },
  {
    id: 'mixed-order',
    from: 'predictableExec.test.ts › should call mixed custom and builtin actions in the definitions order',
    machine: setup({ types: {} as { context: Log } }).createMachine({
      id: 'mo',
      context: { log: [] },
      initial: 'a',
      states: {
        a: { on: { NEXT: 'b' } },
        b: {
          entry: [
            assign({ log: ({ context }) => [...context.log, 'assign 1'] }),
            raise({ type: 'R' }),
            assign({ log: ({ context }) => [...context.log, 'assign 2'] }),
          ],
          on: { R: { actions: assign({ log: ({ context }) => [...context.log, 'raised R'] }) } },
        },
      },
    }),
    steps: [{ type: 'NEXT' }],
  },
];
