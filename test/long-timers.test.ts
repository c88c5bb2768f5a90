/**
 * Timers longer than a Node timer holds (2^31-1 ms, about 24.8 days): Node fires a longer `setTimeout`
 * after 1 ms, so a durable workflow's month-long `after`, a step's month-long `sleep` or a step
 * `timeoutMs` of a month ended at once. The engine's wall clock keeps them (src/state_machine/clock.ts).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createActor, setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, step, systemClock, type Engine } from '../src/index.ts';
import { useTestDatabase } from './helpers/postgres.ts';

const DAY = 86_400_000;
const MONTH = 30 * DAY;

const remindLater = defineWorkflow({
  name: 'test.remindLater',
  machine: setup({ delays: { month: MONTH } }).createMachine({
    id: 'remindLater',
    initial: 'waiting',
    states: { waiting: { after: { month: 'reminded' } }, reminded: { type: 'final' } },
  }),
  input: z.object({}),
});

const sleepsAMonth = step(async ({ sleep }: { sleep: (ms: number) => Promise<void> }) => {
  await sleep(MONTH);
  return 'woke';
});
const sleeper = defineWorkflow({
  name: 'test.sleepsAMonth',
  machine: setup({ actors: { sleepsAMonth } }).createMachine({
    id: 'sleeper',
    initial: 'sleeping',
    states: { sleeping: { invoke: { src: 'sleepsAMonth', onDone: 'done' } }, done: { type: 'final' } },
  }),
  input: z.object({}),
});

const quick = step(
  async () => {
    await new Promise((r) => setTimeout(r, 50));
    return 'done in time';
  },
  { timeoutMs: MONTH },
);
const patient = defineWorkflow({
  name: 'test.monthTimeout',
  machine: setup({ actors: { quick } }).createMachine({
    id: 'patient',
    initial: 'working',
    states: {
      working: { invoke: { src: 'quick', onDone: 'done', onError: 'failed' } },
      done: { type: 'final' },
      failed: { type: 'final' },
    },
  }),
  input: z.object({}),
});

const store = useTestDatabase();
let engine: Engine;
const warnings: string[] = [];
const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);

beforeAll(async () => {
  process.on('warning', onWarning);
  engine = createEngine({ database: store.db, workflows: [remindLater, sleeper, patient], pollMs: 50 });
  await engine.startWorker();
});
afterAll(async () => {
  process.off('warning', onWarning);
  await engine.stop();
});

it("the wall clock's setTimeout and sleep keep a month: nothing fires early, and clearing still works", async () => {
  let fired = 0;
  const handle = systemClock.setTimeout(() => (fired += 1), MONTH);
  const aborted = new AbortController();
  const slept = systemClock.sleep(MONTH, aborted.signal).then(
    () => 'woke',
    (reason: unknown) => `aborted: ${String(reason)}`,
  );
  await new Promise((r) => setTimeout(r, 100));
  expect(fired, 'a month-long timer fired after 100 ms').toBe(0);
  systemClock.clearTimeout(handle);
  aborted.abort('stop');
  expect(await slept).toBe('aborted: stop');
  // Short ones are plain timers still.
  await new Promise<void>((resolve) => systemClock.setTimeout(resolve, 5));
  await systemClock.sleep(5);
});

it("a workflow's month-long `after` waits (plain XState's fires at once), and its run leaves memory", async () => {
  const plain = createActor(remindLater.machine).start();
  await new Promise((r) => setTimeout(r, 50));
  const plainValue = plain.getSnapshot().value;
  plain.stop();
  const id = await engine.start(remindLater, {});
  await expect.poll(async () => (await engine.get(id)).status, { timeout: 10_000 }).toBe('waiting');
  await new Promise((r) => setTimeout(r, 300));
  const run = await engine.get(id);
  expect(run.status, `the run ended early (plain XState's value after 50 ms: ${JSON.stringify(plainValue)})`).toBe('waiting');
  expect(run.wakeAt!.getTime() - Date.now(), 'the run wakes in about a month').toBeGreaterThan(MONTH - DAY);
});

it("a step's month-long sleep waits, durably", async () => {
  const id = await engine.start(sleeper, {});
  await expect.poll(async () => (await engine.get(id)).status, { timeout: 10_000 }).toBe('waiting');
  await new Promise((r) => setTimeout(r, 300));
  const run = await engine.get(id);
  expect(run.status).toBe('waiting');
  expect(run.wakeAt!.getTime() - Date.now()).toBeGreaterThan(MONTH - DAY);
});

it('a step with a timeoutMs of a month finishes instead of timing out at once', async () => {
  warnings.length = 0; // the plain XState actor above warned
  const id = await engine.start(patient, {});
  const run = await engine.waitFor(id, { timeoutMs: 10_000 });
  const failure = (await engine.history(id)).find((e) => e.type === 'step.failed');
  expect(run.state, `the step failed: ${JSON.stringify(failure)}`).toBe('done');
  expect(warnings.filter((w) => w.startsWith('TimeoutOverflowWarning'))).toEqual([]);
});

const never = defineWorkflow({
  name: 'test.neverFires',
  machine: setup({ delays: { forever: () => Infinity, eons: () => 1e15, month: MONTH } }).createMachine({
    id: 'neverFires',
    type: 'parallel',
    states: {
      a: { initial: 'w', states: { w: { after: { forever: 'fired' } }, fired: {} } },
      b: { initial: 'w', states: { w: { after: { eons: 'fired' } }, fired: {} } },
      m: { initial: 'w', states: { w: { after: { month: 'fired' } }, fired: {} } },
      done: { initial: 'open', states: { open: { on: { go: 'closed' } }, closed: { type: 'final' } } },
    },
  }),
  input: z.object({}),
});

it('a delay of Infinity, or one that ends after 9999, never fires — in memory or restored by another worker — and wakes nothing', async () => {
  const first = createEngine({ database: store.db, workflows: [never], pollMs: 50 });
  await first.startWorker();
  const id = await first.start(never, {});
  await expect.poll(async () => (await first.get(id)).status, { timeout: 20_000 }).toBe('waiting');
  let run = await first.get(id);
  expect(run.state).toEqual({ a: 'w', b: 'w', m: 'w', done: 'open' });
  expect(run.wakeAt!.getTime() - Date.now(), 'wakes for the month, not for the timers that never fire').toBeGreaterThan(MONTH - DAY);
  await first.stop();
  // Another worker restores it for a signal: the persisted timers are re-armed, and still never fire.
  const second = createEngine({ database: store.db, workflows: [never], pollMs: 50 });
  await second.startWorker();
  await second.send(id, { type: 'go' });
  await expect.poll(async () => ((await second.get(id)).state as { done: string }).done, { timeout: 20_000 }).toBe('closed');
  await new Promise((r) => setTimeout(r, 300));
  run = await second.get(id);
  expect(run.state, 'after a restore').toEqual({ a: 'w', b: 'w', m: 'w', done: 'closed' });
  expect(run.wakeAt!.getTime() - Date.now()).toBeGreaterThan(MONTH - DAY);
  await second.cancel(id);
  await second.stop();
});

it('a sleep that cannot be stored (Infinity, NaN, past 9999) fails its step with what to do instead; a negative one is none', async () => {
  const cases = [Infinity, Number.NaN, 1e15, -Infinity];
  const sleepsBadly = step(async ({ input, sleep }: { input: { i: number }; sleep: (ms: number) => Promise<void> }) => {
    await sleep(cases[input.i]!);
  });
  const bad = defineWorkflow({
    name: 'test.badSleep',
    machine: setup({ actors: { sleepsBadly } }).createMachine({
      id: 'badSleep',
      initial: 'sleeping',
      context: ({ input }: { input: { i: number } }) => ({ i: input.i }),
      states: {
        sleeping: { invoke: { src: 'sleepsBadly', input: ({ context }) => ({ i: context.i }), onDone: 'done' } },
        done: { type: 'final' },
      },
    }),
    input: z.object({ i: z.number() }),
  });
  const e = createEngine({ database: store.db, workflows: [bad], pollMs: 50 });
  await e.startWorker();
  try {
    for (const [i, ms] of cases.entries()) {
      const run = await e.waitFor(await e.start(bad, { i }), { timeoutMs: 20_000 });
      if (ms === -Infinity) {
        // A negative sleep is no sleep.
        expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
        continue;
      }
      expect(run.status, `sleep(${ms})`).toBe('failed');
      expect(run.error?.message, `sleep(${ms})`).toMatch(
        new RegExp(`ctx\\.sleep\\(ms\\): ms must be a number of milliseconds that ends by 9999-12-31 \\(got ${String(ms)}\\)`),
      );
    }
  } finally {
    await e.stop();
  }
});

it("the wall clock's timers have unref(), which also holds for a timer re-armed on the way", async () => {
  const { spawnSync } = await import('node:child_process');
  const script = `
    const { systemClock } = await import('./src/state_machine/clock.ts');
    const h = systemClock.setTimeout(() => console.log('fired'), 30 * 86400000);
    if (h.unref() !== h) throw new Error('unref() does not return the timer');
    systemClock.setTimeout(() => console.log('fired'), 60000).unref();`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: new URL('..', import.meta.url).pathname,
    encoding: 'utf8',
    timeout: 30_000,
  });
  expect({ status: r.status, signal: r.signal, out: r.stdout, err: r.stderr }).toEqual({ status: 0, signal: null, out: '', err: '' });
});

it('durations that cannot be stored as dates are refused where they are given: a run timeout, a buffered signal', async () => {
  await expect(engine.start(patient, {}, { timeoutMs: 2.6e14 })).rejects.toMatchObject({
    code: 'VALIDATION',
    message: expect.stringMatching(/timeoutMs must be a positive number of milliseconds ending by 9999-12-31 \(got 260000000000000\)/),
  });
  await expect(engine.start(patient, {}, { timeoutMs: 1e300 })).rejects.toMatchObject({ code: 'VALIDATION' });
  const id = await engine.start(remindLater, {});
  await expect(engine.send(id, { type: 'nothing' }, { buffer: { forMs: 1e16 } })).rejects.toMatchObject({
    code: 'VALIDATION',
    message: expect.stringMatching(/buffer\.forMs must be a positive number of milliseconds ending by 9999-12-31/),
  });
  await engine.cancel(id);
});

it('the TestClock fires a NaN delay at once, as Node does, and refuses to move by a time that is not one', async () => {
  const { TestClock } = await import('../src/state_machine/testing/test-clock.ts');
  const clock = new TestClock(0);
  let fired = 0;
  clock.setTimeout(() => (fired += 1), Number.NaN);
  clock.setTimeout(() => (fired += 100), Infinity);
  expect(await clock.next(async () => {})).toBe(true);
  expect({ fired, now: clock.now(), pending: clock.pending }).toEqual({ fired: 1, now: 0, pending: 0 });
  for (const ms of [Infinity, Number.NaN, -500])
    await expect(clock.advance(ms, async () => {})).rejects.toThrow(/TestClock\.advance: ms must be a finite number ≥ 0/);
  expect(clock.now()).toBe(0);
});

it('a step run outside an engine (plain createActor, a unit test) sleeps its month too', async () => {
  const plain = createActor(sleeper.machine).start();
  await new Promise((r) => setTimeout(r, 100));
  expect(plain.getSnapshot().value, 'the month-long sleep ended after 100 ms').toBe('sleeping');
  plain.stop();
});
