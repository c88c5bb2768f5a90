/**
 * Conformance cases on delays: `after` (fixed, nested, by a named delay reading context), delayed
 * `raise` and `sendTo` with `cancel`, and a child machine's own `after`. Each names the XState test
 * (statelyai/xstate `packages/core/test/`) it is taken from. The ones marked `killInside` start with a
 * delay of `DELAY_MS` pending: the process test kills the worker inside it.
 */
import { assign, cancel, raise, sendParent, sendTo, setup } from 'xstate';
import type { Case, PersistedRow } from './case.ts';

/** Long enough for a kill to land inside the delay. */
export const DELAY_MS = 1_500;

const timerPending = (row: PersistedRow) => (row.timers ?? []).length > 0;

const beeper = setup({}).createMachine({
  id: 'beeper',
  initial: 'counting',
  states: { counting: { after: { [DELAY_MS]: { target: 'beeped', actions: sendParent({ type: 'beep' }) } } }, beeped: { type: 'final' } },
});
const echo = setup({ types: {} as { context: { heard: string[] } } }).createMachine({
  id: 'echo',
  context: { heard: [] },
  on: { '*': { actions: assign({ heard: ({ context, event }) => [...context.heard, event.type] }) } },
});

export const delayCases: Case[] = [
  {
    id: 'after-transition',
    from: 'after.test.ts › should transition after delay',
    killBetween: true,
    killInside: { inside: timerPending, what: 'a pending after' },
    machine: setup({}).createMachine({
      id: 'light',
      initial: 'green',
      states: { green: { after: { [DELAY_MS]: 'yellow' } }, yellow: { on: { NEXT: 'red' } }, red: {} },
    }),
    steps: [{ wait: DELAY_MS + 800 }, { type: 'NEXT' }],
  },
  {
    id: 'after-nested-initial',
    from: 'after.test.ts › should be able to transition with delay from nested initial state',
    killInside: { inside: timerPending, what: 'a pending after in a nested initial state' },
    machine: setup({}).createMachine({
      id: 'nested',
      initial: 'nested',
      states: { nested: { initial: 'wait', states: { wait: { after: { [DELAY_MS]: '#nested.end' } } } }, end: { type: 'final' } },
    }),
    steps: [{ wait: DELAY_MS + 800 }],
  },
  {
    id: 'after-named-delay',
    from: 'after.test.ts › should evaluate the expression (string) to determine the delay',
    killBetween: true,
    machine: setup({ types: {} as { context: { delay: number } }, delays: { someDelay: ({ context }) => context.delay } }).createMachine({
      id: 'nd',
      context: { delay: DELAY_MS },
      initial: 'idle',
      states: { idle: { on: { go: 'inactive' } }, inactive: { after: { someDelay: 'active' } }, active: {} },
    }),
    steps: [{ type: 'go' }, { wait: DELAY_MS + 800 }],
  },
  {
    id: 'after-left-early',
    from: 'after.test.ts › should not try to clear an undefined timeout when exiting source state of a delayed transition',
    machine: setup({}).createMachine({
      id: 'le',
      initial: 'a',
      states: { a: { after: { 60_000: 'late' }, on: { leave: 'b' } }, b: {}, late: {} },
    }),
    steps: [{ type: 'leave' }, { wait: 100 }],
  },
  {
    id: 'delayed-raise-cancel',
    from: 'actions.test.ts › cancel › should cancel a delayed raise',
    killBetween: true,
    machine: setup({ types: {} as { context: { fired: boolean } } }).createMachine({
      id: 'dr',
      context: { fired: false },
      initial: 'waiting',
      states: {
        waiting: {
          entry: raise({ type: 'timeout' }, { delay: 60_000, id: 'to' }),
          on: { stop: { actions: cancel('to'), target: 'stopped' }, timeout: { actions: assign({ fired: true }) } },
        },
        stopped: {},
      },
    }),
    steps: [{ type: 'stop' }],
  },
  {
    id: 'delayed-raise-fires',
    from: 'actions.test.ts › raise › should be able to send a delayed event to itself',
    killInside: { inside: timerPending, what: 'a pending delayed raise' },
    machine: setup({ types: {} as { context: { fired: number } } }).createMachine({
      id: 'df',
      context: { fired: 0 },
      initial: 'a',
      states: {
        a: {
          entry: raise({ type: 'EVENT' }, { delay: DELAY_MS }),
          on: { EVENT: { target: 'b', actions: assign({ fired: ({ context }) => context.fired + 1 }) } },
        },
        b: {},
      },
    }),
    steps: [{ wait: DELAY_MS + 800 }],
  },
  {
    id: 'delayed-sendto-child',
    from: 'actions.test.ts › sendTo › should be able to send a delayed event to a child',
    // The first step is the wait: an event sent while the delay is pending would meet a worker process
    // that took longer to start than the delay, so the delayed event would rightly come first.
    killBetween: true,
    killInside: { inside: timerPending, what: 'a pending delayed sendTo to a child' },
    machine: setup({ actors: { echo } }).createMachine({
      id: 'ds',
      invoke: { id: 'echo', src: 'echo' },
      entry: sendTo('echo', { type: 'late' }, { delay: DELAY_MS }),
      on: { now: { actions: sendTo('echo', { type: 'now' }) } },
    }),
    steps: [{ wait: DELAY_MS + 800 }, { type: 'now' }, { type: 'now' }],
  },
  {
    id: 'delayed-sendto-cancel',
    from: 'actions.test.ts › cancel › should cancel a delayed sendTo',
    machine: setup({ actors: { echo } }).createMachine({
      id: 'dc',
      invoke: { id: 'echo', src: 'echo' },
      entry: sendTo('echo', { type: 'late' }, { delay: 60_000, id: 'late' }),
      on: { abort: { actions: cancel('late') }, now: { actions: sendTo('echo', { type: 'now' }) } },
    }),
    steps: [{ type: 'abort' }, { type: 'now' }],
  },
  {
    id: 'child-after-sendparent',
    from: 'after.test.ts › should execute an after transition after starting from a persisted state (in a child machine)',
    killBetween: true,
    killInside: {
      inside: (row) => (row.timers ?? []).length > 0 && row.snapshot?.children?.beeper !== undefined,
      what: "a child machine's pending after",
    },
    machine: setup({ actors: { beeper }, types: {} as { context: { beeps: number } } }).createMachine({
      id: 'cp',
      context: { beeps: 0 },
      initial: 'listening',
      states: {
        listening: {
          invoke: { id: 'beeper', src: 'beeper', onDone: 'quiet' },
          on: { beep: { actions: assign({ beeps: ({ context }) => context.beeps + 1 }) } },
        },
        quiet: { on: { again: 'listening' } },
      },
    }),
    steps: [{ wait: DELAY_MS + 800 }, { type: 'again' }, { wait: DELAY_MS + 800 }],
  },
];
