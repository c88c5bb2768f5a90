/**
 * Two `ctx.sleep` calls of one attempt in flight at once. The session counts the steps whose work runs
 * (`working`), and a session with work running fences itself once its lease can no longer be trusted
 * (README, "One owner at a time"). Each sleep took the attempt's share off the count, so two sleeps took
 * off two: in `Promise.all` the count read 0 while another step of the run worked, and after
 * `Promise.race` (the second sleep never woke within the attempt) it stayed one short for the rest of
 * the session. Either way a step working under a lease that its worker could no longer renew was not
 * stopped, and could run beside the next owner's attempt. Here renewals fail; the working step's signal
 * must abort (`run.lost`, reason `self-fence`).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, step, type StepContext } from '../src/index.ts';
import { hookedStore } from './helpers/hooked-store.ts';
import { openTestStore } from './helpers/postgres.ts';
import { until } from './helpers/processes.ts';

const LONG_MS = 120_000;

/** Works until its signal aborts, saying so; the step a lost lease must stop. */
const worked: string[] = [];
const work = step(async (ctx: StepContext<unknown>) => {
  worked.push(`${ctx.runId} started`);
  await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
  worked.push(`${ctx.runId} aborted`);
  return 1;
});
const napBoth = step(async (ctx: StepContext<unknown>) => {
  await Promise.all([ctx.sleep(LONG_MS), ctx.sleep(LONG_MS + 1_000)]);
  return 1;
});
const napFirst = step(async (ctx: StepContext<unknown>) => {
  await Promise.race([ctx.sleep(300), ctx.sleep(LONG_MS)]);
  return 1;
});

/** `work` beside a step whose two sleeps are in flight together. */
const beside = defineWorkflow({
  name: 'b3.sleeps-beside-work',
  input: z.object({}),
  machine: setup({ actors: { work, napBoth } }).createMachine({
    id: 'b3SleepsBeside',
    type: 'parallel',
    states: {
      w: { invoke: { src: 'work' } },
      n: { invoke: { src: 'napBoth' } },
    },
  }),
});
/** `work` after a step that returned with one of its sleeps still in flight. */
const after = defineWorkflow({
  name: 'b3.sleeps-then-work',
  input: z.object({}),
  machine: setup({ actors: { work, napFirst } }).createMachine({
    id: 'b3SleepsThen',
    initial: 'nap',
    states: {
      nap: { invoke: { src: 'napFirst', onDone: 'work' } },
      work: { invoke: { src: 'work' } },
    },
  }),
});

describe.each(['pglite', 'postgres'] as const)('two ctx.sleep calls in flight in one attempt (%s)', (kind) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it.each([
    ['beside a step with two sleeps in flight (Promise.all)', beside],
    ['after a step whose second sleep was still in flight when it returned (Promise.race)', after],
  ] as const)(
    'a working step whose lease cannot be renewed is self-fenced: %s',
    async (_how, wf) => {
      const store = await openTestStore(kind);
      cleanups.push(() => store.close());
      let cut = false;
      const database = hookedStore(store.db, (sql) => {
        if (cut && /greatest\(r\.lease_expires_at/.test(sql))
          throw Object.assign(new Error('renewal cut off (test)'), { code: 'ECONNRESET' });
      });
      const engine = createEngine({ database, workflows: [wf], leaseMs: 600, pollMs: 100, evictAfterMs: 600_000 });
      cleanups.push(async () => {
        cut = false;
        await engine.stop({ graceMs: 0 });
      });
      const lost: string[] = [];
      engine.on('run.lost', (e) => lost.push(`${e.runId} ${e.reason}`));
      await engine.startWorker();
      const id = await engine.start(wf, {});
      const sleeps = async () => (await engine.history(id)).filter((h) => h.type === 'step.sleeping').length;
      await until(async () => worked.includes(`${id} started`) && (await sleeps()) === 2, 20_000, `run ${id} to sleep twice and work`);
      cut = true;
      // The session either fences itself, or keeps working until the run's lease expired and the run
      // was claimed again (this worker's claims still reach the database: `reclaimed`).
      await until(() => lost.some((l) => l.startsWith(id)), 20_000, `the session of run ${id} to end`);
      expect(
        lost.find((l) => l.startsWith(id)),
        `how the session of run ${id} ended, step work running, its renewals failing (${worked.filter((w) => w.startsWith(id)).join(', ')})`,
      ).toBe(`${id} self-fence`);
    },
    40_000,
  );
});
