/**
 * A child that syncs its snapshot to its parent (an invoke with `onSnapshot`, `spawnChild(…, {
 * syncSnapshot: true })`) must send the parent the snapshot events plain XState sends, no more. XState's
 * `start()` of a restored child relays the snapshot it was restored with, which the parent took before
 * the run was written; a run leaves memory whenever it only waits for a signal, so before the fix an
 * `onSnapshot` handler ran once more per restore ([0,1,2] became [0,0,1,1,1,2]). Compared with plain
 * XState's `createActor`, with the run restored by a new engine before every event.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { assign, createActor, sendTo, setup, spawnChild, type AnyStateMachine } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, openDatabase, type Database } from '../src/index.ts';

const counter = setup({}).createMachine({
  id: 'counter',
  initial: 'counting',
  context: { n: 0 },
  states: { counting: { on: { INC: { actions: assign({ n: ({ context }) => context.n + 1 }) } } } },
});

type Ctx = { seen: number[] };
const seenOf = (event: unknown) => (event as { snapshot: { context: { n: number } } }).snapshot.context.n;

const invoking = setup({ types: {} as { context: Ctx }, actors: { counter } }).createMachine({
  id: 'invoking',
  initial: 'open',
  context: { seen: [] },
  invoke: { id: 'c', src: 'counter', onSnapshot: { actions: assign({ seen: ({ context, event }) => [...context.seen, seenOf(event)] }) } },
  on: {
    INC: { actions: sendTo('c', { type: 'INC' }) },
    // The child ignores it: XState relays the child's unchanged snapshot all the same.
    NOP: { actions: sendTo('c', { type: 'NOP' }) },
    IDLE: {},
    FINISH: '.finished',
  },
  states: { open: {}, finished: { type: 'final' } },
  output: ({ context }) => context.seen,
});

const spawning = setup({ types: {} as { context: Ctx }, actors: { counter } }).createMachine({
  id: 'spawning',
  initial: 'open',
  context: { seen: [] },
  entry: spawnChild('counter', { id: 'c', syncSnapshot: true }),
  on: {
    INC: { actions: sendTo('c', { type: 'INC' }) },
    // The child ignores it: XState relays the child's unchanged snapshot all the same.
    NOP: { actions: sendTo('c', { type: 'NOP' }) },
    IDLE: {},
    FINISH: '.finished',
    'xstate.snapshot.c': { actions: assign({ seen: ({ context, event }) => [...context.seen, seenOf(event)] }) },
  },
  states: { open: {}, finished: { type: 'final' } },
  output: ({ context }) => context.seen,
});

const script = ['INC', 'IDLE', 'NOP', 'IDLE', 'INC', 'FINISH'];

function plainOutput(machine: AnyStateMachine): unknown {
  const actor = createActor(machine).start();
  for (const type of script) actor.send({ type });
  return actor.getSnapshot().output;
}

let db: Database;
beforeAll(async () => {
  db = await openDatabase({ url: '', dataDir: 'memory://' });
});
afterAll(async () => {
  await db?.close();
});

describe.each([
  ['invoke with onSnapshot', invoking],
  ['spawnChild with syncSnapshot', spawning],
])('%s', (name, machine) => {
  test('the parent sees the snapshots plain XState gives it, restored before every event', async () => {
    const definition = defineWorkflow({ name: `sync-${machine.id}`, machine, input: z.any() });
    const engineOn = () => createEngine({ database: db, workflows: [definition], pollMs: 20 });
    let engine = engineOn();
    await engine.startWorker();
    const id = await engine.start(definition, {});
    for (const type of script) {
      // A new engine restores the run from its row: what XState's start of a restored actor does runs here.
      await engine.stop();
      engine = engineOn();
      await engine.startWorker();
      const { outcome } = await engine.send(id, { type } as never, { waitMs: 20_000 });
      expect(outcome, `${name}: event ${type}`).toBe('received');
    }
    const run = await engine.waitFor(id, { timeoutMs: 20_000 });
    await engine.stop();
    expect(run.status).toBe('succeeded');
    expect(run.output, `${name}: the snapshot events the parent took (rmapp's against plain XState's)`).toEqual(plainOutput(machine));
  });
});
