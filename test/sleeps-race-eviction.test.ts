/**
 * A step with two `ctx.sleep` calls in flight, `Promise.race` of a short and a long one. A run whose
 * steps only sleep leaves memory and is written as `waiting` with the time it must wake (README,
 * "Durable sleep"). The session kept one due time per step, and the long sleep replaced the short one's:
 * the run was written to wake when the long sleep ended, and the step that should have gone on after the
 * short one waited for the long one too.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, step, type StepContext } from '../src/index.ts';
import { openTestStore } from './helpers/postgres.ts';
import { until } from './helpers/processes.ts';

const SHORT_MS = 1_500;
const LONG_MS = 600_000;

const race = defineWorkflow({
  name: 'sleeps.race',
  input: z.object({}),
  machine: setup({
    actors: {
      nap: step(async (ctx: StepContext<unknown>) => {
        await Promise.race([ctx.sleep(SHORT_MS), ctx.sleep(LONG_MS)]);
        return 'woke';
      }),
    },
  }).createMachine({
    id: 'sleepsRace',
    initial: 'nap',
    states: { nap: { invoke: { src: 'nap', onDone: 'done' } }, done: { type: 'final' } },
  }),
});

describe.each(['pglite', 'postgres'] as const)('Promise.race of two sleeps, the run evicted meanwhile (%s)', (kind) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('the run is written to wake when the first sleep ends, and finishes then', async () => {
    const store = await openTestStore(kind);
    cleanups.push(() => store.close());
    const engine = createEngine({ database: store.db, workflows: [race], evictAfterMs: 100, pollMs: 100 });
    cleanups.push(() => engine.stop({ graceMs: 0 }));
    await engine.startWorker();
    const id = await engine.start(race, {});
    const dues = async () =>
      (await engine.history(id)).filter((h) => h.type === 'step.sleeping').map((h) => Date.parse((h.data as { until: string }).until));
    await until(
      async () => (await dues()).length === 2 && (await engine.get(id)).status === 'waiting',
      20_000,
      `run ${id} to sleep twice and leave memory`,
    );
    const [first, second] = (await dues()).sort((a, b) => a - b) as [number, number];
    const { wakeAt } = await engine.get(id);
    expect(second - first, 'the two sleeps end far apart').toBeGreaterThan(LONG_MS / 2);
    expect(
      wakeAt?.getTime(),
      `run ${id}'s wake-up time against its sleeps' (${new Date(first).toISOString()}, ${new Date(second).toISOString()})`,
    ).toBe(first);
    await until(async () => (await engine.get(id)).status === 'succeeded', 30_000, `run ${id} to finish after its first sleep`);
  }, 60_000);
});
