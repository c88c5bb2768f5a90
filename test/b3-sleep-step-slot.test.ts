/**
 * `stepConcurrency` caps the steps of a kind working at once on a worker (README, "Back-pressure and
 * fairness"). A step parked in `ctx.sleep` does no work: a run that leaves memory in the sleep gives its
 * slot back, but one kept in memory (here `evictAfterMs` is long) held it for the whole sleep, and every
 * other step of the kind waited for it. The sleeping step gives its slot back, and takes it again at its
 * wake: with the slot taken by then, it waits for it before its work goes on.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, step, type StepContext } from '../src/index.ts';
import { engineDatabaseFor } from './helpers/postgres.ts';
import { until } from './helpers/processes.ts';

const ledger: string[] = [];
let openGate: () => void = () => {};

const napThenWork = step(
  async (ctx: StepContext<unknown>) => {
    await ctx.sleep(3_000);
    ledger.push('sleeper works');
    return 1;
  },
  { kind: 'limited' },
);
const gatedWork = step(
  async () => {
    ledger.push('other begins');
    await new Promise<void>((resolve) => (openGate = resolve));
    ledger.push('other ends');
    return 1;
  },
  { kind: 'limited' },
);
const oneStep = (name: string, src: 'napThenWork' | 'gatedWork') =>
  defineWorkflow({
    name,
    input: z.object({}),
    machine: setup({ actors: { napThenWork, gatedWork } }).createMachine({
      id: name.replace(/\W/g, ''),
      initial: 'a',
      states: { a: { invoke: { src, onDone: 'done' } }, done: { type: 'final' } },
    }),
  });
const sleeper = oneStep('b3.slot-sleeper', 'napThenWork');
const other = oneStep('b3.slot-other', 'gatedWork');

describe.each(['pglite', 'postgres'] as const)('a step sleeping in ctx.sleep and its stepConcurrency slot (%s)', (kind) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    openGate();
    for (const c of cleanups.reverse()) await c();
  });

  it('gives the slot back while it sleeps in memory and waits for it at its wake', async () => {
    ledger.length = 0;
    const engine = createEngine({
      database: await engineDatabaseFor(kind, cleanups),
      workflows: [sleeper, other],
      stepConcurrency: { limited: 1 },
      evictAfterMs: 600_000,
      pollMs: 50,
    });
    cleanups.push(() => engine.stop({ graceMs: 0 }));
    await engine.startWorker();
    const a = await engine.start(sleeper, {});
    await until(async () => (await engine.history(a)).some((h) => h.type === 'step.sleeping'), 20_000, `run ${a} to sleep`);
    const b = await engine.start(other, {});
    await until(() => ledger.length > 0, 20_000, `a step of kind limited to work (run ${b}, or run ${a} after its sleep)`);
    expect(ledger, `steps of kind limited (1 slot) that worked, run ${a} sleeping in memory`).toEqual(['other begins']);
    // The sleep is over while the other step holds the slot: the sleeper waits for it.
    const due = Date.parse(
      String(((await engine.history(a)).find((h) => h.type === 'step.sleeping')?.data as { until?: string } | undefined)?.until),
    );
    await until(() => Date.now() > due + 300, 20_000, `the sleep of run ${a} to be over`);
    expect(ledger, `steps of kind limited that worked, the slot held by run ${b}`).toEqual(['other begins']);
    openGate();
    expect((await engine.waitFor(a, { timeoutMs: 20_000 })).status, `run ${a}`).toBe('succeeded');
    expect(ledger, 'steps of kind limited, in order').toEqual(['other begins', 'other ends', 'sleeper works']);
  }, 60_000);
});
