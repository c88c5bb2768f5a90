/**
 * Conformance cases on state structure: parallel regions, history, eventless transitions, guards,
 * event descriptors, internal vs reentering transitions, deep exits, `stateIn`, final states and their
 * done events. Each names the XState test (statelyai/xstate `packages/core/test/`) it is taken from.
 */
import { assign, setup, stateIn } from 'xstate';
import type { Case } from './case.ts';

type Log = { log: string[] };
/** Appends to `context.log` (typed loosely: the same helper serves machines of different events). */
const log = (entry: string) => assign(({ context }: { context: Log }) => ({ log: [...context.log, entry] })) as never;

export const stateCases: Case[] = [
  {
    id: 'parallel-simultaneous',
    from: 'parallel.test.ts › should handle simultaneous orthogonal transitions',
    killBetween: true,
    machine: setup({}).createMachine({
      id: 'p',
      type: 'parallel',
      states: {
        a: { initial: 'off', states: { off: { on: { A: 'on', BOTH: 'on' } }, on: { on: { A: 'off' } } } },
        b: { initial: 'off', states: { off: { on: { B: 'on', BOTH: 'on' } }, on: {} } },
      },
    }),
    steps: [{ type: 'A' }, { type: 'A' }, { type: 'BOTH' }, { type: 'A' }],
  },
  {
    id: 'parallel-region-to-region',
    from: 'parallel.test.ts › regions should be able to transition to orthogonal regions',
    machine: setup({}).createMachine({
      id: 'r',
      type: 'parallel',
      states: {
        Pages: { initial: 'About', states: { About: { id: 'About' }, Dashboard: { id: 'Dashboard' } } },
        Menu: {
          initial: 'Closed',
          states: {
            Closed: { id: 'Closed', on: { toggle: '#Opened' } },
            Opened: { id: 'Opened', on: { toggle: '#Closed', 'go to dashboard': ['#Dashboard', '#Opened'] } },
          },
        },
      },
    }),
    steps: [{ type: 'toggle' }, { type: 'go to dashboard' }, { type: 'toggle' }],
  },
  {
    id: 'history-shallow',
    from: 'history.test.ts › should go to the most recently visited state (explicit shallow history type)',
    killBetween: true,
    machine: setup({}).createMachine({
      id: 'h',
      initial: 'on',
      states: {
        on: {
          initial: 'first',
          states: { first: { on: { SWITCH: 'second' } }, second: {}, hist: { type: 'history', history: 'shallow' } },
          on: { POWER: 'off' },
        },
        off: { on: { POWER: 'on.hist' } },
      },
    }),
    steps: [{ type: 'SWITCH' }, { type: 'POWER' }, { type: 'POWER' }],
  },
  {
    id: 'history-deep',
    from: 'history.test.ts › should go to the deep history (explicit)',
    machine: setup({}).createMachine({
      id: 'dh',
      initial: 'on',
      states: {
        on: {
          initial: 'A',
          states: { A: { initial: 'A1', states: { A1: { on: { go: 'A2' } }, A2: {} } }, deep: { type: 'history', history: 'deep' } },
          on: { off: 'off' },
        },
        off: { on: { deep: 'on.deep' } },
      },
    }),
    steps: [{ type: 'go' }, { type: 'off' }, { type: 'deep' }],
  },
  {
    id: 'history-parallel-regions',
    from: 'history.test.ts › should re-enter each regions of parallel state correctly',
    machine: setup({}).createMachine({
      id: 'hp',
      initial: 'idle',
      states: {
        idle: { on: { start: 'work', resume: 'work.hist' } },
        work: {
          type: 'parallel',
          on: { pause: 'idle' },
          states: {
            a: { initial: 'a1', states: { a1: { on: { NEXT_A: 'a2' } }, a2: {} } },
            b: { initial: 'b1', states: { b1: { on: { NEXT_B: 'b2' } }, b2: {} } },
            hist: { type: 'history', history: 'deep' },
          },
        },
      },
    }),
    steps: [{ type: 'start' }, { type: 'NEXT_A' }, { type: 'pause' }, { type: 'resume' }, { type: 'NEXT_B' }],
  },
  {
    id: 'history-by-transient',
    from: 'history.test.ts › should go to the most recently visited state by a transient transition',
    machine: setup({ types: {} as { context: { back: boolean } } }).createMachine({
      id: 'ht',
      context: { back: false },
      initial: 'idle',
      states: {
        idle: {
          id: 'idle',
          initial: 'one',
          states: { one: { on: { NEXT: 'two' } }, two: {}, hist: { type: 'history' } },
          on: { DEPLOY: 'deploy' },
        },
        deploy: { on: { DONE: 'finish' } },
        finish: { always: '#idle.hist' },
      },
    }),
    steps: [{ type: 'NEXT' }, { type: 'DEPLOY' }, { type: 'DONE' }],
  },
  {
    id: 'always-guard-chain',
    from: 'transient.test.ts › should choose the first candidate target that matches the guard 1',
    killBetween: true,
    machine: setup({ types: {} as { context: { n: number } } }).createMachine({
      id: 'a',
      context: { n: 0 },
      initial: 'idle',
      states: {
        idle: {
          on: {
            add: { actions: assign({ n: ({ context, event }) => context.n + (event as unknown as { by: number }).by }), target: 'check' },
          },
        },
        check: { always: [{ guard: ({ context }) => context.n >= 10, target: 'big' }, { target: 'idle' }] },
        big: { always: 'done' },
        done: { type: 'final' },
      },
      output: ({ context }) => context,
    }),
    steps: [
      { type: 'add', by: 3 },
      { type: 'add', by: 4 },
      { type: 'add', by: 5 },
    ],
  },
  {
    id: 'always-reads-event',
    from: 'transient.test.ts › events that trigger eventless transitions should be preserved in guards',
    killBetween: true,
    machine: setup({}).createMachine({
      id: 'e',
      initial: 'idle',
      states: { idle: { always: { guard: ({ event }) => event.type === 'poke', target: 'poked' } }, poked: {} },
    }),
    steps: [{ type: 'nudge' }, { type: 'poke' }],
  },
  {
    id: 'always-after-raise',
    from: 'transient.test.ts › should select eventless transition before processing raised events',
    machine: setup({ types: {} as { context: Log } }).createMachine({
      id: 'ar',
      context: { log: [] },
      initial: 'a',
      states: {
        a: { on: { FOO: 'b' } },
        b: { entry: ({ self }) => self.send({ type: 'BAR' }), always: 'c', on: { BAR: 'd' } },
        c: { entry: log('c'), on: { BAR: 'e' } },
        d: {},
        e: { entry: log('e') },
      },
    }),
    steps: [{ type: 'FOO' }],
  },
  {
    id: 'always-in-parallel',
    from: 'transient.test.ts › should check for automatic transitions even after microsteps are done',
    machine: setup({}).createMachine({
      id: 'ap',
      type: 'parallel',
      states: {
        A: { initial: 'A1', states: { A1: { on: { A: 'A2' } }, A2: { id: 'A2' } } },
        B: { initial: 'B1', states: { B1: { always: { guard: stateIn('#A2') as never, target: 'B2' } }, B2: {} } },
        C: { initial: 'C1', states: { C1: { always: { guard: stateIn({ A: 'A2' }) as never, target: 'C2' } }, C2: {} } },
      },
    }),
    steps: [{ type: 'A' }],
  },
  {
    id: 'guard-on-payload',
    from: 'guards.test.ts › should transition if condition based on event is met',
    killBetween: true,
    machine: setup({}).createMachine({
      id: 'g',
      initial: 'locked',
      states: {
        locked: { on: { code: [{ guard: ({ event }) => event.code === 1234, target: 'open' }, { target: 'alarm' }] } },
        alarm: { on: { reset: 'locked' } },
        open: { type: 'final' },
      },
    }),
    steps: [{ type: 'code', code: 1 }, { type: 'reset' }, { type: 'code', code: 1234 }],
  },
  {
    id: 'guard-params-and-not',
    from: 'guards.test.ts › should resolve dynamic params using context value',
    machine: setup({
      types: {} as { context: { secret: number } },
      guards: { matches: (_: unknown, params: { value: number; secret: number }) => params.value === params.secret },
    }).createMachine({
      id: 'gp',
      context: { secret: 42 },
      initial: 'a',
      states: {
        a: {
          on: {
            try: [
              {
                guard: {
                  type: 'matches',
                  params: ({ context, event }) => ({ value: (event as unknown as { value: number }).value, secret: context.secret }),
                },
                target: 'b',
              },
            ],
          },
        },
        b: {},
      },
    }),
    steps: [
      { type: 'try', value: 1 },
      { type: 'try', value: 42 },
    ],
  },
  {
    id: 'descriptors-wildcard',
    from: 'eventDescriptors.test.ts › should support prefix matching with wildcards (+n, multi-prefix)',
    killBetween: true,
    machine: setup({ types: {} as { context: { seen: string[] } } }).createMachine({
      id: 'w',
      context: { seen: [] },
      initial: 'a',
      states: {
        a: {
          on: {
            'user.*': { actions: assign({ seen: ({ context, event }) => [...context.seen, `user:${event.type}`] }) },
            '*': { actions: assign({ seen: ({ context, event }) => [...context.seen, `any:${event.type}`] }) },
          },
        },
      },
    }),
    steps: [{ type: 'user.login' }, { type: 'other' }, { type: 'user.logout' }],
  },
  {
    id: 'descriptors-explicit-first',
    from: 'eventDescriptors.test.ts › should prioritize explicit descriptor even if wildcard comes first',
    machine: setup({}).createMachine({ id: 'd', initial: 'A', states: { A: { on: { '*': 'fail', NEXT: 'pass' } }, fail: {}, pass: {} } }),
    steps: [{ type: 'NEXT' }],
  },
  {
    id: 'internal-child-no-reenter',
    from: 'internalTransitions.test.ts › parent state should enter child state without re-entering self',
    machine: setup({ types: {} as { context: Log } }).createMachine({
      id: 'it',
      context: { log: [] },
      initial: 'foo',
      states: {
        foo: {
          initial: 'a',
          entry: log('enter foo'),
          exit: log('exit foo'),
          states: { a: { entry: log('enter a') }, b: { entry: log('enter b') } },
          on: { CLICK_B: '.b', REENTER_A: { target: '.a', reenter: true } },
        },
      },
    }),
    steps: [{ type: 'CLICK_B' }, { type: 'REENTER_A' }],
  },
  {
    id: 'self-reenter',
    from: 'actions.test.ts › should exit and enter the state for reentering self-transitions (shallow)',
    killBetween: true,
    machine: setup({ types: {} as { context: { entries: number } } }).createMachine({
      id: 's',
      context: { entries: 0 },
      initial: 'a',
      states: {
        a: {
          entry: assign({ entries: ({ context }) => context.entries + 1 }),
          on: { stay: { target: 'a' }, again: { target: 'a', reenter: true } },
        },
      },
    }),
    steps: [{ type: 'stay' }, { type: 'again' }, { type: 'again' }, { type: 'stay' }],
  },
  {
    id: 'targetless-keeps-child',
    from: 'internalTransitions.test.ts › should maintain the child state when targetless transition is handled by parent',
    machine: setup({ types: {} as { context: { hits: number } } }).createMachine({
      id: 'tl',
      context: { hits: 0 },
      initial: 'foo',
      states: {
        foo: {
          initial: 'a',
          states: { a: { on: { NEXT: 'b' } }, b: {} },
          on: { hit: { actions: assign({ hits: ({ context }) => context.hits + 1 }) } },
        },
      },
    }),
    steps: [{ type: 'NEXT' }, { type: 'hit' }, { type: 'miss' }, { type: 'hit' }],
  },
  {
    id: 'deep-exit-enter',
    from: 'deep.test.ts › should exit deep and enter deep (A_S)',
    machine: setup({ types: {} as { context: Log } }).createMachine({
      id: 'deep',
      context: { log: [] },
      initial: 'A',
      states: {
        A: {
          on: { A_S: '#P.Q.R.S' },
          initial: 'B',
          states: { B: { exit: log('exit B'), initial: 'C', states: { C: { exit: log('exit C') } } } },
          exit: log('exit A'),
        },
        P: {
          id: 'P',
          entry: log('enter P'),
          initial: 'Q',
          states: {
            Q: {
              entry: log('enter Q'),
              initial: 'R',
              states: { R: { entry: log('enter R'), initial: 'S', states: { S: { entry: log('enter S') } } } },
            },
          },
        },
      },
    }),
    steps: [{ type: 'A_S' }],
  },
  {
    id: 'final-parallel-done',
    from: 'final.test.ts › should emit a done state event for a parallel state when its parallel children reach their final states',
    killBetween: true,
    machine: setup({ types: {} as { context: { revealed: boolean } } }).createMachine({
      id: 'fp',
      context: { revealed: false },
      initial: 'first',
      states: {
        first: {
          type: 'parallel',
          states: {
            alpha: { initial: 'one', states: { one: { on: { NEXT_1: 'two' } }, two: { type: 'final' } } },
            beta: { initial: 'three', states: { three: { on: { NEXT_2: 'four' } }, four: { type: 'final' } } },
          },
          onDone: { target: 'second', actions: assign({ revealed: true }) },
        },
        second: { type: 'final', output: ({ context }) => ({ revealed: context.revealed }) },
      },
      output: ({ context }) => ({ at: 'root', revealed: context.revealed }),
    }),
    steps: [{ type: 'NEXT_1' }, { type: 'NEXT_2' }],
  },
  {
    id: 'final-nested-ondone',
    from: 'final.test.ts › state output should be able to use context updated by the entry action of the reached final state',
    machine: setup({ types: {} as { context: { v: number } } }).createMachine({
      id: 'f',
      context: { v: 0 },
      initial: 'work',
      states: {
        work: {
          initial: 'one',
          states: {
            one: { on: { next: 'two' } },
            two: { on: { next: 'fin' } },
            fin: { type: 'final', entry: assign({ v: 1 }), output: ({ context }) => ({ v: context.v }) },
          },
          onDone: { target: 'over', actions: assign({ v: ({ event }) => (event.output as { v: number }).v + 41 }) },
        },
        over: { type: 'final' },
      },
      output: ({ context }) => ({ v: context.v }),
    }),
    steps: [{ type: 'next' }, { type: 'next' }],
  },
];
