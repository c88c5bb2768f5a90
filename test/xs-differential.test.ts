/**
 * Machines taken from XState's own tests (statelyai/xstate, packages/core/test/), run as a plain actor
 * and as an rmapp workflow side by side (test/helpers/xs-differential.ts): after every step the state
 * value, context, status, output and the side effects written to a ledger outside the engine must be
 * the same — with the worker crashed and the run restored mid-way, and with the worker down across
 * pending delays. What docs/xstate-semantics.md says differs (a callback run again on restore, …) is
 * left out.
 */
import { describe, expect, it } from 'vitest';
import {
  forwardTo,
  fromTransition,
  stateIn,
  assign,
  cancel,
  enqueueActions,
  raise,
  sendParent,
  sendTo,
  setup,
  spawnChild,
  stopChild,
  createMachine,
  type AnyStateMachine,
} from 'xstate';
import { effect, runDurable, runPlain, type XsReading, type XsStep } from './helpers/xs-differential.ts';

/** A machine from XState's own tests (each names its file), its input and the steps fed to both sides. */
interface Case {
  name: string;
  machine: AnyStateMachine;
  input?: unknown;
  steps: XsStep[];
  /** Also run with eviction on: the run leaves memory after every event and is restored by the next. */
  evict?: boolean;
}
const cases: Case[] = [];

// history.test.ts: deep history across a restore
cases.push({
  name: 'history deep',
  evict: true,
  machine: createMachine({
    initial: 'on',
    states: {
      on: {
        initial: 'first',
        entry: () => effect('enter on'),
        states: {
          first: { on: { SWITCH: 'second' } },
          second: { initial: 'A', states: { A: { on: { INNER: 'B' } }, B: { entry: () => effect('enter B') } } },
          hist: { type: 'history', history: 'deep' },
          shal: { type: 'history' },
        },
        on: { POWER: 'off' },
      },
      off: { on: { POWER: 'on.hist', SHALLOW: 'on.shal' } },
    },
  }),
  steps: [
    { send: { type: 'SWITCH' } },
    { send: { type: 'INNER' } },
    { send: { type: 'POWER' } },
    { restore: true },
    { send: { type: 'POWER' } },
    { send: { type: 'POWER' } },
    { restore: true },
    { send: { type: 'SHALLOW' } },
  ],
});

// parallel.test.ts / final.test.ts: parallel regions each reaching final, onDone with output
cases.push({
  name: 'parallel done + output',
  evict: true,
  machine: setup({}).createMachine({
    context: { log: [] as string[] },
    initial: 'p',
    states: {
      p: {
        type: 'parallel',
        states: {
          a: {
            initial: 'a1',
            states: { a1: { on: { A: 'a2' } }, a2: { type: 'final', entry: () => effect('a final') } },
            onDone: { actions: assign({ log: ({ context }) => [...context.log, 'a done'] }) },
          },
          b: {
            initial: 'b1',
            states: { b1: { on: { B: 'b2' } }, b2: { type: 'final' } },
            onDone: { actions: assign({ log: ({ context }) => [...context.log, 'b done'] }) },
          },
        },
        onDone: { target: 'end', actions: () => effect('p done') },
      },
      end: { type: 'final', output: ({ context }: any) => ({ log: context.log }) },
    },
    output: ({ event, context }) => ({ fromEvent: (event as any).output, n: context.log.length }),
  }),
  steps: [{ send: { type: 'A' } }, { restore: true }, { send: { type: 'B' } }],
});

// transient.test.ts: always chains with guards
cases.push({
  name: 'always chain guards',
  evict: true,
  machine: setup({}).createMachine({
    context: { n: 0 },
    initial: 'idle',
    states: {
      idle: { on: { GO: { target: 'check', actions: assign({ n: ({ context, event }) => context.n + (event as any).by }) } } },
      check: {
        always: [
          { guard: ({ context }) => context.n > 5, target: 'big', actions: () => effect('big') },
          { guard: ({ context }) => context.n > 2, target: 'mid' },
          { target: 'idle', actions: () => effect('back') },
        ],
      },
      mid: {
        always: { target: 'idle', guard: ({ context }) => context.n < 4 },
        on: { GO: { target: 'check', actions: assign({ n: ({ context, event }) => context.n + (event as any).by }) } },
      },
      big: { type: 'final' },
    },
  }),
  steps: [
    { send: { type: 'GO', by: 1 } },
    { send: { type: 'GO', by: 2 } },
    { restore: true },
    { send: { type: 'GO', by: 2 } },
    { send: { type: 'GO', by: 2 } },
  ],
});

// actions.test.ts: raise with delay, cancel
cases.push({
  name: 'raise delayed + cancel',
  machine: setup({}).createMachine({
    context: { got: [] as string[] },
    initial: 'a',
    on: {
      TICK: {
        actions: [
          assign({ got: ({ context, event }) => [...context.got, (event as any).n] }),
          ({ event }) => effect(`tick ${(event as any).n}`),
        ],
      },
    },
    states: {
      a: {
        entry: [
          raise({ type: 'TICK', n: '1' } as any, { delay: 100, id: 't1' }),
          raise({ type: 'TICK', n: '2' } as any, { delay: 200, id: 't2' }),
          raise({ type: 'TICK', n: '0' } as any, { delay: 0 }),
        ],
        on: { STOP2: { actions: cancel('t2') }, NEXT: 'b' },
      },
      b: {
        entry: raise(({ context }) => ({ type: 'TICK', n: `b${context.got.length}` }) as any, {
          delay: ({ context }) => context.got.length * 50,
        }),
      },
    },
  }),
  steps: [
    { advance: 50 },
    { restore: true },
    { advance: 60 },
    { send: { type: 'STOP2' } },
    { advance: 200 },
    { send: { type: 'NEXT' } },
    { restore: true },
    { advance: 200 },
  ],
});

// spawnChild.test.ts / system.test.ts: spawned children with systemId, stopChild, sendTo by system id after a restore
const counter = setup({}).createMachine({
  context: ({ input }: any) => ({ n: 0, name: input.name }),
  on: {
    INC: { actions: [assign({ n: ({ context }) => context.n + 1 }), ({ context }) => effect(`inc ${context.name}`)] },
    REPORT: { actions: sendParent(({ context }) => ({ type: 'REPORTED', name: context.name, n: context.n })) },
    TICKLATER: { actions: raise({ type: 'INC' }, { delay: 100 }) },
  },
  after: { 300: { actions: ({ context }) => effect(`child after ${context.name}`) } },
  exit: ({ context }) => effect(`exit ${context.name}`),
});
cases.push({
  name: 'spawnChild systemId stopChild',
  machine: setup({ actors: { counter } }).createMachine({
    context: { reports: [] as string[] },
    on: {
      SPAWN: {
        actions: enqueueActions(({ enqueue, event }) =>
          enqueue.spawnChild('counter', {
            id: (event as any).id,
            systemId: `sys-${(event as any).id}`,
            input: { name: (event as any).id },
          }),
        ),
      },
      STOP: { actions: stopChild(({ event }) => (event as any).id) },
      INC: { actions: sendTo(({ system, event }) => system.get(`sys-${(event as any).id}`), { type: 'INC' }) },
      REPORT: { actions: sendTo(({ system, event }) => system.get(`sys-${(event as any).id}`), { type: 'REPORT' }) },
      TL: { actions: sendTo(({ event }) => (event as any).id, { type: 'TICKLATER' }) },
      REPORTED: {
        actions: [
          assign({ reports: ({ context, event }) => [...context.reports, `${(event as any).name}=${(event as any).n}`] }),
          () => effect('reported'),
        ],
      },
    },
  }),
  steps: [
    { send: { type: 'SPAWN', id: 'a' } },
    { send: { type: 'SPAWN', id: 'b' } },
    { send: { type: 'INC', id: 'a' } },
    { restore: true },
    { send: { type: 'INC', id: 'b' } },
    { send: { type: 'TL', id: 'a' } },
    { restore: true },
    { advance: 150 },
    { send: { type: 'REPORT', id: 'a' } },
    { send: { type: 'STOP', id: 'b' } },
    { restore: true },
    { send: { type: 'SPAWN', id: 'b' } },
    { send: { type: 'REPORT', id: 'b' } },
    { advance: 400 },
  ],
});

// actions.test.ts: enqueueActions with check, assign partial updates, emit
cases.push({
  name: 'enqueueActions',
  evict: true,
  machine: setup({ guards: { isBig: ({ context }: any, p: { min: number }) => context.n >= p.min } }).createMachine({
    context: { n: 0, keep: 'kept', list: [] as number[] },
    on: {
      ADD: {
        actions: enqueueActions(({ enqueue, check, event, context }) => {
          enqueue.assign({ n: context.n + (event as any).by });
          enqueue(() => effect(`add ${(event as any).by}`));
          if (check({ type: 'isBig', params: { min: 3 } })) {
            enqueue.assign({ list: ({ context }: { context: { n: number; list: number[] } }) => [...context.list, context.n] });
            enqueue.raise({ type: 'BIG' });
          }
          enqueue.emit({ type: 'added' } as any);
        }),
      },
      BIG: { actions: () => effect('big') },
    },
  }),
  steps: [{ send: { type: 'ADD', by: 2 } }, { restore: true }, { send: { type: 'ADD', by: 2 } }, { send: { type: 'ADD', by: 2 } }],
});

// after.test.ts: after with dynamic delays from context, re-entered
cases.push({
  name: 'after dynamic',
  machine: setup({ delays: { wait: ({ context }: any) => context.ms } }).createMachine({
    context: { ms: 100, count: 0 },
    initial: 'a',
    states: {
      a: {
        entry: () => effect('enter a'),
        after: {
          wait: {
            target: 'a',
            reenter: true,
            actions: assign({ ms: ({ context }) => context.ms * 2, count: ({ context }) => context.count + 1 }),
          },
          1000: 'b',
        },
        on: { NOW: 'b' },
      },
      b: { type: 'final' },
    },
    output: ({ context }) => ({ count: context.count }),
  }),
  steps: [
    { advance: 100 },
    { restore: true },
    { advance: 150 },
    { restore: true },
    { advance: 100 },
    { advance: 400 },
    { restore: true },
    { advance: 400 },
  ],
});

// timers due at the same instant: plain XState fires them in the order they were scheduled
cases.push({
  name: 'timer ties',
  machine: setup({}).createMachine({
    context: { got: [] as string[] },
    on: {
      T: {
        actions: [
          assign({ got: ({ context, event }) => [...context.got, (event as any).n] }),
          ({ event }) => effect(`T ${(event as any).n}`),
        ],
      },
    },
    type: 'parallel',
    states: {
      r2: {
        entry: [
          raise({ type: 'T', n: 'z1' } as any, { delay: 100, id: 'zz' }),
          raise({ type: 'T', n: 'a1' } as any, { delay: 100, id: 'aa' }),
        ],
        after: { 100: { actions: () => effect('after r2') } },
      },
      r1: {
        after: { 100: { actions: () => effect('after r1') } },
        on: { LATER: { actions: raise({ type: 'T', n: 'later' } as any, { delay: 50, id: 'b' }) } },
      },
    },
  }),
  steps: [{ advance: 50 }, { send: { type: 'LATER' } }, { restore: true }, { advance: 60 }],
});

// final.test.ts: a machine done at its start, output from input
cases.push({
  name: 'done at start',
  input: { x: 3 },
  machine: setup({}).createMachine({
    context: ({ input }: any) => ({ x: input.x }),
    initial: 'a',
    states: { a: { always: 'b', entry: () => effect('a') }, b: { type: 'final', entry: () => effect('b') } },
    exit: () => effect('root exit'),
    output: ({ context }) => ({ y: context.x * 2 }),
  }),
  steps: [],
});

// invoke.test.ts / rehydration.test.ts: child error handled by onError, a done spawned child, restore
const thrower = setup({}).createMachine({
  initial: 'a',
  states: {
    a: {
      on: {
        BOOM: {
          actions: () => {
            throw new TypeError('kaboom');
          },
        },
      },
    },
  },
});
const quick = setup({}).createMachine({
  context: ({ input }: any) => ({ v: input.v }),
  initial: 'a',
  states: { a: { on: { FIN: 'b' } }, b: { type: 'final' } },
  output: ({ context }) => context.v,
});
cases.push({
  name: 'child error and done',
  machine: setup({ actors: { thrower, quick } }).createMachine({
    context: { errs: [] as string[], outs: [] as unknown[] },
    initial: 'run',
    states: {
      run: {
        invoke: {
          id: 't',
          src: 'thrower',
          onError: {
            target: 'failed',
            actions: assign({
              errs: ({ context, event }) => [...context.errs, `${(event.error as Error).name}:${(event.error as Error).message}`],
            }),
          },
        },
        entry: spawnChild('quick', { id: 'q', input: { v: 7 } }),
        on: {
          BOOM: { actions: sendTo('t', { type: 'BOOM' }) },
          FIN: { actions: sendTo('q', { type: 'FIN' }) },
          'xstate.done.actor.q': {
            actions: [assign({ outs: ({ context, event }) => [...context.outs, (event as any).output] }), () => effect('q done')],
          },
        },
      },
      failed: { on: { AGAIN: 'run' } },
    },
  }),
  steps: [
    { send: { type: 'FIN' } },
    { restore: true },
    { send: { type: 'BOOM' } },
    { restore: true },
    { send: { type: 'AGAIN' } },
    { send: { type: 'FIN' } },
  ],
});

// history.test.ts: history inside a parallel state, left and re-entered
cases.push({
  name: 'history in parallel',
  evict: true,
  machine: createMachine({
    initial: 'on',
    states: {
      on: {
        type: 'parallel',
        states: {
          x: { initial: 'x1', states: { x1: { on: { X: 'x2' } }, x2: { on: { X: 'x1' } } } },
          y: {
            initial: 'y1',
            states: { y1: { on: { Y: 'y2' } }, y2: { initial: 'deep1', states: { deep1: { on: { D: 'deep2' } }, deep2: {} } } },
          },
          h: { type: 'history', history: 'deep' },
        },
        on: { OFF: 'off' },
      },
      off: { on: { ON: 'on.h', ONFRESH: 'on' } },
    },
  }),
  steps: [
    { send: { type: 'X' } },
    { send: { type: 'Y' } },
    { send: { type: 'D' } },
    { send: { type: 'OFF' } },
    { restore: true },
    { send: { type: 'ON' } },
    { send: { type: 'X' } },
    { send: { type: 'OFF' } },
    { restore: true },
    { send: { type: 'ON' } },
  ],
});

// route.test.ts: xstate.route with guards, across a restore
cases.push({
  name: 'route',
  evict: true,
  machine: setup({ guards: { ready: ({ context }: any) => context.ready } }).createMachine({
    id: 'test',
    context: { ready: false },
    initial: 'a',
    on: { READY: { actions: assign({ ready: true }) } },
    states: { a: {}, b: { id: 'b', route: { guard: 'ready' }, entry: () => effect('b') }, c: { id: 'c', route: {} }, d: {} },
  }),
  steps: [
    { send: { type: 'xstate.route', to: '#b' } },
    { send: { type: 'READY' } },
    { restore: true },
    { send: { type: 'xstate.route', to: '#b' } },
    { send: { type: 'xstate.route', to: '#d' } },
    { send: { type: 'xstate.route', to: '#c' } },
  ],
});

// a child's own delayed events (sendParent, raise, after) and its cancel, across a restore, then the child stopped
const delayer = setup({}).createMachine({
  initial: 'a',
  states: {
    a: {
      on: {
        LATER: { actions: sendParent({ type: 'PONG', n: 'later' } as any, { delay: 100, id: 'lp' }) },
        SELF: { actions: raise({ type: 'MINE' }, { delay: 100, id: 'mine' }) },
        CANCEL: { actions: [cancel('lp'), cancel('mine')] },
        MINE: { actions: [() => effect('child mine'), sendParent({ type: 'PONG', n: 'mine' } as any)] },
      },
      after: { 250: { actions: [() => effect('child after'), sendParent({ type: 'PONG', n: 'after' } as any)] } },
    },
  },
});
const parentOfDelayer = setup({ actors: { delayer } }).createMachine({
  context: { got: [] as string[] },
  initial: 'with',
  on: {
    PONG: {
      actions: [
        assign({ got: ({ context, event }) => [...context.got, (event as any).n] }),
        ({ event }) => effect(`pong ${(event as any).n}`),
      ],
    },
  },
  states: {
    with: {
      invoke: { id: 'd', src: 'delayer' },
      on: {
        LATER: { actions: sendTo('d', { type: 'LATER' }) },
        SELF: { actions: sendTo('d', { type: 'SELF' }) },
        CANCEL: { actions: sendTo('d', { type: 'CANCEL' }) },
        LEAVE: 'without',
      },
    },
    without: { on: { BACK: 'with' } },
  },
});
cases.push({
  name: 'child timers then child stopped',
  machine: parentOfDelayer,
  steps: [{ send: { type: 'LATER' } }, { send: { type: 'SELF' } }, { restore: true }, { send: { type: 'LEAVE' } }, { advance: 300 }],
});
cases.push({
  name: 'child timers cancelled by the child',
  machine: parentOfDelayer,
  steps: [{ send: { type: 'LATER' } }, { send: { type: 'SELF' } }, { restore: true }, { send: { type: 'CANCEL' } }, { advance: 300 }],
});
cases.push({
  name: 'child timers fire after restore',
  machine: parentOfDelayer,
  steps: [
    { send: { type: 'LATER' } },
    { advance: 50 },
    { send: { type: 'SELF' } },
    { restore: true },
    { advance: 100 },
    { restore: true },
    { advance: 200 },
    { send: { type: 'LEAVE' } },
    { send: { type: 'BACK' } },
    { send: { type: 'LATER' } },
    { restore: true },
    { send: { type: 'LEAVE' } },
    { advance: 300 },
  ],
});

// after.test.ts / parallel: chains of after in regions and in a child, the worker down across them
const ticker = setup({}).createMachine({
  initial: 't0',
  states: {
    t0: { after: { 70: { target: 't1', actions: [() => effect('kid t1'), sendParent({ type: 'KID', at: 't1' } as any)] } } },
    t1: { after: { 70: { target: 't2', actions: [() => effect('kid t2'), sendParent({ type: 'KID', at: 't2' } as any, { delay: 30 })] } } },
    t2: { type: 'final' },
  },
  output: () => 'kid out',
});
cases.push({
  name: 'chains down',
  machine: setup({ actors: { ticker } }).createMachine({
    context: { log: [] as string[] },
    type: 'parallel',
    on: {
      KID: {
        actions: [
          assign({ log: ({ context, event }) => [...context.log, `kid ${(event as any).at}`] }),
          ({ event }) => effect(`parent heard ${(event as any).at}`),
        ],
      },
    },
    states: {
      r1: {
        initial: 'a',
        states: {
          a: { after: { 100: { target: 'b', actions: () => effect('r1 b') } } },
          b: { after: { 100: { target: 'c', actions: () => effect('r1 c') } }, on: { STOP: 'd' } },
          c: {
            entry: raise({ type: 'R1C' }, { delay: 25, id: 'r1c' }),
            on: { R1C: { actions: () => effect('r1c raised') } },
            after: { 10: { actions: cancel('r1c') } },
          },
          d: {},
        },
      },
      r2: {
        initial: 'x',
        states: {
          x: { after: { 150: { target: 'y', actions: [() => effect('r2 y'), raise({ type: 'STOP' })] } } },
          y: { invoke: { src: 'ticker', onDone: { target: 'z', actions: ({ event }) => effect(`r2 z ${event.output}`) } } },
          z: { type: 'final' },
        },
      },
    },
  }),
  steps: [{ advance: 40 }, { down: 500 }, { advance: 10 }, { send: { type: 'X' } }, { down: 200 }],
});
cases.push({
  name: 'chains down early',
  machine: cases.at(-1)!.machine,
  steps: [{ down: 130 }, { down: 60 }, { down: 90 }, { send: { type: 'X' } }, { down: 200 }],
});

// actorLogic.test.ts / system.test.ts / tags.test.ts: fromTransition, forwardTo, invoked siblings by systemId, guards reading tags and can()
const tally = fromTransition((state: { n: number }, event: any) => (event.type === 'ADD' ? { n: state.n + event.by } : state), { n: 0 });
const relay = setup({}).createMachine({
  on: { HELLO: { actions: [sendTo(({ system }) => system.get('counter'), { type: 'ADD', by: 10 } as never), () => effect('relayed')] } },
});
cases.push({
  name: 'transition forwardTo systemId tags',
  machine: setup({ actors: { tally, relay } }).createMachine({
    context: { seen: [] as string[] },
    initial: 'idle',
    invoke: [
      { id: 'tally', systemId: 'counter', src: 'tally' },
      { id: 'relay', src: 'relay' },
    ],
    states: {
      idle: { tags: ['calm'], on: { GO: 'busy' } },
      busy: { tags: ['busy'], on: { GO: 'idle', ONLYBUSY: { actions: () => effect('onlybusy') } } },
    },
    on: {
      ADD: { actions: forwardTo('tally') },
      HELLO: { actions: forwardTo('relay') },
      PEEK: {
        actions: assign({
          seen: ({ context, self }) => {
            const snap = self.getSnapshot();
            const tallyN = (snap.children as any).tally?.getSnapshot().context.n;
            return [...context.seen, `busy=${snap.hasTag('busy')} can=${snap.can({ type: 'ONLYBUSY' })} tally=${tallyN}`];
          },
        }),
      },
      CHECK: { guard: stateIn('#root.busy' as never), actions: () => effect('in busy') },
    },
    id: 'root',
  } as any),
  steps: [
    { send: { type: 'ADD', by: 2 } },
    { send: { type: 'PEEK' } },
    { restore: true },
    { send: { type: 'HELLO' } },
    { send: { type: 'GO' } },
    { restore: true },
    { send: { type: 'PEEK' } },
    { send: { type: 'CHECK' } },
    { send: { type: 'ADD', by: 1 } },
    { restore: true },
    { send: { type: 'PEEK' } },
  ],
});

// history.test.ts inside an invoked child machine, restored before and after it records history
const histChild = createMachine({
  initial: 'on',
  states: {
    on: {
      initial: 'first',
      states: {
        first: { on: { SWITCH: 'second' } },
        second: { initial: 's1', states: { s1: { on: { DEEPER: 's2' } }, s2: {} } },
        hist: { type: 'history', history: 'deep' },
      },
      on: { POWER: 'off' },
    },
    off: { on: { POWER: 'on.hist' } },
  },
});
cases.push({
  name: 'history in a child',
  evict: true,
  machine: setup({ actors: { histChild } }).createMachine({
    context: { seen: [] as unknown[] },
    invoke: { id: 'h', src: 'histChild' },
    on: {
      '*': {
        actions: [
          sendTo('h', ({ event }) => event),
          assign({ seen: ({ context, self }) => [...context.seen, (self.getSnapshot().children as any).h?.getSnapshot().value] }),
        ],
      },
    },
  }),
  steps: [
    { restore: true },
    { send: { type: 'SWITCH' } },
    { send: { type: 'DEEPER' } },
    { restore: true },
    { send: { type: 'POWER' } },
    { restore: true },
    { send: { type: 'POWER' } },
    { send: { type: 'POWER' } },
    { restore: true },
    { send: { type: 'POWER' } },
  ],
});

// invoke.test.ts: sendTo / sendParent between invoked machines
const child = setup({}).createMachine({
  id: 'child',
  context: ({ input }: any) => ({ count: input.start }),
  initial: 'active',
  states: {
    active: {
      on: {
        PING: {
          actions: [
            assign({ count: ({ context }) => context.count + 1 }),
            sendParent(({ context }) => ({ type: 'PONG', count: context.count })),
            () => effect('child ping'),
          ],
        },
        DONE: 'done',
        LATER: { actions: sendParent({ type: 'PONG', count: -1 }, { delay: 100 }) },
      },
    },
    done: { type: 'final' },
  },
  output: ({ context }) => ({ final: context.count }),
});
cases.push({
  name: 'invoke sendTo sendParent',
  machine: setup({ actors: { child } }).createMachine({
    context: { pongs: [] as number[], result: null as unknown },
    initial: 'running',
    states: {
      running: {
        invoke: {
          id: 'kid',
          src: 'child',
          input: { start: 10 },
          onDone: { target: 'finished', actions: assign({ result: ({ event }) => event.output }) },
        },
        on: {
          PING: { actions: sendTo('kid', { type: 'PING' }) },
          PING_LATER: { actions: sendTo('kid', { type: 'PING' }, { delay: 100 }) },
          LATER: { actions: sendTo('kid', { type: 'LATER' }) },
          FINISH: { actions: sendTo('kid', { type: 'DONE' }) },
          PONG: { actions: [assign({ pongs: ({ context, event }) => [...context.pongs, (event as any).count] }), () => effect('pong')] },
        },
      },
      finished: { type: 'final' },
    },
    output: ({ context }) => context,
  }),
  steps: [
    { send: { type: 'PING' } },
    { send: { type: 'PING_LATER' } },
    { restore: true },
    { advance: 100 },
    { send: { type: 'LATER' } },
    { advance: 50 },
    { restore: true },
    { advance: 60 },
    { send: { type: 'FINISH' } },
  ],
});

const withoutRestores = (steps: XsStep[]): XsStep[] => steps.filter((s) => !('restore' in s));
const visible = (rs: XsReading[]) => rs.filter((r) => r.step !== 'restore').map(({ effects: _effects, ...r }) => r);
const effects = (rs: XsReading[]) => rs.flatMap((r) => r.effects);

describe("machines from XState's tests: rmapp against plain XState", () => {
  for (const c of cases) {
    it(
      c.name,
      async () => {
        const plain = await runPlain(c.machine, c.input ?? {}, withoutRestores(c.steps));
        // Crash and restore where the case says (and with the worker down across `down` steps).
        const restored = await runDurable(c.machine, c.input ?? {}, c.steps);
        expect(visible(restored), `${c.name}: state, context, status and output after each step, restored`).toEqual(visible(plain));
        expect(effects(restored), `${c.name}: side effects in order, restored`).toEqual(effects(plain));
        if (c.evict) {
          const evicted = await runDurable(c.machine, c.input ?? {}, withoutRestores(c.steps), { evict: true });
          expect(evicted, `${c.name}: each reading with eviction after every event`).toEqual(plain);
        }
      },
      120_000,
    );
  }
});
