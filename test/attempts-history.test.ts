/**
 * Accounting that must not depend on how often a run leaves memory (issue 14): a step parked in durable
 * sleeps keeps its attempt number and its whole retry budget, and the history bound holds for a loop
 * that is evicted between iterations — it is a property of the run, not of one worker's hold of it.
 */
import { beforeAll, expect, it } from 'vitest';
import { assign, setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, step, type Database } from '../src/index.ts';
import { useTestDatabase } from './helpers/postgres.ts';
import { until } from './helpers/processes.ts';

const store = useTestDatabase();
let db: Database;
beforeAll(() => {
  db = store.db;
});

const stepRows = (runId: string) =>
  db.query<{ type: string; attempt: number }>(
    `select e->>'type' as type, (e->>'attempt')::int as attempt from rmapp_run_history h, jsonb_array_elements(rmapp_history_events(h.events, h.log)) e
     where h.run_id = $1 and e->>'type' like 'step.%' order by h.id`,
    [runId],
  );

it('a step evicted in four durable sleeps keeps attempt 1 and its whole retry budget', async () => {
  const attempts: number[] = [];
  const napper = step(
    async (ctx) => {
      // Sleeps long enough that a slow commit on a loaded machine cannot leave less than evictAfterMs of
      // one by the time the run could leave memory (it then stays, and the count below falls short);
      // 300 ms was not, on a clean-clone CI run.
      for (let i = 0; i < 4; i++) await ctx.sleep(1_000);
      attempts.push(ctx.attempt);
      if (ctx.attempt === 1) throw Object.assign(new Error('the service blinked'), { category: 'transient' });
      return 'rested';
    },
    { retry: { maxAttempts: 2, initialDelayMs: 10 } },
  );
  const machine = setup({ actors: { napper } }).createMachine({
    id: 'napper',
    initial: 'napping',
    states: { napping: { invoke: { src: 'napper', onDone: 'done' } }, done: { type: 'final' } },
  });
  const engine = createEngine({
    database: db,
    workflows: [defineWorkflow({ name: 'test.napper', machine, input: z.object({}) })],
    evictAfterMs: 5,
    pollMs: 20,
  });
  let evictions = 0;
  engine.on('run.waiting', () => evictions++);
  await engine.startWorker();
  try {
    const id = await engine.start('test.napper', {});
    const run = await engine.waitFor(id, { timeoutMs: 30_000 });
    expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
    expect(evictions, 'the run left memory in its sleeps').toBeGreaterThanOrEqual(8);
    // The work returned twice (attempts 1 and 2); each sleep's wake-up resumed the same attempt.
    expect(attempts).toEqual([1, 2]);
    const rows = await stepRows(id);
    expect(rows.filter((r) => r.type === 'step.started').map((r) => r.attempt)).toEqual([1, 2]);
    const resumed = rows.filter((r) => r.type === 'step.resumed');
    expect(resumed.length).toBeGreaterThanOrEqual(8);
    expect(
      resumed.filter((r) => r.attempt !== 1 && r.attempt !== 2),
      'resumptions of an attempt that never started',
    ).toEqual([]);
    expect(rows.filter((r) => r.type === 'step.retrying').map((r) => r.attempt)).toEqual([1]);
    expect(rows.filter((r) => r.type === 'step.succeeded').map((r) => r.attempt)).toEqual([2]);
  } finally {
    await engine.stop();
  }
});

it('a loop evicted between its iterations stays within its history bound', async () => {
  type Ctx = { n: number };
  const machine = setup({ types: {} as { context: Ctx } }).createMachine({
    id: 'ticker',
    context: { n: 0 },
    initial: 'waiting',
    states: {
      // Loops until the test has counted enough evictions (a fixed count of iterations could fall short of
      // them on a loaded machine, where a timer may fire before its run leaves memory).
      waiting: { after: { 60: 'ticking' }, on: { enough: 'done' } },
      ticking: { entry: assign({ n: ({ context }) => context.n + 1 }), always: 'waiting' },
      done: { type: 'final' },
    },
  });
  const engine = createEngine({
    database: db,
    workflows: [defineWorkflow({ name: 'test.ticker', machine, input: z.object({}) })],
    evictAfterMs: 5,
    pollMs: 20,
    // A bound the run must cross: at least 20 evictions (asserted below) write at least 20 rows, even on
    // a loaded machine where several iterations share one hold and one commit (a CI run saw fewer than
    // the 25 rows a bound of 30 compacts at, and no summary).
    history: { maxRows: 12, keepLast: 4 },
  });
  let evictions = 0;
  engine.on('run.waiting', () => evictions++);
  await engine.startWorker();
  try {
    const id = await engine.start('test.ticker', {});
    let most = 0;
    const count = async () =>
      (await db.query<{ n: number }>('select count(*)::int as n from rmapp_run_history where run_id = $1', [id]))[0]?.n ?? 0;
    let told = false;
    await until(
      async () => {
        most = Math.max(most, await count());
        if (evictions >= 20 && !told) {
          told = true;
          await engine.send(id, { type: 'enough' });
        }
        return (await engine.get(id)).status === 'succeeded';
      },
      45_000,
      'the loop to leave memory 20 times and finish',
    );
    // At least 20 evictions: enough rows per hold to need the bound.
    expect(evictions, 'the run left memory between iterations').toBeGreaterThanOrEqual(20);
    expect(most, 'history rows seen at any time').toBeLessThanOrEqual(12);
    const [kept] = await db.query<{ history_rows: number }>('select history_rows from rmapp_runs where id = $1', [id]);
    expect(kept?.history_rows, 'the run row counts its history rows').toBe(await count());
    const [summary] = await db.query<{ rows: number }>(
      `select (e->'data'->>'rows')::int as rows from rmapp_run_history h, jsonb_array_elements(rmapp_history_events(h.events, h.log)) e
       where h.run_id = $1 and e->>'type' = 'history.compacted'`,
      [id],
    );
    expect(summary?.rows, 'rows folded into the summary').toBeGreaterThan(0);
  } finally {
    await engine.stop();
  }
});

it('a step whose every allowed attempt was cut off mid-work fails as never finished instead of running forever', async () => {
  const { createTestKit } = await import('../src/state_machine/testing/index.ts');
  let executions = 0;
  const fragile = step(
    async () => {
      executions++;
      return 'done';
    },
    { retry: { maxAttempts: 2, initialDelayMs: 10 } },
  );
  const machine = setup({ actors: { fragile } }).createMachine({
    id: 'fragile',
    initial: 'working',
    states: { working: { invoke: { src: 'fragile', onDone: 'done' } }, done: { type: 'final' } },
  });
  const kit = await createTestKit({ workflows: [defineWorkflow({ name: 'test.fragile', machine, input: z.object({}) })] });
  try {
    // The worker dies after the step's work, before its completion is recorded: twice, its limit.
    const first = kit.crashAt({ step: 'fragile', when: 'succeeded' });
    const id = await kit.engine.start('test.fragile', {});
    await first;
    // The resumed worker claims the run only after start-up, so the hook is in place before the step.
    await kit.resume();
    await kit.crashAt({ step: 'fragile', when: 'succeeded' });
    const engine = await kit.resume();
    const run = await engine.waitFor(id, { timeoutMs: 10_000 });
    expect(run.status).toBe('failed');
    expect(run.error).toMatchObject({ code: 'STEP_NEVER_FINISHED', category: 'timeout' });
    expect(executions, 'executions of the step').toBe(2);
  } finally {
    await kit.close();
  }
});
