/**
 * XState 5.33's `route` (a state reachable from anywhere with `{ type: 'xstate.route', to: '#id' }`)
 * is driven by an event the caller sends. engine.send refused every `xstate.` type, so a machine's
 * routes could not be taken under rmapp at all (docs/xstate-semantics.md, "Events").
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActor, setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, ValidationError, type Database } from '../src/index.ts';
import { openTestStore } from './helpers/postgres.ts';
import { until } from './helpers/processes.ts';

const machine = setup({}).createMachine({
  id: 'wizard',
  initial: 'intro',
  states: {
    intro: { on: { NEXT: 'details' } },
    details: { id: 'details', route: {} },
    review: { id: 'review', route: { guard: ({ event }) => (event as { force?: boolean }).force === true } },
    hidden: { id: 'hidden' },
  },
});

const routes = [
  { type: 'xstate.route', to: '#details' },
  { type: 'xstate.route', to: '#hidden' },
  { type: 'xstate.route', to: '#review' },
  { type: 'xstate.route', to: '#review', force: true },
];

/** The state after each route event under plain XState. */
function plainStates(): unknown[] {
  const actor = createActor(machine).start();
  return routes.map((e) => {
    actor.send(e as never);
    return actor.getSnapshot().value;
  });
}

describe('xstate.route events sent through the engine', () => {
  let store: { db: Database; close(): Promise<void> };
  beforeAll(async () => {
    store = await openTestStore('pglite');
  });
  afterAll(async () => store?.close());

  it('take the machine to a routable state as plain XState does, across evictions', async () => {
    const wf = defineWorkflow({ name: 'xs-route', machine, input: z.any() });
    const engine = createEngine({ database: store.db, workflows: [wf], evictAfterMs: 1, pollMs: 20 });
    await engine.startWorker();
    try {
      const id = await engine.start('xs-route', null);
      const seen: unknown[] = [];
      for (const e of routes) {
        await engine.send(id, e);
        // Each send is taken or ignored before the next is read: wait for its outcome in the history.
        await until(
          async () => (await engine.history(id)).filter((h) => /^signal\.(received|ignored)$/.test(h.type)).length > seen.length,
          20_000,
          `the outcome of ${JSON.stringify(e)}`,
        );
        seen.push((await engine.get(id)).state);
      }
      expect(seen, 'state after each xstate.route event: rmapp (left) against plain XState').toEqual(plainStates());
    } finally {
      await engine.stop();
    }
  });

  it("still refuses XState's internal events", async () => {
    const wf = defineWorkflow({ name: 'xs-route-internal', machine, input: z.any() });
    const engine = createEngine({ database: store.db, workflows: [wf], evictAfterMs: 1, pollMs: 20 });
    try {
      const id = await engine.start('xs-route-internal', null);
      for (const type of ['xstate.done.actor.x', 'xstate.after.1000.wizard.intro', 'xstate.init', 'xstate.routes', 'rmapp.cancel']) {
        await expect(engine.send(id, { type, to: '#details' }), type).rejects.toBeInstanceOf(ValidationError);
      }
    } finally {
      await engine.stop();
    }
  });
});
