/**
 * More machines from XState's own tests (statelyai/xstate, packages/core/test/; each names its file),
 * run as a plain actor and as an rmapp workflow side by side (test/helpers/xs-differential.ts), beyond
 * test/xs-differential-states.test.ts: nested final states with output and their done events, guards
 * `and`/`or`/`not`/`stateIn` across parallel regions, reentering and targetless self-transitions with
 * `after`, `after` 0 and delayed `raise` of 0 with a cancel after a restore, transitions whose only effect
 * is on the scheduler (a delayed raise, a cancel) restored or with the worker down, numbers and text
 * through jsonb, overdue timers that stop a child holding its own timer or re-enter a state with its own
 * `after`, and the order of assigns across parallel regions. The actors: test/h219-xs-more-actors.test.ts.
 */
import { and, assign, cancel, createMachine, not, or, raise, sendParent, sendTo, setup, stateIn } from 'xstate';
import { describeDifferential, effect, type XsCase } from './helpers/xs-differential.ts';

const cases: XsCase[] = [];

// final.test.ts: nested final states with output, xstate.done.state.* events
cases.push({
  name: 'nested final output',
  evict: true,
  machine: createMachine({
    context: { got: [] as unknown[] },
    initial: 'a',
    states: {
      a: {
        initial: 'b',
        states: {
          b: {
            initial: 'c',
            states: {
              c: { on: { NEXT: 'd' } },
              d: { type: 'final', output: ({ context }: any) => ({ depth: 'd', n: context.got.length }) },
            },
            onDone: {
              target: 'e',
              actions: [
                assign({ got: ({ context, event }: any) => [...context.got, { t: event.type, o: event.output }] }),
                () => effect('b done'),
              ],
            },
          },
          e: { on: { NEXT: 'f' } },
          f: { type: 'final', output: { depth: 'f' } },
        },
        onDone: {
          target: 'g',
          actions: assign({ got: ({ context, event }: any) => [...context.got, { t: event.type, o: event.output }] }),
        },
      },
      g: { on: { '*': { actions: assign({ got: ({ context, event }: any) => [...context.got, event.type] }) } }, after: { 0: 'h' } },
      h: { type: 'final' },
    },
    output: ({ context }) => context.got,
  }),
  steps: [{ send: { type: 'NEXT' } }, { restore: true }, { send: { type: 'NEXT' } }, { restore: true }, { advance: 0 }],
});

// guards.test.ts: and/or/not/stateIn in parallel regions
cases.push({
  name: 'guards combinators stateIn',
  evict: true,
  machine: setup({
    guards: {
      big: ({ context }: any, p: { min: number }) => context.n >= p.min,
      odd: ({ context }: any) => context.n % 2 === 1,
    },
  }).createMachine({
    context: { n: 0 },
    type: 'parallel',
    states: {
      counter: { on: { INC: { actions: assign({ n: ({ context }) => context.n + 1 }) } } },
      light: {
        initial: 'red',
        states: {
          red: { on: { GO: { target: 'green', guard: and([{ type: 'big', params: { min: 2 } }, not('odd')]) } } },
          green: { on: { GO: { target: 'yellow', guard: or(['odd', stateIn('#sw.on')]) } } },
          yellow: { always: { target: 'red', guard: stateIn({ switch: 'off' }) } },
        },
      },
      switch: { id: 'sw', initial: 'off', states: { off: { on: { FLIP: 'on' } }, on: { on: { FLIP: 'off' } } } },
    },
  }),
  steps: [
    { send: { type: 'GO' } },
    { send: { type: 'INC' } },
    { send: { type: 'INC' } },
    { restore: true },
    { send: { type: 'GO' } },
    { send: { type: 'GO' } },
    { send: { type: 'FLIP' } },
    { restore: true },
    { send: { type: 'GO' } },
    { send: { type: 'FLIP' } },
    { send: { type: 'INC' } },
  ],
});

// actions.test.ts: reenter true/false self transitions with after timers
cases.push({
  name: 'reenter self transitions with after',
  evict: false,
  machine: createMachine({
    context: { log: [] as string[] },
    initial: 'p',
    states: {
      p: {
        entry: [() => effect('enter p'), assign({ log: ({ context }) => [...context.log, 'enter p'] })],
        exit: () => effect('exit p'),
        initial: 'c',
        states: {
          c: { entry: () => effect('enter c'), exit: () => effect('exit c'), after: { 100: { actions: () => effect('c tick') } } },
          d: { entry: () => effect('enter d') },
        },
        after: { 200: { target: 'done' } },
        on: {
          SAME: { target: 'p', reenter: true },
          SAME_NO: { target: 'p' },
          CHILD: { target: '.d', reenter: true },
          CHILD_NO: { target: '.c' },
        },
      },
      done: { type: 'final' },
    },
  }),
  steps: [
    { advance: 50 },
    { send: { type: 'SAME_NO' } },
    { restore: true },
    { advance: 60 },
    { send: { type: 'SAME' } },
    { advance: 150 },
    { restore: true },
    { send: { type: 'CHILD' } },
    { send: { type: 'CHILD_NO' } },
    { advance: 60 },
    { restore: true },
    { advance: 60 },
  ],
});

// after.test.ts: after 0 chains, raise with delay 0, cancel after restore
cases.push({
  name: 'after 0 and delayed raise ids',
  evict: false,
  machine: createMachine({
    context: { log: [] as string[] },
    initial: 'a',
    on: { '*': { actions: assign({ log: ({ context, event }) => [...context.log, event.type] }) } },
    states: {
      a: { after: { 0: 'b' }, entry: raise({ type: 'R0' }, { delay: 0 }) },
      b: {
        entry: [raise({ type: 'LATE' }, { delay: 100, id: 'late' }), raise({ type: 'SOON' }, { delay: 0 })],
        on: { CANCEL: { actions: cancel('late') }, NEXT: 'c' },
      },
      c: { after: { 0: { target: 'd', actions: raise({ type: 'INNER' }) } } },
      d: { always: { target: 'e', guard: ({ context }) => context.log.includes('INNER') } },
      e: {},
    },
  }),
  steps: [
    { restore: true },
    { send: { type: 'CANCEL' } },
    { restore: true },
    { advance: 200 },
    { send: { type: 'NEXT' } },
    { restore: true },
    { advance: 0 },
  ],
});

// a transition whose only effect is on the scheduler: a targetless delayed raise / sendTo, a targetless cancel
const schedOnly = setup({}).createMachine({
  context: { got: [] as string[] },
  initial: 'a',
  on: {
    TICK: {
      actions: [assign({ got: ({ context, event }: any) => [...context.got, event.n] }), ({ event }: any) => effect(`tick ${event.n}`)],
    },
  },
  states: {
    a: {
      on: {
        LATER: { actions: raise({ type: 'TICK', n: 'later' } as any, { delay: 100, id: 'later' }) },
        LATER_SELF: { actions: sendTo(({ self }) => self, { type: 'TICK', n: 'self' } as any, { delay: 150, id: 'self' }) },
        STOP: { actions: [cancel('later'), cancel('self')] },
      },
    },
  },
});
cases.push({
  name: 'scheduler only: delayed raise, restore',
  machine: schedOnly,
  steps: [{ send: { type: 'LATER' } }, { send: { type: 'LATER_SELF' } }, { restore: true }, { advance: 200 }],
});
cases.push({
  name: 'scheduler only: delayed raise, down',
  machine: schedOnly,
  steps: [{ send: { type: 'LATER' } }, { down: 300 }, { advance: 10 }],
});
cases.push({
  name: 'scheduler only: cancel, restore',
  machine: schedOnly,
  steps: [
    { send: { type: 'LATER' } },
    { send: { type: 'LATER_SELF' } },
    { advance: 10 },
    { send: { type: 'STOP' } },
    { restore: true },
    { advance: 200 },
  ],
});
cases.push({
  name: 'scheduler only: cancel, down',
  machine: schedOnly,
  steps: [{ send: { type: 'LATER' } }, { send: { type: 'STOP' } }, { down: 300 }, { advance: 10 }],
});

// numbers through jsonb's numeric; strings with unusual but storable characters; deep nesting of arrays
cases.push({
  name: 'numbers and strings through jsonb',
  evict: true,
  machine: setup({}).createMachine({
    context: { xs: [] as unknown[] },
    on: {
      PUT: {
        actions: assign({
          xs: () => [
            Number.MIN_VALUE,
            Number.MAX_VALUE,
            -Number.MAX_VALUE,
            0.1 + 0.2,
            2 ** 53 + 2,
            1e21,
            1e-7,
            -1e-300,
            123456789.12345678,
            5e-324 * 3,
            '\u2028\u2029',
            '\uFEFFbom',
            'tab\tnl\n',
            '😀',
            '\\u0000 literal',
            '"quoted"',
            'é',
            'e\u0301',
            [[[[[]]]]],
            { '': 'empty key', ' ': 'space' },
          ],
        }),
      },
      SUM: { actions: assign({ xs: ({ context }) => [...context.xs, (context.xs as number[]).slice(3, 10).map((n) => n * 2)] }) },
    },
  }),
  steps: [{ send: { type: 'PUT' } }, { restore: true }, { send: { type: 'SUM' } }],
});

// overdue timers that stop a child holding its own timer, and re-enter a state with its own after
const beeper = setup({}).createMachine({
  initial: 'w',
  states: { w: { after: { 150: { target: 'b', actions: [sendParent({ type: 'BEEP' }), () => effect('child beep')] } } }, b: {} },
});
const catchUpMachine = setup({ actors: { beeper } }).createMachine({
  context: { log: [] as string[] },
  type: 'parallel',
  on: { '*': { actions: assign({ log: ({ context, event }) => [...context.log, event.type] }) } },
  states: {
    r1: {
      initial: 'withChild',
      states: {
        withChild: { invoke: { id: 'kid', src: 'beeper' }, after: { 100: { target: 'alone', actions: () => effect('r1 leaves') } } },
        alone: {},
      },
    },
    r2: {
      initial: 's',
      states: {
        s: {
          entry: () => effect('enter s'),
          after: { 120: { target: 't', actions: () => effect('s timer') } },
          on: { POKE: { target: 's', reenter: true } },
        },
        t: { after: { 30: { target: 'u', actions: raise({ type: 'U_DONE' }) } } },
        u: {},
      },
    },
    r3: { initial: 'a', states: { a: { after: { 50: { actions: raise({ type: 'POKE' }) } } } } },
  },
});
cases.push({
  name: 'catch-up: timers stopping a child and re-entering a state, down',
  machine: catchUpMachine,
  steps: [{ down: 400 }, { advance: 10 }],
});
cases.push({ name: 'catch-up: partly down', machine: catchUpMachine, steps: [{ advance: 60 }, { down: 100 }, { advance: 200 }] });

// parallel.test.ts / predictableExec.test.ts: assign order across parallel regions, exit before entry, document order
cases.push({
  name: 'assign order in parallel regions',
  evict: true,
  machine: setup({}).createMachine({
    context: { log: [] as string[] },
    type: 'parallel',
    states: {
      a: {
        initial: 'a1',
        states: {
          a1: {
            exit: assign({ log: ({ context }) => [...context.log, 'exit a1'] }),
            on: { GO: { target: 'a2', actions: assign({ log: ({ context }) => [...context.log, 'a go'] }) } },
          },
          a2: { entry: assign({ log: ({ context }) => [...context.log, 'enter a2'] }) },
        },
      },
      b: {
        initial: 'b1',
        states: {
          b1: {
            exit: assign({ log: ({ context }) => [...context.log, 'exit b1'] }),
            on: {
              GO: {
                target: 'b2',
                actions: [
                  assign({ log: ({ context }) => [...context.log, 'b go'] }),
                  ({ context }) => effect(`b sees ${context.log.length}`),
                ],
              },
            },
          },
          b2: { entry: assign({ log: ({ context }) => [...context.log, 'enter b2'] }), on: { BACK: 'b1' } },
        },
      },
    },
    id: 'pp',
  }),
  steps: [{ send: { type: 'GO' } }, { restore: true }, { send: { type: 'BACK' } }, { send: { type: 'GO' } }],
});

describeDifferential('h219: more machines, states and delays', cases);
