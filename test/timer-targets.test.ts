/**
 * A delayed event whose target stops before it is due: plain XState delivers it to the stopped actor,
 * which ignores it — even when a new child has been spawned under the same id meanwhile. rmapp persists
 * a run's timers by the path of their target, so a restore between the respawn and the due time must
 * not hand the event to the new child (src/state_machine/timers.ts `readTimers`).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { assign, createActor, sendParent, sendTo, setup, spawnChild, stopChild } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, openDatabase } from '../src/index.ts';
import { TestClock } from '../src/state_machine/testing/test-clock.ts';
import { TimerCatchUp } from '../src/state_machine/timer-catch-up.ts';
import { readTimers, rearmTimers } from '../src/state_machine/timers.ts';
import { nextWake } from '../src/state_machine/session-eviction.ts';
import { engineDatabaseFor } from './helpers/postgres.ts';

// Long enough for the first worker to take RESPAWN and stop before the ping is due, on a loaded machine.
const PING_MS = 3_000;

/** Answers PING with GOT, naming which incarnation it is. */
const child = setup({ types: {} as { input: { name: string }; context: { name: string } } }).createMachine({
  id: 'child',
  context: ({ input }) => ({ name: input.name }),
  on: { PING: { actions: sendParent(({ context }) => ({ type: 'GOT', name: context.name })) } },
});

/** Pings child `c` in 3 s; RESPAWN replaces `c` by a new child under the same id; ends `quiet` at 6 s unless GOT comes. */
const parent = setup({
  types: {} as { context: { got: string | null }; events: { type: 'RESPAWN' } | { type: 'GOT'; name: string } },
  actors: { child },
}).createMachine({
  id: 'parent',
  context: { got: null },
  initial: 'running',
  states: {
    running: {
      entry: [spawnChild('child', { id: 'c', input: { name: 'first' } }), sendTo('c', { type: 'PING' }, { delay: PING_MS })],
      after: { 6_000: 'quiet' },
      on: {
        RESPAWN: { actions: [stopChild('c'), spawnChild('child', { id: 'c', input: { name: 'second' } })] },
        GOT: { target: 'pinged', actions: assign({ got: ({ event }) => event.name }) },
      },
    },
    pinged: { type: 'final' },
    quiet: { type: 'final' },
  },
});

/** Where plain XState ends: RESPAWN at once, then past every delay. */
async function plainXState() {
  const clock = new TestClock(0);
  const actor = createActor(parent, { clock }).start();
  actor.send({ type: 'RESPAWN' });
  await clock.advance(10_000, async () => {});
  return { value: actor.getSnapshot().value, got: actor.getSnapshot().context.got };
}

it("a delayed event to a child that has stopped is not persisted, even when a new child has the stopped one's id", () => {
  const catchUp = new TimerCatchUp(new TestClock(0));
  const actor = createActor(parent, { clock: catchUp.actorClock });
  catchUp.attach(actor);
  actor.start();
  const targets = () => readTimers(actor, 0, (r) => catchUp.dueOf(r)).map((t) => `${t.event.type}→${t.target || 'root'}`);
  expect(targets().sort()).toEqual(['PING→c', 'xstate.after.6000.parent.running→root']);
  actor.send({ type: 'RESPAWN' });
  expect(targets(), 'timers persisted after the child c was replaced').toEqual(['xstate.after.6000.parent.running→root']);
  actor.stop();
});

describe.each(['postgres', 'pglite'] as const)('a run restored between the respawn and the due time (%s)', (kind) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('ends where plain XState ends: the new child never gets the old one’s event', { timeout: 60_000 }, async () => {
    const db = await openDatabase(await engineDatabaseFor(kind, cleanups));
    cleanups.push(() => db.close());
    const workflows = [defineWorkflow({ name: 'test.timer-targets', machine: parent, input: z.object({}) })];
    const first = createEngine({ database: db, workflows, pollMs: 20 });
    await first.startWorker();
    // Before the call: the ping is armed during it.
    const started = Date.now();
    const id = await first.start('test.timer-targets', {});
    await first.send(id, { type: 'RESPAWN' });
    await expect.poll(async () => (await first.history(id)).some((h) => h.type === 'signal.received'), { timeout: 10_000 }).toBe(true);
    await first.stop();
    // Otherwise the ping was due while the first worker still ran it, and there was no restore to test.
    expect(Date.now() - started, 'ms from the start until the first worker went (the ping is due at 3,000)').toBeLessThan(PING_MS);

    // The run waits for its earliest timer: a new worker restores it then.
    const second = createEngine({ database: db, workflows, pollMs: 20 });
    await second.startWorker();
    try {
      await expect.poll(async () => (await second.get(id)).status, { timeout: 20_000 }).toBe('succeeded');
      const expected = await plainXState();
      expect(expected.value, 'plain XState').toBe('quiet');
      const history = await second.history(id);
      expect(history.filter((h) => h.type === 'run.resumed').length, 'restores').toBeGreaterThanOrEqual(2);
      expect((await second.get(id)).state, history.map((h) => h.type).join(', ')).toBe(expected.value);
    } finally {
      await second.stop();
    }
  });
});

/** Pings its invoked child, whose id holds a "/", in 1 s; done when the child answers. */
const slashed = setup({
  types: {} as { events: { type: 'GOT'; name: string } },
  actors: { child },
}).createMachine({
  id: 'slashed',
  initial: 'asking',
  states: {
    asking: {
      invoke: { src: 'child', id: 'a/b', input: { name: 'slashed' } },
      entry: sendTo('a/b', { type: 'PING' }, { delay: 1_000 }),
      on: { GOT: 'answered' },
    },
    answered: { type: 'final' },
  },
});

it.each(['escaped', 'written before ids were escaped'] as const)(
  'a delayed event to a child whose id holds a "/" is persisted, found again on restore, and delivered (path %s)',
  async (how) => {
    const clock = new TestClock(0);
    const catchUp = new TimerCatchUp(clock);
    const first = createActor(slashed, { clock: catchUp.actorClock });
    catchUp.attach(first);
    first.start();
    const read = readTimers(first, clock.now(), (r) => catchUp.dueOf(r));
    // The child's path escapes its id's "/" (actor-paths.ts), as a child "b" of a child "a" would otherwise share it.
    expect(read.map((t) => `${t.event.type}→${t.target}@${t.dueAt}`)).toEqual(['PING→a%2Fb@1000']);
    const timers = how === 'escaped' ? read : read.map((t) => ({ ...t, target: 'a/b' }));
    const snapshot = first.getPersistedSnapshot();
    first.stop();

    const again = new TimerCatchUp(clock);
    const restored = createActor(slashed, { clock: again.actorClock, snapshot });
    again.attach(restored);
    restored.start();
    expect(rearmTimers(restored, timers, clock.now(), again), 'timers dropped on restore').toEqual([]);
    await clock.advance(2_000, async () => {});
    expect(restored.getSnapshot().value).toBe('answered');
    restored.stop();
  },
);

it("a run's wake-up counts a timer written before due times were stored (null) as due at once", () => {
  const timers = [{ id: 'x', source: '', target: '', event: { type: 'x' }, dueAt: null as unknown as number }];
  expect(nextWake({ now: 5_000, timers, sleeping: new Map(), kept: [], deadlineAt: null })).toBe(5_000);
});
