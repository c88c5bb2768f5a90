/**
 * Machines taken from XState's own tests (statelyai/xstate, packages/core/test/) — history (deep, shallow, in a parallel state), parallel regions done with output, `always` chains, delayed `raise` and `cancel`, `enqueueActions`, dynamic `after`, timers due at the same instant, a machine done at its start, `xstate.route` —
 * run as a plain actor and as an rmapp workflow side by side (test/helpers/xs-differential.ts): after every
 * step the state value, context, status, output and the side effects written to a ledger outside the
 * engine must be the same, with the worker crashed and the run restored mid-way, and with the worker down
 * across pending delays. What docs/xstate-semantics.md says differs (a callback run again on restore, …)
 * is left out. The other machines: test/xs-differential-actors.test.ts.
 */
import { assign, cancel, enqueueActions, raise, setup, createMachine } from 'xstate';
import { describeDifferential, effect, type XsCase } from './helpers/xs-differential.ts';

const cases: XsCase[] = [];

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

describeDifferential("machines from XState's tests (states): rmapp against plain XState", cases);
