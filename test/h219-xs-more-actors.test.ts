/**
 * More machines from XState's own tests (statelyai/xstate, packages/core/test/; each names its file),
 * run as a plain actor and as an rmapp workflow side by side (test/helpers/xs-differential.ts), beyond
 * test/xs-differential-actors.test.ts: spawned machines that invoke their own promises, reached by
 * `system.get` (delayed too); error events from a throwing child machine and a rejecting promise in
 * parallel regions; an actor deep in the tree, a child held in error, refs spawned in the context
 * factory; a step's output and eventless guards on it; observables and callbacks with input and
 * `onSnapshot`; systemIds registered again by a re-entered invoke and by stopChild + spawnChild in one
 * step; refs held in arrays and nested objects; inline machines invoked inside a named child machine. The states: test/h219-xs-more-states.test.ts.
 */
import {
  assign,
  createMachine,
  fromCallback,
  fromObservable,
  fromPromise,
  fromTransition,
  sendParent,
  sendTo,
  setup,
  spawnChild,
  stopChild,
} from 'xstate';
import { step } from '../src/index.ts';
import { describeDifferential, effect, type XsCase } from './helpers/xs-differential.ts';

const cases: XsCase[] = [];

// spawnChild of machines that invoke their own promises; system.get / sendTo by systemId after a restore
const fetcher = fromPromise(async ({ input }: { input: { n: number } }) => {
  effect(`fetch ${input.n}`);
  return input.n * 10;
});
const worker = setup({ actors: { fetcher } }).createMachine({
  context: ({ input }: any) => ({ n: input.n, got: [] as number[] }),
  initial: 'loading',
  states: {
    loading: {
      invoke: {
        src: 'fetcher',
        input: ({ context }) => ({ n: context.n }),
        onDone: {
          target: 'ready',
          actions: [
            assign({ got: ({ context, event }) => [...context.got, event.output] }),
            sendParent(({ context, event }) => ({ type: 'LOADED', n: context.n, v: event.output })),
          ],
        },
      },
    },
    ready: {
      on: {
        AGAIN: 'loading',
        PING: { actions: [sendParent(({ context }) => ({ type: 'PONG', n: context.n })), () => effect('ping')] },
        FINISH: 'done',
      },
    },
    done: { type: 'final', output: ({ context }) => ({ sum: context.got.reduce((a: number, b: number) => a + b, 0) }) },
  },
});
cases.push({
  name: 'spawned machines with invoked promises, system.get',
  evict: true,
  machine: setup({ actors: { worker } }).createMachine({
    context: { log: [] as unknown[] },
    initial: 'on',
    states: {
      on: {
        entry: [
          spawnChild('worker', { id: 'w1', systemId: 'one', input: { n: 1 } }),
          spawnChild('worker', { id: 'w2', systemId: 'two', input: { n: 2 } }),
        ],
        on: {
          LOADED: { actions: assign({ log: ({ context, event }: any) => [...context.log, ['loaded', event.n, event.v]] }) },
          PONG: { actions: assign({ log: ({ context, event }: any) => [...context.log, ['pong', event.n]] }) },
          PING_ONE: { actions: sendTo(({ system }) => system.get('one'), { type: 'PING' }) },
          PING_TWO: { actions: sendTo(({ system }) => system.get('two'), { type: 'PING' }, { delay: 50 }) },
          AGAIN: { actions: sendTo(({ system }) => system.get('two'), { type: 'AGAIN' }) },
          FINISH: { actions: [sendTo('w1', { type: 'FINISH' }), sendTo('w2', { type: 'FINISH' })] },
          STOP1: { actions: stopChild('w1') },
          'xstate.done.actor.*': {
            actions: assign({ log: ({ context, event }: any) => [...context.log, ['done', event.type, event.output ?? 'none']] }),
          },
        },
      },
    },
  }),
  steps: [
    { send: { type: 'PING_ONE' } },
    { restore: true },
    { send: { type: 'PING_TWO' } },
    { restore: true },
    { advance: 60 },
    { send: { type: 'AGAIN' } },
    { restore: true },
    { send: { type: 'PING_ONE' } },
    { send: { type: 'FINISH' } },
    { restore: true },
    { send: { type: 'PING_ONE' } },
    { send: { type: 'STOP1' } },
  ],
});

// errors.test.ts / invoke.test.ts: a throwing child machine, onError before onDone, a rejecting promise, ordering
const thrower = setup({}).createMachine({
  initial: 'a',
  states: {
    a: {
      on: {
        BOOM: {
          actions: () => {
            throw new Error('child boom');
          },
        },
        FIN: 'b',
      },
    },
    b: { type: 'final' },
  },
});
const rejecter = fromPromise(async ({ input }: { input: { fail: boolean } }) => {
  if (input.fail) throw new TypeError('nope');
  return 'fine';
});
cases.push({
  name: 'error events from children, ordering',
  machine: setup({ actors: { thrower, rejecter } }).createMachine({
    context: { log: [] as string[] },
    type: 'parallel',
    states: {
      m: {
        initial: 'run',
        states: {
          run: {
            invoke: {
              id: 't',
              src: 'thrower',
              onDone: { target: 'ok', actions: assign({ log: ({ context }) => [...context.log, 'm done'] }) },
              onError: {
                target: 'bad',
                actions: assign({
                  log: ({ context, event }) => [...context.log, `m err ${(event.error as Error).message} ${(event.error as Error).name}`],
                }),
              },
            },
            on: { BOOM: { actions: sendTo('t', { type: 'BOOM' }) }, FIN: { actions: sendTo('t', { type: 'FIN' }) } },
          },
          ok: { on: { AGAIN: 'run' } },
          bad: { on: { AGAIN: 'run' } },
        },
      },
      p: {
        initial: 'idle',
        states: {
          idle: { on: { TRY: 'trying', TRYFAIL: 'failing' } },
          trying: {
            invoke: {
              src: 'rejecter',
              input: { fail: false },
              onDone: { target: 'idle', actions: assign({ log: ({ context, event }) => [...context.log, `p ok ${event.output}`] }) },
            },
          },
          failing: {
            invoke: {
              src: 'rejecter',
              input: { fail: true },
              onError: {
                target: 'idle',
                actions: assign({ log: ({ context, event }) => [...context.log, `p err ${(event.error as Error).name}`] }),
              },
            },
          },
        },
      },
    },
  }),
  steps: [
    { send: { type: 'BOOM' } },
    { restore: true },
    { send: { type: 'AGAIN' } },
    { send: { type: 'TRY' } },
    { send: { type: 'TRYFAIL' } },
    { restore: true },
    { send: { type: 'FIN' } },
    { send: { type: 'AGAIN' } },
    { restore: true },
    { send: { type: 'BOOM' } },
  ],
});

// rehydration.test.ts: an actor deep in the tree; a child held in error; refs spawned in the context factory
const counter = fromTransition((n: number, e: { type: string }) => (e.type === 'INC' ? n + 1 : n), 0);
const middle = setup({ actors: { counter } }).createMachine({
  context: ({ spawn }) => ({ leaf: spawn('counter', { id: 'leaf', systemId: 'leaf' }) }),
  on: {
    INC: { actions: sendTo(({ context }) => context.leaf, { type: 'INC' }) },
    REPORT: { actions: sendParent(({ context }) => ({ type: 'LEAF', n: context.leaf.getSnapshot().context })) },
  },
});
const crasher = setup({}).createMachine({
  on: {
    BOOM: {
      actions: () => {
        throw new RangeError('held boom');
      },
    },
  },
});
cases.push({
  name: 'deep tree, held error child, context spawn',
  evict: true,
  machine: setup({ actors: { middle, counter, crasher } }).createMachine({
    context: ({ spawn }) => ({ top: spawn('counter', { id: 'top' }), log: [] as unknown[] }),
    invoke: { id: 'mid', src: 'middle', onSnapshot: { actions: () => effect('mid snapshot') } },
    initial: 'a',
    on: {
      LEAF: {
        actions: assign({ log: ({ context, event }: any) => [...context.log, ['leaf', event.n, context.top.getSnapshot().context]] }),
      },
      INC_LEAF: { actions: sendTo(({ system }) => system.get('leaf'), { type: 'INC' }) },
      INC_MID: { actions: sendTo('mid', { type: 'INC' }) },
      INC_TOP: { actions: sendTo(({ context }) => context.top, { type: 'INC' }) },
      REPORT: { actions: sendTo('mid', { type: 'REPORT' }) },
      SPAWN_C: { actions: spawnChild('crasher', { id: 'c' }) },
      BOOM: { actions: sendTo('c', { type: 'BOOM' }) },
      'xstate.error.actor.c': {
        actions: assign({ log: ({ context, event }: any) => [...context.log, ['err', event.error.name, event.error.message]] }),
      },
      READ_C: {
        actions: assign({
          log: ({ context, self }: any) => {
            const c = self.getSnapshot().children.c?.getSnapshot();
            return [...context.log, ['c', c?.status ?? 'gone', c?.error?.message ?? 'none', c?.error instanceof RangeError]];
          },
        }),
      },
    },
    states: { a: {} },
  }),
  steps: [
    { send: { type: 'INC_LEAF' } },
    { restore: true },
    { send: { type: 'INC_MID' } },
    { send: { type: 'INC_TOP' } },
    { restore: true },
    { send: { type: 'REPORT' } },
    { send: { type: 'SPAWN_C' } },
    { send: { type: 'BOOM' } },
    { send: { type: 'READ_C' } },
    { restore: true },
    { send: { type: 'READ_C' } },
    { send: { type: 'INC_LEAF' } },
    { send: { type: 'REPORT' } },
  ],
});

// a step's output assigned, then eventless transitions guarded on that context
const add = step(async ({ input }: { input: { a: number; b: number } }) => {
  effect(`add ${input.a}+${input.b}`);
  return { sum: input.a + input.b, parts: [[input.a], [input.b]] };
});
cases.push({
  name: 'step output then always guards',
  evict: true,
  machine: setup({ actors: { add } }).createMachine({
    context: { total: 0, parts: [] as unknown[], log: [] as string[] },
    initial: 'idle',
    states: {
      idle: { on: { ADD: 'adding' } },
      adding: {
        invoke: {
          src: 'add',
          input: ({ context, event }: any) => ({ a: context.total, b: event.n }),
          onDone: {
            target: 'check',
            actions: assign({
              total: ({ event }) => event.output.sum,
              parts: ({ context, event }) => [...context.parts, event.output.parts],
            }),
          },
        },
      },
      check: {
        always: [
          { guard: ({ context }) => context.total > 10, target: 'big', actions: assign({ log: ({ context }) => [...context.log, 'big'] }) },
          {
            guard: ({ context }) => context.total % 2 === 0,
            target: 'idle',
            actions: assign({ log: ({ context }) => [...context.log, 'even'] }),
          },
          { target: 'idle', actions: assign({ log: ({ context }) => [...context.log, 'odd'] }) },
        ],
      },
      big: { type: 'final' },
    },
    output: ({ context }) => context,
  }),
  steps: [{ send: { type: 'ADD', n: 3 } }, { restore: true }, { send: { type: 'ADD', n: 5 } }, { send: { type: 'ADD', n: 4 } }],
});

// invoke.test.ts: observables and callbacks with input and onSnapshot
const numbers = fromObservable(
  ({ input }: { input: { from: number; count: number } }) =>
    ({
      subscribe(sub: any) {
        for (let i = 0; i < input.count; i++) sub.next?.(input.from + i);
        sub.complete?.();
        return { unsubscribe: () => {} };
      },
    }) as any,
);
const echo = fromCallback(({ input, sendBack, receive }: any) => {
  receive((e: any) => sendBack({ type: 'ECHO', v: `${input.prefix}${e.v}` }));
});
cases.push({
  name: 'observable and callback with input, onSnapshot',
  evict: true,
  machine: setup({ actors: { numbers, echo } }).createMachine({
    context: { seen: [] as unknown[] },
    initial: 'a',
    states: {
      a: {
        invoke: [
          {
            id: 'nums',
            src: 'numbers',
            input: { from: 5, count: 3 },
            onSnapshot: {
              actions: assign({
                seen: ({ context, event }) => [...context.seen, ['snap', event.snapshot.status, event.snapshot.context ?? 'none']],
              }),
            },
            onDone: { actions: assign({ seen: ({ context }) => [...context.seen, 'nums done'] }) },
          },
          { id: 'echo', src: 'echo', input: ({ context }) => ({ prefix: `p${context.seen.length}:` }) },
        ],
        on: {
          SAY: { actions: sendTo('echo', ({ event }: any) => ({ type: 'SAY', v: event.v })) },
          ECHO: { actions: assign({ seen: ({ context, event }: any) => [...context.seen, event.v] }) },
          NEXT: 'b',
        },
      },
      b: { on: { BACK: 'a' } },
    },
  }),
  steps: [
    { send: { type: 'SAY', v: 'x' } },
    { restore: true },
    { send: { type: 'SAY', v: 'y' } },
    { send: { type: 'NEXT' } },
    { restore: true },
    { send: { type: 'BACK' } },
    { send: { type: 'SAY', v: 'z' } },
  ],
});

// system.test.ts: systemIds re-registered by a reentering transition and by stopChild + spawnChild in one step
const sub = setup({}).createMachine({
  context: ({ input }: any) => ({ gen: input?.gen ?? 0, got: [] as string[] }),
  on: {
    POKE: {
      actions: [
        assign({ got: ({ context, event }: any) => [...context.got, event.from] }),
        sendParent(({ context, event }: any) => ({ type: 'POKED', gen: context.gen, from: event.from })),
      ],
    },
  },
});
const holder = setup({ actors: { sub } }).createMachine({
  context: ({ input }: any) => ({ gen: input.gen }),
  invoke: { id: 'inner', src: 'sub', systemId: 'subchild', input: ({ context }) => ({ gen: context.gen }) },
  on: { POKED: { actions: sendParent(({ event }: any) => ({ ...event })) } },
});
cases.push({
  name: 'systemId re-registration across restores',
  evict: true,
  machine: setup({ actors: { holder, sub } }).createMachine({
    context: { gen: 0, log: [] as unknown[] },
    initial: 'listening',
    entry: spawnChild('holder', { id: 'h', input: { gen: 0 } }),
    states: {
      listening: { invoke: { id: 'l', src: 'sub', systemId: 'listener', input: ({ context }) => ({ gen: context.gen }) } },
    },
    on: {
      RESTART: { target: '.listening', actions: assign({ gen: ({ context }) => context.gen + 1 }) },
      RESPAWN: {
        actions: [
          assign({ gen: ({ context }) => context.gen + 1 }),
          stopChild('h'),
          spawnChild('holder', { id: 'h', input: ({ context }: any) => ({ gen: context.gen }) }),
        ],
      },
      POKE_L: { actions: sendTo(({ system }) => system.get('listener'), { type: 'POKE', from: 'l' } as any) },
      POKE_S: { actions: sendTo(({ system }) => system.get('subchild'), { type: 'POKE', from: 's' } as any) },
      POKE_S_LATER: { actions: sendTo(({ system }) => system.get('subchild'), { type: 'POKE', from: 'later' } as any, { delay: 100 }) },
      POKED: { actions: assign({ log: ({ context, event }: any) => [...context.log, [event.from, event.gen]] }) },
    },
  }),
  steps: [
    { send: { type: 'POKE_L' } },
    { send: { type: 'RESTART' } },
    { send: { type: 'POKE_L' } },
    { restore: true },
    { send: { type: 'POKE_S' } },
    { send: { type: 'POKE_S_LATER' } },
    { send: { type: 'RESPAWN' } },
    { restore: true },
    { send: { type: 'POKE_S' } },
    { advance: 150 },
    { send: { type: 'RESTART' } },
    { restore: true },
    { send: { type: 'POKE_L' } },
  ],
});

// spawn.test.ts: refs held in arrays and nested objects, a finished child's ref kept (a null-prototype object: test/h219-xs-null-prototype.test.ts)
const tally = setup({}).createMachine({
  context: ({ input }: any) => ({ n: input.n }),
  initial: 'on',
  states: { on: { on: { INC: { actions: assign({ n: ({ context }) => context.n + 1 }) }, END: 'off' } }, off: { type: 'final' } },
  output: ({ context }) => ({ n: context.n }),
});
cases.push({
  name: 'refs in arrays and objects, finished ref kept',
  evict: true,
  machine: setup({ actors: { tally } }).createMachine({
    context: ({ spawn }) => ({
      list: [spawn('tally', { id: 't0', input: { n: 0 } }), spawn('tally', { id: 't1', input: { n: 10 } })],
      byName: { deep: { ref: spawn('tally', { id: 't2', input: { n: 20 } }) } },
      read: [] as unknown[],
    }),
    on: {
      INC: {
        actions: [
          sendTo(({ context }) => context.list[1]!, { type: 'INC' }),
          sendTo(({ context }) => context.byName.deep.ref, { type: 'INC' }),
        ],
      },
      END: { actions: sendTo(({ context }) => context.list[0]!, { type: 'END' }) },
      READ: {
        actions: assign({
          read: ({ context }) => [
            ...context.read,
            context.list.map((r: any) => [r.id, r.getSnapshot().status, r.getSnapshot().context.n, r.getSnapshot().output ?? 'none']),
            [context.byName.deep.ref.getSnapshot().context.n],
          ],
        }),
      },
    },
  }),
  steps: [
    { send: { type: 'INC' } },
    { restore: true },
    { send: { type: 'END' } },
    { send: { type: 'READ' } },
    { restore: true },
    { send: { type: 'INC' } },
    { send: { type: 'READ' } },
  ],
});

cases.push({
  name: 'own __proto__ key from event data',
  evict: true,
  machine: setup({}).createMachine({
    context: { dict: {} as Record<string, number>, seen: [] as unknown[] },
    on: {
      PUT: {
        actions: assign({
          dict: ({ context, event }: any) => ({
            ...context.dict,
            [event.key]: (Object.hasOwn(context.dict, event.key) ? context.dict[event.key]! : 0) + 1,
          }),
        }),
      },
      READ: {
        actions: assign({
          seen: ({ context }) => [
            ...context.seen,
            [
              Object.keys(context.dict).sort(),
              Object.hasOwn(context.dict, '__proto__'),
              Object.getPrototypeOf(context.dict) === Object.prototype,
            ],
          ],
        }),
      },
    },
  }),
  steps: [
    { send: { type: 'PUT', key: '__proto__' } },
    { send: { type: 'PUT', key: 'constructor' } },
    { send: { type: 'READ' } },
    { restore: true },
    { send: { type: 'PUT', key: '__proto__' } },
    { send: { type: 'READ' } },
  ],
});

// invoke.test.ts: inline machine logic invoked inside a named child machine (generated srcs), in a parallel state
const inlineInner = createMachine({
  context: { n: 0 },
  on: {
    INC: {
      actions: [assign({ n: ({ context }) => context.n + 1 }), sendParent(({ context }) => ({ type: 'N', n: context.n + 1 }) as any)],
    },
  },
});
const withInline = createMachine({
  context: { got: [] as number[] },
  invoke: { id: 'in', src: inlineInner },
  initial: 'p',
  states: {
    p: {
      type: 'parallel',
      states: { x: { invoke: { id: 'in2', src: createMachine({ on: { PING: { actions: sendParent({ type: 'PONG' }) } } }) } }, y: {} },
    },
  },
  on: {
    INC: { actions: sendTo('in', { type: 'INC' }) },
    PING: { actions: sendTo('in2', { type: 'PING' }) },
    PONG: { actions: [() => effect('pong'), sendParent({ type: 'PONGED' })] },
    N: {
      actions: [
        assign({ got: ({ context, event }: any) => [...context.got, event.n] }),
        sendParent(({ event }: any) => ({ type: 'N', n: event.n })),
      ],
    },
  },
});
cases.push({
  name: 'inline invokes in a named child machine',
  evict: true,
  machine: setup({ actors: { withInline } }).createMachine({
    context: { log: [] as unknown[] },
    invoke: { id: 'm', src: 'withInline' },
    on: {
      INC: { actions: sendTo('m', { type: 'INC' }) },
      PING: { actions: sendTo('m', { type: 'PING' }) },
      N: { actions: assign({ log: ({ context, event }: any) => [...context.log, ['n', event.n]] }) },
      PONGED: { actions: assign({ log: ({ context }) => [...context.log, 'ponged'] }) },
    },
  }),
  steps: [
    { send: { type: 'INC' } },
    { restore: true },
    { send: { type: 'INC' } },
    { send: { type: 'PING' } },
    { restore: true },
    { send: { type: 'PING' } },
    { send: { type: 'INC' } },
  ],
});

describeDifferential('h219: more machines, actors', cases);
