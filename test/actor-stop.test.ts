/**
 * rmapp stops a run's actor tree each time the run leaves memory (src/state_machine/actor-stop.ts),
 * without XState's stop macrostep on a machine that still lists its children. What a stop does must
 * stay XState's: every callback's cleanup, every promise's abort, every child's own children and
 * delayed events, in the same order, with the same snapshots left behind.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createActor, createMachine, enqueueActions, fromCallback, fromPromise, setup, type AnyActorRef } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, openDatabase } from '../src/index.ts';
import { stopActorTree } from '../src/state_machine/actor-stop.ts';
import { TestClock } from '../src/state_machine/testing/test-clock.ts';
import { engineDatabaseFor } from './helpers/postgres.ts';

/** A tree with every kind of child, each of which writes to `log` when it is stopped or fires. */
function treeMachine(log: string[]) {
  const callback = fromCallback<{ type: string }, { name: string }>(
    ({ input }) =>
      () =>
        log.push(`cleanup ${input.name}`),
  );
  const promise = fromPromise<void, { name: string }>(
    ({ input, signal }) =>
      new Promise(() => {
        signal.addEventListener('abort', () => log.push(`abort ${input.name}`));
      }),
  );
  const grandchild = setup({ actors: { callback } }).createMachine({
    invoke: { src: 'callback', input: { name: 'grand.cb' } },
    after: { 1_000: { actions: () => log.push('grand fired') } },
  });
  const kid = setup({ actors: { callback, grandchild } }).createMachine({
    entry: enqueueActions(({ enqueue }) => {
      enqueue.spawnChild('callback', { id: 'kid.cb', input: { name: 'kid.cb' } });
      enqueue.spawnChild('grandchild', { id: 'grand', systemId: 'grand' });
      enqueue.spawnChild('callback', { id: 'kid.cb2', input: { name: 'kid.cb2' } });
    }),
    after: { 1_000: { actions: () => log.push('kid fired') } },
  });
  // Cleanups that act: one sends to the parent, one looks a sibling up, one throws.
  const sendsBack = fromCallback(({ sendBack }) => () => {
    log.push('cleanup sendsBack');
    sendBack({ type: 'GONE' });
  });
  const looksUp = fromCallback(
    ({ system }) =>
      () =>
        log.push(`cleanup looksUp: kid ${system.get('kid') ? 'found' : 'gone'}`),
  );
  const throws = fromCallback(() => () => {
    log.push('cleanup throws');
    throw new Error('boom');
  });
  return setup({ actors: { callback, promise, kid, sendsBack, looksUp, throws } }).createMachine({
    id: 'root',
    invoke: [
      { src: 'callback', id: 'a', input: { name: 'a' } },
      { src: 'sendsBack', id: 'sb' },
      { src: 'looksUp', id: 'lu' },
      { src: 'throws', id: 't' },
      { src: 'promise', id: 'p', input: { name: 'p' } },
    ],
    on: { GONE: { actions: () => log.push('root took GONE') } },
    entry: enqueueActions(({ enqueue }) => {
      enqueue.spawnChild('kid', { id: 'kid', systemId: 'kid' });
      for (let n = 0; n < 40; n++) enqueue.spawnChild('callback', { id: `n${n}`, input: { name: `n${n}` } });
    }),
    after: { 1_000: { actions: () => log.push('root fired') } },
  });
}

/** Starts the tree, stops it with `stop`, then lets every delay pass; what happened, in order. */
async function stopWith(stop: (actor: AnyActorRef) => void) {
  const log: string[] = [];
  const clock = new TestClock(0);
  const actor = createActor(treeMachine(log), { clock });
  let completed = 0;
  actor.subscribe({ complete: () => log.push(`root complete ${++completed}`) });
  actor.start();
  const kid = actor.system.get('kid') as AnyActorRef;
  const grand = actor.system.get('grand') as AnyActorRef;
  const snapshotBefore = actor.getSnapshot();
  const before = Object.values(snapshotBefore.children as Record<string, AnyActorRef>);
  for (const child of before) {
    child.subscribe({ complete: () => log.push(`${child.id} complete`), error: (err) => log.push(`${child.id} error ${String(err)}`) });
  }
  expect(log, 'nothing ran before the stop').toEqual([]);
  stop(actor);
  await clock.advance(5_000, async () => {});
  const statusOf = (ref: AnyActorRef) => `${ref.id}:${ref.getSnapshot().status}`;
  return {
    log,
    completed,
    root: { status: actor.getSnapshot().status, children: Object.keys(actor.getSnapshot().children) },
    kid: { status: kid.getSnapshot().status, children: Object.keys(kid.getSnapshot().children) },
    grand: { status: grand.getSnapshot().status, children: Object.keys(grand.getSnapshot().children) },
    childStatus: before.map(statusOf),
    registered: [actor.system.get('kid'), actor.system.get('grand')].map((ref) => ref?.id ?? null),
    childrenOfSnapshotTakenBefore: Object.keys(snapshotBefore.children),
  };
}

describe('stopActorTree does what actor.stop() does', () => {
  it('the same cleanups and aborts, in the same order; no delayed event fires; the same snapshots', async () => {
    const xstate = await stopWith((actor) => actor.stop());
    const rmapp = await stopWith(stopActorTree);
    // The fixture must exercise every kind of child, or the comparison proves little.
    expect(xstate.log).toEqual(
      expect.arrayContaining([
        'cleanup a',
        'abort p',
        'cleanup kid.cb',
        'cleanup grand.cb',
        'cleanup n39',
        'cleanup sendsBack',
        'cleanup looksUp: kid gone',
        't error Error: boom',
        'root complete 1',
      ]),
    );
    expect(xstate.log, 'plain XState: a stopping child’s event reaches a stopped parent').not.toContain('root took GONE');
    expect(
      xstate.log.some((line) => line.endsWith('fired')),
      'plain XState fired a delayed event after its stop',
    ).toBe(false);
    expect(rmapp).toEqual(xstate);
  });

  it('no stop macrostep resolves a stop action per child (each copies the children object: O(children²))', () => {
    const stopActions = (stop: (actor: AnyActorRef) => void) => {
      let count = 0;
      let stopping = false;
      const actor = createActor(treeMachine([]), {
        inspect: (event) => {
          if (stopping && event.type === '@xstate.action' && event.action.type === 'xstate.stopChild') count++;
        },
      }).start();
      stopping = true;
      stop(actor);
      return count;
    };
    expect(
      stopActions((actor) => actor.stop()),
      'plain XState: one per child of the root and of each child machine',
    ).toBe(50);
    expect(stopActions(stopActorTree)).toBe(0);
  });

  it('observers that come or go while the children stop, and the ids below a child machine that failed, are as in XState', () => {
    const run = (stop: (actor: AnyActorRef) => void) => {
      const log: string[] = [];
      let early: { unsubscribe(): void } | null = null;
      // Reaches the root by its system id while it stops: one observer goes, one comes.
      const meddles = fromCallback(({ system }) => () => {
        early?.unsubscribe();
        (system.get('root') as AnyActorRef).subscribe({ complete: () => log.push('late observer complete') });
      });
      const fails = setup({ actors: { callback: fromCallback(() => () => log.push('orphan cleanup')) } }).createMachine({
        invoke: { src: 'callback', systemId: 'orphan' },
        on: {
          FAIL: {
            actions: () => {
              throw new Error('child failed');
            },
          },
        },
      });
      const machine = setup({ actors: { meddles, fails } }).createMachine({
        invoke: [{ src: 'meddles' }, { src: 'fails', id: 'fails' }],
        on: { '*': {} },
      });
      const actor = createActor(machine, { systemId: 'root' });
      early = actor.subscribe({ complete: () => log.push('early observer complete') });
      actor.subscribe({ complete: () => log.push('kept observer complete') });
      actor.start();
      (actor.getSnapshot().children as Record<string, AnyActorRef>).fails!.send({ type: 'FAIL' });
      stop(actor);
      return { log, orphanRegistered: actor.system.get('orphan') !== undefined };
    };
    const xstate = run((actor) => actor.stop());
    expect(xstate.log, 'the fixture: an observer gone and one come during the stop').toEqual([
      'kept observer complete',
      'late observer complete',
    ]);
    expect(run(stopActorTree)).toEqual(xstate);
  });

  it('an actor already stopped is left as it is', async () => {
    const log: string[] = [];
    const actor = createActor(treeMachine(log)).start();
    actor.stop();
    const after = [...log];
    stopActorTree(actor);
    expect(log).toEqual(after);
    expect(actor.getSnapshot().status).toBe('stopped');
  });

  it('an actor whose children have all stopped or finished stops as XState stops it', () => {
    const machine = createMachine({ invoke: { src: createMachine({ initial: 'x', states: { x: { type: 'final' } } }) } });
    const a = createActor(machine).start();
    const b = createActor(machine).start();
    a.stop();
    stopActorTree(b);
    expect(b.getSnapshot().status).toBe(a.getSnapshot().status);
    expect(b.getSnapshot().children).toEqual(a.getSnapshot().children);
  });
});

/** Spawns child machines that each run a callback; `stop` cancels. */
function cancelledWorkflow(ledger: string[]) {
  const callback = fromCallback<{ type: string }, { name: string }>(
    ({ input }) =>
      () =>
        ledger.push(input.name),
  );
  const child = setup({ actors: { callback } }).createMachine({
    invoke: { src: 'callback', input: ({ self }) => ({ name: `cb of ${self.id}` }) },
  });
  return setup({ actors: { child } }).createMachine({
    id: 'cancelled',
    initial: 'busy',
    states: {
      busy: {
        entry: enqueueActions(({ enqueue }) => {
          for (let n = 0; n < 30; n++) enqueue.spawnChild('child', { id: `c${n}` });
        }),
      },
    },
  });
}

describe.each(['postgres', 'pglite'] as const)('a cancelled run with nested children (%s)', (kind) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('runs the cleanup of every callback of every child once', { timeout: 60_000 }, async () => {
    const db = await openDatabase(await engineDatabaseFor(kind, cleanups));
    cleanups.push(() => db.close());
    const ledger: string[] = [];
    const workflows = [defineWorkflow({ name: 'test.actor-stop', machine: cancelledWorkflow(ledger), input: z.object({}) })];
    const engine = createEngine({ database: db, workflows, pollMs: 20 });
    cleanups.push(() => engine.stop());
    await engine.startWorker();
    const id = await engine.start('test.actor-stop', {});
    await expect.poll(async () => (await engine.get(id)).children.length, { timeout: 10_000 }).toBe(60);
    await engine.cancel(id);
    await expect.poll(async () => (await engine.get(id)).status, { timeout: 10_000 }).toBe('cancelled');
    const expected = Array.from({ length: 30 }, (_, n) => `cb of c${n}`);
    expect(ledger, 'callbacks cleaned up').toEqual(expected);
  });
});
