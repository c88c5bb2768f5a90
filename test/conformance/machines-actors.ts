/**
 * Conformance cases on actors: invoked promise, callback, observable, transition and machine logic,
 * `spawnChild` / `spawn`, `stopChild`, `sendTo` / `sendParent`, done and error events. Each names the
 * XState test (statelyai/xstate `packages/core/test/`) it is taken from. The ones marked `killInside`
 * start with an actor in flight for `SLOW_MS`: the process test kills the worker then.
 */
import {
  assign,
  enqueueActions,
  fromCallback,
  fromObservable,
  fromPromise,
  fromTransition,
  sendParent,
  sendTo,
  setup,
  stopChild,
  type AnyActorRef,
  type Subscribable,
} from 'xstate';
import { expect } from 'vitest';
import type { Case, PersistedRow } from './case.ts';

/** How long the slow actors take: long enough for a kill to land while they are in flight. */
export const SLOW_MS = 1_500;

const childActive = (id: string) => (row: PersistedRow) => (row.snapshot?.children?.[id]?.snapshot.status ?? '') === 'active';

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

const slowValue = fromPromise(
  ({ input }: { input: { value: number } }) => new Promise<number>((r) => setTimeout(() => r(input.value * 2), SLOW_MS)),
);
const slowFailure = fromPromise(() => new Promise<never>((_, reject) => setTimeout(() => reject(new Error('declined')), SLOW_MS)));
const counterLogic = fromTransition(
  (state: { total: number }, event: { type: string; by?: number }) =>
    event.type === 'add' ? { total: state.total + (event.by ?? 1) } : state,
  { total: 0 },
);
const ticker = fromCallback(({ sendBack, receive }) => receive((e) => e.type === 'tick' && sendBack({ type: 'tocked' })));
const lateCallback = fromCallback(({ sendBack }) => {
  const t = setTimeout(() => sendBack({ type: 'ready' }), SLOW_MS);
  return () => clearTimeout(t);
});
/** A finite observable: 0…4, one value every 300 ms, then complete (no rxjs needed). */
const fiveTicks = fromObservable(
  (): Subscribable<number> =>
    ({
      subscribe(observer: { next?: (v: number) => void; complete?: () => void }) {
        let i = 0;
        const t = setInterval(() => {
          observer.next?.(i++);
          if (i === 5) {
            clearInterval(t);
            observer.complete?.();
          }
        }, 300);
        return { unsubscribe: () => clearInterval(t) };
      },
    }) as unknown as Subscribable<number>,
);

export const actorCases: Case[] = [
  {
    id: 'invoke-promise-done',
    from: 'invoke.test.ts › should assign the resolved data when invoked with a promise factory',
    killBetween: true,
    killInside: { inside: childActive('double'), what: 'an invoked promise in flight' },
    machine: setup({ actors: { slowValue }, types: {} as { context: { result: number | null } } }).createMachine({
      id: 'ip',
      context: { result: null },
      initial: 'pending',
      states: {
        pending: {
          invoke: {
            id: 'double',
            src: 'slowValue',
            input: { value: 21 },
            onDone: { target: 'success', actions: assign({ result: ({ event }) => event.output }) },
          },
        },
        success: { type: 'final' },
      },
      output: ({ context }) => context,
    }),
    steps: [{ wait: SLOW_MS + 800 }],
  },
  {
    id: 'invoke-promise-error',
    from: 'invoke.test.ts › should be invoked with a promise factory and reject with ErrorExecution',
    killInside: { inside: childActive('pay'), what: 'an invoked promise in flight (it rejects)' },
    machine: setup({ actors: { slowFailure }, types: {} as { context: { reason: string } } }).createMachine({
      id: 'ie',
      context: { reason: '' },
      initial: 'paying',
      states: {
        paying: {
          invoke: {
            id: 'pay',
            src: 'slowFailure',
            onError: { target: 'failed', actions: assign({ reason: ({ event }) => (event.error as Error).message }) },
          },
        },
        failed: { on: { retry: 'paying' } },
      },
    }),
    steps: [{ wait: SLOW_MS + 800 }],
  },
  {
    id: 'invoke-callback-late',
    from: 'invoke.test.ts › should transition correctly if callback function invoked from start and sends an event',
    killBetween: true,
    killInside: { inside: childActive('late'), what: 'an invoked callback that has not called back yet' },
    machine: setup({ actors: { lateCallback } }).createMachine({
      id: 'cl',
      initial: 'waiting',
      states: { waiting: { invoke: { id: 'late', src: 'lateCallback' }, on: { ready: 'ready' } }, ready: { type: 'final' } },
    }),
    steps: [{ wait: SLOW_MS + 800 }],
  },
  {
    id: 'invoke-callback-receive',
    from: 'invoke.test.ts › callback should be able to receive messages from parent',
    killBetween: true,
    machine: setup({ actors: { ticker }, types: {} as { context: { tocks: number } } }).createMachine({
      id: 'cb',
      context: { tocks: 0 },
      initial: 'a',
      invoke: { id: 'ticker', src: 'ticker' },
      states: {
        a: {
          on: {
            tick: { actions: sendTo('ticker', { type: 'tick' }) },
            tocked: { actions: assign({ tocks: ({ context }) => context.tocks + 1 }) },
          },
        },
      },
    }),
    steps: [{ type: 'tick' }, { type: 'tick' }, { type: 'tick' }],
  },
  {
    id: 'invoke-observable',
    from: 'invoke.test.ts › observables › should work with an infinite observable (finite here: 0…4 then complete)',
    killBetween: true,
    killInside: {
      inside: (row) => childActive('ticks')(row) && ((row.snapshot?.context as { seen?: unknown[] } | undefined)?.seen?.length ?? 0) >= 2,
      what: 'a finite observable half-way through its values',
    },
    restoreDiffers: {
      why: 'a restored observable is re-subscribed from the start: the parent sees the values it saw before the restore again (docs/xstate-semantics.md)',
      check: (got, plain) => {
        const seen = (got.context as { seen: unknown[] }).seen;
        const all = (plain.context as { seen: unknown[] }).seen.slice(1);
        expect({ state: got.state, status: got.status, children: got.children }, 'state, status and children as in XState').toEqual({
          state: plain.state,
          status: plain.status,
          children: plain.children,
        });
        expect(seen.slice(-all.length), 'the re-subscribed observable ran to its end: the last values are all of them, in order').toEqual(
          all,
        );
        const replayed = seen.slice(1, -all.length);
        // The replay may include the observable's initial (empty) snapshot value too, as XState's own run did.
        const every = (plain.context as { seen: unknown[] }).seen;
        for (const v of replayed)
          expect(every, `a value seen before the restore (${JSON.stringify(replayed)}) is a replay of one of the same values`).toContain(v);
      },
    },
    machine: setup({ actors: { fiveTicks }, types: {} as { context: { seen: unknown[] } } }).createMachine({
      id: 'ob',
      context: { seen: [] },
      initial: 'listening',
      states: {
        listening: {
          invoke: {
            id: 'ticks',
            src: 'fiveTicks',
            onSnapshot: { actions: assign({ seen: ({ context, event }) => [...context.seen, event.snapshot.context ?? null] }) },
            onDone: 'done',
          },
        },
        done: { type: 'final' },
      },
      output: ({ context }) => context,
    }),
    midStream: { views: [0], why: 'the observable emits every 300 ms from the start: what a reading shows depends on when it is taken' },
    steps: [{ wait: 2_300 }],
  },
  {
    id: 'invoke-transition',
    from: 'actorLogic.test.ts › fromTransition › should persist and restore its state',
    killBetween: true,
    machine: setup({ actors: { counterLogic } }).createMachine({
      id: 'ft',
      initial: 'a',
      invoke: { id: 'counter', src: 'counterLogic' },
      states: { a: { on: { add: { actions: sendTo('counter', ({ event }) => event) } } } },
    }),
    steps: [
      { type: 'add', by: 2 },
      { type: 'add', by: 5 },
    ],
  },
  {
    id: 'invoke-machine',
    from: 'invoke.test.ts › should communicate with the child machine (invoke on state)',
    killBetween: true,
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
    steps: [{ type: 'bump' }, { type: 'bump' }, { type: 'finish' }],
  },
  {
    id: 'invoke-orthogonal',
    from: 'invoke.test.ts › should work with invocations defined in orthogonal state nodes',
    machine: setup({ actors: { child } }).createMachine({
      id: 'or',
      type: 'parallel',
      states: {
        left: { initial: 'on', states: { on: { invoke: { id: 'l', src: 'child', onDone: 'off' } }, off: {} } },
        right: { initial: 'on', states: { on: { invoke: { id: 'r', src: 'child', onDone: 'off' } }, off: {} } },
      },
      on: { finishLeft: { actions: sendTo('l', { type: 'finish' }) }, bumpRight: { actions: sendTo('r', { type: 'bump' }) } },
    }),
    steps: [{ type: 'bumpRight' }, { type: 'finishLeft' }],
  },
  {
    id: 'child-responds-many',
    from: 'invoke.test.ts › child can immediately respond to the parent with multiple events',
    machine: setup({
      actors: {
        responder: setup({}).createMachine({
          id: 'resp',
          on: { FORWARD_DEC: { actions: [sendParent({ type: 'DEC' }), sendParent({ type: 'DEC' }), sendParent({ type: 'DEC' })] } },
        }),
      },
      types: {} as { context: { count: number } },
    }).createMachine({
      id: 'parent',
      context: { count: 0 },
      initial: 'start',
      states: {
        start: {
          invoke: { id: 'child', src: 'responder' },
          on: {
            FORWARD_DEC: { actions: sendTo('child', { type: 'FORWARD_DEC' }) },
            DEC: { actions: assign({ count: ({ context }) => context.count - 1 }) },
          },
        },
      },
    }),
    steps: [{ type: 'FORWARD_DEC' }, { type: 'FORWARD_DEC' }],
  },
  {
    id: 'spawn-child-named',
    from: 'spawnChild.test.ts › can spawn from named actor',
    killBetween: true,
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
    steps: [{ type: 'ping' }, { type: 'ping' }],
  },
  {
    id: 'spawn-child-dynamic-id',
    from: 'spawnChild.test.ts › should handle a dynamic id',
    machine: setup({ actors: { child }, types: {} as { context: { name: string } } }).createMachine({
      id: 'sd',
      context: { name: 'kid-7' },
      on: {
        make: { actions: enqueueActions(({ enqueue, context }) => enqueue.spawnChild('child', { id: context.name })) },
        bump: { actions: sendTo(({ context }) => context.name, { type: 'bump' }) },
        drop: { actions: stopChild(({ context }) => context.name) },
      },
    }),
    steps: [{ type: 'make' }, { type: 'bump' }, { type: 'bump' }, { type: 'drop' }],
  },
  {
    id: 'spawn-in-assign',
    from: 'spawn.test.ts › (spawn in assign, the ref kept in context) / interpreter.test.ts › spawn',
    killBetween: true,
    machine: setup({ actors: { child }, types: {} as { context: { ref: AnyActorRef | null; count: number } } }).createMachine({
      id: 'sa',
      context: { ref: null, count: 0 },
      initial: 'idle',
      states: {
        idle: { on: { start: { target: 'working', actions: assign({ ref: ({ spawn }) => spawn('child', { id: 'worker' }) }) } } },
        working: {
          on: {
            bump: { actions: sendTo(({ context }) => context.ref as AnyActorRef, { type: 'bump' }) },
            stop: { target: 'idle', actions: [stopChild('worker'), assign({ ref: null })] },
          },
        },
      },
    }),
    steps: [{ type: 'start' }, { type: 'bump' }, { type: 'stop' }],
  },
  {
    id: 'stop-child-final',
    from: 'invoke.test.ts › should stop a child actor when reaching a final state',
    killBetween: true,
    machine: setup({ actors: { ticker } }).createMachine({
      id: 'sf',
      initial: 'running',
      states: { running: { invoke: { id: 'ticker', src: 'ticker' }, on: { end: 'done' } }, done: { type: 'final' } },
    }),
    steps: [{ type: 'end' }],
  },
  {
    id: 'invoke-input-from-entry',
    from: 'predictableExec.test.ts › should create invoke based on context updated by entry actions of the same state',
    machine: setup({ actors: { slowValue }, types: {} as { context: { n: number; result: number } } }).createMachine({
      id: 'ii',
      context: { n: 0, result: 0 },
      initial: 'idle',
      states: {
        idle: { on: { go: 'working' } },
        working: {
          entry: assign({ n: 5 }),
          invoke: {
            src: 'slowValue',
            input: ({ context }) => ({ value: context.n }),
            onDone: { target: 'done', actions: assign({ result: ({ event }) => event.output }) },
          },
        },
        done: {},
      },
    }),
    steps: [{ type: 'go' }, { wait: SLOW_MS + 800 }],
  },
];
