/**
 * Conformance with plain XState (issue 15): machines built on the features XState's own tests cover,
 * each run under plain XState and under rmapp, and compared on state, context, status and output at
 * the end. Two rmapp modes: one worker for the whole run, and a new worker (a stopped engine, a fresh
 * one restoring the run from the database) between every pair of events. Events are sent one at a time
 * once the run has settled, as a user's would be.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  assign,
  cancel,
  createActor,
  emit,
  enqueueActions,
  fromCallback,
  fromTransition,
  raise,
  sendParent,
  sendTo,
  setup,
  type AnyStateMachine,
} from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, type Database, type Engine } from '../src/index.ts';
import { useTestDatabase } from './helpers/postgres.ts';

type Ev = { type: string; [k: string]: unknown };
interface Case {
  name: string;
  machine: AnyStateMachine;
  events: Ev[];
}

const child = setup({ types: {} as { context: { n: number } } }).createMachine({
  id: 'child',
  context: { n: 0 },
  initial: 'counting',
  states: {
    counting: { on: { bump: { actions: assign({ n: ({ context }) => context.n + 1 }) }, finish: 'done' } },
    done: { type: 'final' },
  },
  output: ({ context }) => ({ n: context.n }),
});

const pinger = setup({}).createMachine({
  id: 'pinger',
  initial: 'idle',
  states: { idle: { on: { ping: { actions: sendParent({ type: 'pong' }) } } } },
});

const counterLogic = fromTransition((state: { total: number }, event: { type: string; by?: number }) => (event.type === 'add' ? { total: state.total + (event.by ?? 1) } : state), { total: 0 });

const ticker = fromCallback(({ sendBack, receive }) => {
  receive((e) => {
    if (e.type === 'tick') sendBack({ type: 'tocked' });
  });
});

const cases: Case[] = [
  {
    name: 'parallel regions',
    machine: setup({}).createMachine({
      id: 'p',
      type: 'parallel',
      states: {
        a: { initial: 'off', states: { off: { on: { A: 'on' } }, on: { on: { A: 'off' } } } },
        b: { initial: 'off', states: { off: { on: { B: 'on' } }, on: {} } },
      },
    }),
    events: [{ type: 'A' }, { type: 'B' }, { type: 'A' }, { type: 'A' }],
  },
  {
    name: 'shallow history',
    machine: setup({}).createMachine({
      id: 'h',
      initial: 'on',
      states: {
        on: { initial: 'one', states: { one: { on: { next: 'two' } }, two: {}, hist: { type: 'history' } }, on: { off: 'off' } },
        off: { on: { back: 'on.hist' } },
      },
    }),
    events: [{ type: 'next' }, { type: 'off' }, { type: 'back' }],
  },
  {
    name: 'deep history',
    machine: setup({}).createMachine({
      id: 'dh',
      initial: 'on',
      states: {
        on: {
          initial: 'outer',
          states: {
            outer: { initial: 'x', states: { x: { on: { go: 'y' } }, y: {} } },
            hist: { type: 'history', history: 'deep' },
          },
          on: { off: 'off' },
        },
        off: { on: { back: 'on.hist' } },
      },
    }),
    events: [{ type: 'go' }, { type: 'off' }, { type: 'back' }],
  },
  {
    name: 'eventless chain with guards on context',
    machine: setup({ types: {} as { context: { n: number } } }).createMachine({
      id: 'a',
      context: { n: 0 },
      initial: 'idle',
      states: {
        idle: { on: { add: { actions: assign({ n: ({ context, event }) => context.n + (event as unknown as { by: number }).by }), target: 'check' } } },
        check: { always: [{ guard: ({ context }) => context.n >= 10, target: 'big' }, { target: 'idle' }] },
        big: { always: 'done' },
        done: { type: 'final' },
      },
      output: ({ context }) => context,
    }),
    events: [{ type: 'add', by: 3 }, { type: 'add', by: 4 }, { type: 'add', by: 5 }],
  },
  {
    name: 'guards reading the event payload',
    machine: setup({}).createMachine({
      id: 'g',
      initial: 'locked',
      states: {
        locked: { on: { code: [{ guard: ({ event }) => event.code === 1234, target: 'open' }, { target: 'alarm' }] } },
        alarm: { on: { reset: 'locked' } },
        open: { type: 'final' },
      },
    }),
    events: [{ type: 'code', code: 1 }, { type: 'reset' }, { type: 'code', code: 1234 }],
  },
  {
    name: 'eventless transition guarded by the event (no state accepts it)',
    machine: setup({}).createMachine({
      id: 'e',
      initial: 'idle',
      states: { idle: { always: { guard: ({ event }) => event.type === 'poke', target: 'poked' } }, poked: {} },
    }),
    events: [{ type: 'nudge' }, { type: 'poke' }],
  },
  {
    name: 'entry and exit actions with assign',
    machine: setup({ types: {} as { context: { log: string[] } } }).createMachine({
      id: 'ee',
      context: { log: [] },
      initial: 'a',
      states: {
        a: { entry: assign({ log: ({ context }) => [...context.log, 'enter a'] }), exit: assign({ log: ({ context }) => [...context.log, 'exit a'] }), on: { go: 'b' } },
        b: { entry: assign({ log: ({ context }) => [...context.log, 'enter b'] }), on: { go: 'a' } },
      },
    }),
    events: [{ type: 'go' }, { type: 'go' }, { type: 'go' }],
  },
  {
    name: 'self-transition with and without reenter',
    machine: setup({ types: {} as { context: { entries: number } } }).createMachine({
      id: 's',
      context: { entries: 0 },
      initial: 'a',
      states: {
        a: { entry: assign({ entries: ({ context }) => context.entries + 1 }), on: { stay: { target: 'a' }, again: { target: 'a', reenter: true } } },
      },
    }),
    events: [{ type: 'stay' }, { type: 'again' }, { type: 'again' }, { type: 'stay' }],
  },
  {
    name: 'wildcard and partial event descriptors',
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
    events: [{ type: 'user.login' }, { type: 'other' }, { type: 'user.logout' }],
  },
  {
    name: 'raise and enqueueActions',
    machine: setup({ types: {} as { context: { n: number } } }).createMachine({
      id: 'r',
      context: { n: 0 },
      initial: 'a',
      states: {
        a: {
          on: {
            go: { actions: enqueueActions(({ enqueue, context }) => { enqueue.assign({ n: context.n + 1 }); if (context.n >= 1) enqueue.raise({ type: 'done' }); }) },
            done: 'b',
          },
        },
        b: { type: 'final' },
      },
      output: ({ context }) => context,
    }),
    events: [{ type: 'go' }, { type: 'go' }],
  },
  {
    name: 'emit (no effect on state)',
    machine: setup({}).createMachine({ id: 'em', initial: 'a', states: { a: { on: { say: { actions: emit({ type: 'said' }), target: 'b' } } }, b: {} } }),
    events: [{ type: 'say' }],
  },
  {
    name: 'final state with output and nested onDone',
    machine: setup({ types: {} as { context: { v: number } } }).createMachine({
      id: 'f',
      context: { v: 0 },
      initial: 'work',
      states: {
        work: {
          initial: 'one',
          states: { one: { on: { next: 'two' } }, two: { on: { next: 'fin' } }, fin: { type: 'final' } },
          onDone: { target: 'over', actions: assign({ v: 42 }) },
        },
        over: { type: 'final' },
      },
      output: ({ context }) => ({ v: context.v }),
    }),
    events: [{ type: 'next' }, { type: 'next' }],
  },
  {
    name: 'invoked child machine: sendTo and its output on done',
    machine: setup({ actors: { child }, types: {} as { context: { childOut: unknown } } }).createMachine({
      id: 'inv',
      context: { childOut: null },
      initial: 'running',
      states: {
        running: {
          invoke: { id: 'kid', src: 'child', onDone: { target: 'done', actions: assign({ childOut: ({ event }) => event.output }) } },
          on: { bump: { actions: sendTo('kid', { type: 'bump' }) }, finish: { actions: sendTo('kid', { type: 'finish' }) } },
        },
        done: { type: 'final' },
      },
      output: ({ context }) => context,
    }),
    events: [{ type: 'bump' }, { type: 'bump' }, { type: 'finish' }],
  },
  {
    name: 'spawned child machine by name, talking back with sendParent',
    machine: setup({ actors: { pinger }, types: {} as { context: { pongs: number } } }).createMachine({
      id: 'sp',
      context: { pongs: 0 },
      initial: 'a',
      entry: enqueueActions(({ enqueue }) => enqueue.spawnChild('pinger', { id: 'pinger' })),
      states: {
        a: {
          on: {
            ping: { actions: sendTo('pinger', { type: 'ping' }) },
            pong: { actions: assign({ pongs: ({ context }) => context.pongs + 1 }) },
          },
        },
      },
    }),
    events: [{ type: 'ping' }, { type: 'ping' }],
  },
  {
    name: 'fromTransition child keeps its state',
    machine: setup({ actors: { counterLogic } }).createMachine({
      id: 'ft',
      initial: 'a',
      invoke: { id: 'counter', src: 'counterLogic' },
      states: { a: { on: { add: { actions: sendTo('counter', ({ event }) => event) } } } },
    }),
    events: [{ type: 'add', by: 2 }, { type: 'add', by: 5 }],
  },
  {
    name: 'fromCallback child answering events',
    machine: setup({ actors: { ticker }, types: {} as { context: { tocks: number } } }).createMachine({
      id: 'cb',
      context: { tocks: 0 },
      initial: 'a',
      invoke: { id: 'ticker', src: 'ticker' },
      states: {
        a: { on: { tick: { actions: sendTo('ticker', { type: 'tick' }) }, tocked: { actions: assign({ tocks: ({ context }) => context.tocks + 1 }) } } },
      },
    }),
    events: [{ type: 'tick' }, { type: 'tick' }, { type: 'tick' }],
  },
  {
    name: 'targetless transitions and ignored events',
    machine: setup({ types: {} as { context: { hits: number } } }).createMachine({
      id: 'tl',
      context: { hits: 0 },
      initial: 'a',
      states: { a: { on: { hit: { actions: assign({ hits: ({ context }) => context.hits + 1 }) } } } },
    }),
    events: [{ type: 'hit' }, { type: 'miss' }, { type: 'hit' }],
  },
  {
    name: 'a delayed raise cancelled by an event',
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
    events: [{ type: 'stop' }],
  },
];

const store = useTestDatabase();
let db: Database;
beforeAll(() => {
  db = store.db;
});

/** What is compared: the state, the context, the status and the output. */
function view(snapshot: { value: unknown; context: unknown; status: string; output?: unknown }) {
  return JSON.parse(JSON.stringify({ state: snapshot.value, context: snapshot.context ?? null, status: snapshot.status, output: snapshot.output ?? null }));
}

function plain(c: Case) {
  const actor = createActor(c.machine);
  actor.start();
  for (const e of c.events) actor.send(e);
  const s = actor.getSnapshot();
  actor.stop();
  return view(s);
}

/**
 * Waits until the run has handled `handled` events and is at rest: waiting or ended, or — when a live
 * child (a callback, a transition actor) keeps it in memory — written out and unchanged for a while.
 */
async function settle(engine: Engine, id: string, handled: number): Promise<void> {
  let lastVersion = -1;
  let still = 0;
  for (let i = 0; i < 400; i++) {
    const run = await engine.get(id);
    const done = (await engine.history(id)).filter((h) => h.type === 'signal.received' || h.type === 'signal.ignored').length >= handled;
    const [row] = await db.query<{ version: number }>('select version from rmapp_runs where id = $1', [id]);
    still = row?.version === lastVersion ? still + 1 : 0;
    lastVersion = row?.version ?? -1;
    if (done && (run.status !== 'running' && run.status !== 'pending' ? true : still >= 5)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`run ${id} did not settle after ${handled} events`);
}

async function underRmapp(c: Case, name: string, restartBetweenEvents: boolean) {
  const make = () => createEngine({ database: db, workflows: [defineWorkflow({ name, machine: c.machine, input: z.object({}).passthrough() })], pollMs: 20, evictAfterMs: 5 });
  let engine = make();
  await engine.startWorker();
  try {
    const id = await engine.start(name, {});
    await settle(engine, id, 0);
    for (const [i, e] of c.events.entries()) {
      if (restartBetweenEvents) {
        await engine.stop();
        engine = make();
        await engine.startWorker();
      }
      await engine.send(id, e);
      await settle(engine, id, i + 1);
    }
    const [row] = await db.query<{ snapshot: { value: unknown; context: unknown; status: string; output?: unknown } }>('select snapshot from rmapp_runs where id = $1', [id]);
    return { view: view(row?.snapshot as never), run: await engine.get(id) };
  } finally {
    await engine.stop();
  }
}

describe.each([
  ['one worker', false],
  ['a new worker between every pair of events', true],
] as const)('conformance with plain XState: %s', (mode, restart) => {
  for (const [i, c] of cases.entries()) {
    it(c.name, async () => {
      const expected = plain(c);
      const { view: got, run } = await underRmapp(c, `conf.${restart ? 'r' : 'o'}${i}`, restart);
      expect(run.error, `${mode}: the run failed`).toBeNull();
      expect(got, `${c.name} (${mode})`).toEqual(expected);
    });
  }
});
