/**
 * Machines taken from XState's own tests (statelyai/xstate, packages/core/test/) — spawned children with `systemId` and `stopChild`, child errors and done children, a child's own delayed events, chains of `after` with the worker down, `fromTransition`/`forwardTo`/tags, history inside an invoked child, `sendTo`/`sendParent` between invoked machines —
 * run as a plain actor and as an rmapp workflow side by side (test/helpers/xs-differential.ts): after every
 * step the state value, context, status, output and the side effects written to a ledger outside the
 * engine must be the same, with the worker crashed and the run restored mid-way, and with the worker down
 * across pending delays. What docs/xstate-semantics.md says differs (a callback run again on restore, …)
 * is left out. The other machines: test/xs-differential-states.test.ts.
 */
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
} from 'xstate';
import { describeDifferential, effect, type XsCase } from './helpers/xs-differential.ts';

const cases: XsCase[] = [];

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

describeDifferential("machines from XState's tests (actors): rmapp against plain XState", cases);
