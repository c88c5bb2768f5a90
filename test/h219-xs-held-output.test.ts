/**
 * A finished child still held in `children` — an invoke whose `onDone` keeps the state (no target), a
 * spawned promise or machine not stopped — keeps its `output` in the persisted snapshot. Plain XState
 * never writes it; an output JSON cannot write (a BigInt, a cycle) or Postgres cannot store (a NUL)
 * failed the run's next write ("snapshot cannot be persisted"), where plain XState runs on: the parent
 * took from the output what it needed in its done event. It is stored as data that can be written, as
 * a held child's error is (docs/xstate-semantics.md, "JSON details"); a restored run reads that copy.
 * An observable's last value (its snapshot's `context`) likewise: a Date there was refused.
 */
import { assign, fromObservable, fromPromise, setup, spawnChild, type Subscribable } from 'xstate';
import { describe, expect, it } from 'vitest';
import { describeDifferential, effect, runDurable, runPlain, type XsCase } from './helpers/xs-differential.ts';

const counted = fromPromise(async ({ input }: { input: { kind: string } }) => {
  effect(`count ${input.kind}`);
  if (input.kind === 'bigint') return { n: 12n, label: 'twelve' };
  if (input.kind === 'cycle') {
    const o: Record<string, unknown> = { n: 7, label: 'seven' };
    o.self = o;
    return o;
  }
  return { n: 3, label: 'nul\u0000here' };
});

/** A machine that reads the output in its done event (targetless) and goes on. */
const reader = (kind: string) =>
  setup({ actors: { counted } }).createMachine({
    context: { n: 0, label: '', log: [] as string[] },
    initial: 'counting',
    states: {
      counting: {
        invoke: {
          id: 'c',
          src: 'counted',
          input: { kind },
          onDone: {
            actions: assign({
              n: ({ event }) => Number((event.output as { n: unknown }).n),
              label: ({ event }) => String((event.output as { label: string }).label).replace('\u0000', ' '),
            }),
          },
        },
        on: {
          NEXT: { target: 'next', actions: () => effect('next') },
          PING: { actions: assign({ log: ({ context }) => [...context.log, 'ping'] }) },
        },
      },
      next: { type: 'final' },
    },
    output: ({ context }) => ({ n: context.n, label: context.label, pings: context.log.length }),
  });

const machineOutput = setup({}).createMachine({
  initial: 'a',
  states: { a: { on: { FIN: 'b' } }, b: { type: 'final' } },
  output: () => ({ big: 5n }),
});

const cases: XsCase[] = ['bigint', 'cycle', 'nul'].map((kind) => ({
  name: `invoke onDone keeps the state, output with a ${kind}`,
  evict: true,
  machine: reader(kind),
  steps: [{ send: { type: 'PING' } }, { restore: true }, { send: { type: 'PING' } }, { send: { type: 'NEXT' } }],
}));
cases.push({
  name: 'a spawned machine done with a BigInt output, held',
  evict: true,
  machine: setup({ actors: { machineOutput } }).createMachine({
    context: { done: 0 },
    entry: spawnChild('machineOutput', { id: 'm' }),
    on: {
      FIN: {
        actions: ({ self }) =>
          (self.getSnapshot().children as Record<string, { send: (e: { type: string }) => void }>).m!.send({ type: 'FIN' }),
      },
      'xstate.done.actor.m': { actions: assign({ done: ({ context }) => context.done + 1 }) },
      PING: { actions: assign({ done: ({ context }) => context.done + 10 }) },
    },
  }),
  steps: [{ send: { type: 'FIN' } }, { restore: true }, { send: { type: 'PING' } }],
});

// An observable's snapshot context is the last value it emitted: a Date there (a clock's ticks) was
// refused ("children.obs.context.at is a Date … store an ISO string"), a BigInt too, where plain XState runs on.
const stamps = fromObservable(
  ({ input }: { input: { kind: string } }) =>
    ({
      subscribe(observer: { next?: (v: unknown) => void; complete?: () => void }) {
        for (const n of [1, 2]) observer.next?.(input.kind.startsWith('date') ? { at: new Date(n * 1_000), n } : { big: BigInt(n), n });
        if (input.kind !== 'date, open') observer.complete?.();
        return { unsubscribe: () => {} };
      },
    }) as unknown as Subscribable<unknown>,
);
for (const kind of ['date', 'bigint'])
  cases.push({
    name: `an observable whose values hold a ${kind}`,
    evict: true,
    machine: setup({ actors: { stamps } }).createMachine({
      context: { seen: [] as number[] },
      initial: 'watching',
      states: {
        watching: {
          invoke: {
            id: 'obs',
            src: 'stamps',
            input: { kind },
            onSnapshot: {
              actions: assign({
                seen: ({ context, event }) => [...context.seen, ((event.snapshot.context as { n?: number } | undefined)?.n ?? 0) as number],
              }),
            },
          },
          on: { NEXT: 'after' },
        },
        after: { on: { BACK: 'watching' } },
      },
    }),
    steps: [{ send: { type: 'NEXT' } }, { restore: true }, { send: { type: 'BACK' } }],
  });

// The run's last write (its final state) still holding the observable: checked without the live actor.
cases.push({
  name: 'a machine done while an observable of Dates runs',
  machine: setup({ actors: { stamps } }).createMachine({
    invoke: { id: 'obs', src: 'stamps', input: { kind: 'date, open' } },
    initial: 'a',
    states: { a: { on: { FIN: 'b' } }, b: { type: 'final' } },
    output: () => ({ ended: true }),
  }),
  steps: [{ send: { type: 'FIN' } }],
});

describeDifferential('h219: a held child whose output JSON cannot write', cases);

describe('h219: a held child output read after a restore (documented: the stored copy)', () => {
  it('a BigInt comes back as its text, a Date as its ISO string, as docs/xstate-semantics.md says', async () => {
    const dated = fromPromise(async () => ({ at: new Date(86_400_000), n: 12n }));
    const machine = setup({ actors: { dated } }).createMachine({
      context: { seen: null as unknown },
      initial: 'a',
      states: {
        a: {
          invoke: { id: 'd', src: 'dated', onDone: { actions: () => effect('done') } },
          on: {
            READ: {
              actions: assign({
                seen: ({ self }) => {
                  const out = (
                    self.getSnapshot().children as Record<string, { getSnapshot: () => { output: { at: unknown; n: unknown } } }>
                  ).d!.getSnapshot().output;
                  return {
                    at: out.at instanceof Date ? `Date ${out.at.toISOString()}` : out.at,
                    n: typeof out.n === 'bigint' ? `bigint ${out.n}` : out.n,
                  };
                },
              }),
            },
          },
        },
      },
    });
    const plain = await runPlain(machine, {}, [{ send: { type: 'READ' } }]);
    expect(plain.at(-1)!.context, 'plain XState: the live output').toEqual({
      seen: { at: 'Date 1970-01-02T00:00:00.000Z', n: 'bigint 12' },
    });
    const restored = await runDurable(machine, {}, [{ restore: true }, { send: { type: 'READ' } }]);
    expect(restored.at(-1), 'rmapp after a restore: the stored copy of the output, and the run goes on').toMatchObject({
      status: 'active',
      context: { seen: { at: '1970-01-02T00:00:00.000Z', n: '12n' } },
    });
  }, 60_000);
});
