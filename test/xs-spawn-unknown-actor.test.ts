/**
 * A spawn of a name `setup({ actors })` does not register (a typo: `spawnChild('cuonter')`,
 * `enqueue.spawnChild('cuonter')`; `spawn('cuonter')` in `assign` throws, in XState as here): plain XState logs "Actor type 'cuonter' not found", leaves a child
 * slot with no actor in `snapshot.children` and runs on — but its `getPersistedSnapshot()` then throws,
 * so no durable engine can store it. rmapp's check of the write read that empty slot's `src` outside any
 * handler: an uncaught TypeError in the worker's committer, and the run never wrote again (its waiter
 * timed out). It must fail the run instead, saying what to fix (docs/xstate-semantics.md, "Refused").
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { assign, createActor, enqueueActions, sendTo, setup, spawnChild } from 'xstate';
import { z } from 'zod';
import { defineWorkflow } from '../src/index.ts';
import { createTestKit, type TestKit } from '../src/state_machine/testing/test-kit.ts';

const counter = setup({}).createMachine({ context: { n: 0 } });

/** The spawn happens on `GO`, after the run has started. */
const machines = {
  'enqueue.spawnChild': setup({ actors: { counter } }).createMachine({
    context: { n: 0 },
    on: {
      GO: { actions: enqueueActions(({ enqueue }) => enqueue.spawnChild('cuonter' as never, { id: 'c' })) },
      X: { actions: assign({ n: 1 }) },
    },
  }),
  spawnChild: setup({ actors: { counter } }).createMachine({
    context: { n: 0 },
    on: { GO: { actions: spawnChild('cuonter' as never, { id: 'c' }) }, X: { actions: assign({ n: 1 }) } },
  }),
  'spawnChild in a child machine': setup({
    actors: {
      inner: setup({ actors: { counter } }).createMachine({ on: { GO: { actions: spawnChild('cuonter' as never, { id: 'c' }) } } }),
    },
  }).createMachine({
    context: { n: 0 },
    invoke: { id: 'inner', src: 'inner' },
    on: { GO: { actions: sendTo('inner', { type: 'GO' }) }, X: { actions: assign({ n: 1 }) } },
  }),
};

let kit: TestKit | null = null;
afterEach(async () => {
  await kit?.close();
  kit = null;
  vi.restoreAllMocks();
});

describe('a spawn of a name setup() does not register', () => {
  for (const [how, machine] of Object.entries(machines)) {
    it(`${how}: plain XState runs on but cannot persist; rmapp fails the run naming the fix`, async () => {
      vi.spyOn(console, 'error').mockImplementation(() => {});
      const plain = createActor(machine);
      // XState's own stop of a tree holding such a slot throws too (its error observer hears it).
      plain.subscribe({ error: () => {} });
      plain.start();
      plain.send({ type: 'GO' });
      plain.send({ type: 'X' });
      expect(plain.getSnapshot().status, `${how}: plain XState's status`).toBe('active');
      expect(() => plain.getPersistedSnapshot(), `${how}: plain XState's persisted snapshot`).toThrow();
      plain.stop();

      const uncaught: unknown[] = [];
      const onUncaught = (err: unknown) => uncaught.push(err);
      process.on('uncaughtException', onUncaught);
      try {
        const def = defineWorkflow({ name: 'xs.spawnUnknown', machine, input: z.object({}) });
        kit = await createTestKit({ workflows: [def] });
        const id = await kit.engine.start(def, {});
        await kit.engine.send(id, { type: 'GO' });
        const run = await kit.engine.waitFor(id, { timeoutMs: 10_000 });
        expect(uncaught, `${how}: exceptions no handler caught`).toEqual([]);
        expect({ status: run.status, code: run.error?.code }, `${how}: the run`).toEqual({ status: 'failed', code: 'UNDURABLE_SNAPSHOT' });
        expect(run.error?.message, `${how}: the run's error`).toMatch(/no actor.*setup\(\{ actors \}\)/s);
      } finally {
        process.off('uncaughtException', onUncaught);
      }
    }, 30_000);
  }
});
