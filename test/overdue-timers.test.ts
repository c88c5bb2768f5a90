/**
 * A run whose worker was away past a delayed event's due time, with signals sent meanwhile: plain
 * XState, running the whole time, takes every signal sent before the due time first, then the delayed
 * event, then the later signals; chained delays keep their spacing. The restored run must end where the
 * same machine driven by plain XState on the same timeline ends (src/state_machine/timer-catch-up.ts).
 * Real worker engines on the wall clock, on Postgres and PGlite; the reference is plain XState on a
 * test clock driven through the timeline the runs actually had (read back from the database).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createActor, setup, type AnyStateMachine } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, openDatabase, type Database, type Engine } from '../src/index.ts';
import { TestClock } from '../src/state_machine/testing/test-clock.ts';
import { TimerCatchUp } from '../src/state_machine/timer-catch-up.ts';
import { readTimers, rearmTimers, type TimerRecord } from '../src/state_machine/timers.ts';
import { systemClock } from '../src/state_machine/clock.ts';
import { engineDatabaseFor } from './helpers/postgres.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Times out after `ms` unless GO comes first; GO after that is taken in `timedOut`. */
const timesOutAfter = (id: string, ms: number) =>
  setup({ types: {} as { events: { type: 'GO' } } }).createMachine({
    id,
    initial: 'waiting',
    states: {
      waiting: { after: { [ms]: 'timedOut' }, on: { GO: 'went' } },
      went: { type: 'final' },
      timedOut: { on: { GO: 'wentLate' } },
      wentLate: { type: 'final' },
    },
  });
const timeout = timesOutAfter('timeout', 4000);
const shortTimeout = timesOutAfter('shortTimeout', 2500);

/** a → b after 2 s, b → c 1 s later; GO ends the run in the state it is taken in. */
const chain = setup({ types: {} as { events: { type: 'GO' } } }).createMachine({
  id: 'chain',
  initial: 'a',
  states: {
    a: { after: { 2000: 'b' }, on: { GO: 'gotA' } },
    b: { after: { 1000: 'c' }, on: { GO: 'gotB' } },
    c: { on: { GO: 'gotC' } },
    gotA: { type: 'final' },
    gotB: { type: 'final' },
    gotC: { type: 'final' },
  },
});

const workflows = [
  defineWorkflow({ name: 'test.overdue.timeout', machine: timeout, input: z.object({}) }),
  defineWorkflow({ name: 'test.overdue.shortTimeout', machine: shortTimeout, input: z.object({}) }),
  defineWorkflow({ name: 'test.overdue.chain', machine: chain, input: z.object({}) }),
];

/** The state plain XState reaches when started at `0`, sent GO at `sentAfter` ms, and left running past every delay. */
async function plainXState(machine: AnyStateMachine, sentAfter: number): Promise<unknown> {
  const clock = new TestClock(0);
  const actor = createActor(machine, { clock }).start();
  await clock.advance(sentAfter, async () => {});
  actor.send({ type: 'GO' });
  await clock.advance(10_000, async () => {});
  return actor.getSnapshot().value;
}

describe.each(['postgres', 'pglite'] as const)('overdue timers and signals sent meanwhile (%s)', (kind) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('a restored run takes them in the order plain XState would have', { timeout: 60_000 }, async () => {
    const database = await engineDatabaseFor(kind, cleanups);
    // PGlite in memory lives in one store: both engines share it, as two engines share a Postgres.
    const db: Database | undefined = kind === 'pglite' ? await openDatabase(database) : undefined;
    if (db) cleanups.push(() => db.close());
    const engineOn = (): Engine => createEngine({ database: db ?? database, workflows, pollMs: 50 });

    const first = engineOn();
    await first.startWorker();
    const ids = {
      timeout: await first.start('test.overdue.timeout', {}),
      shortTimeout: await first.start('test.overdue.shortTimeout', {}),
      chain: await first.start('test.overdue.chain', {}),
    };
    const started = Date.now();
    for (const id of Object.values(ids)) await expect.poll(async () => (await first.get(id)).status, { timeout: 10_000 }).toBe('waiting');
    // The worker goes away (a deploy): its runs' timers are persisted, nothing fires them meanwhile.
    await first.stop();
    const away = Date.now() - started;

    const client = engineOn();
    // Before `timeout`'s 4 s; after `shortTimeout`'s 2.5 s and after `chain`'s b → c at 3 s.
    await client.send(ids.timeout, { type: 'GO' });
    await sleep(Math.max(0, started + 3_300 - Date.now()));
    await client.send(ids.shortTimeout, { type: 'GO' });
    await client.send(ids.chain, { type: 'GO' });
    await sleep(Math.max(0, started + 4_300 - Date.now()));

    // The timeline each run actually had, from the database: when its first state began, when GO was sent.
    const reader = db ?? (await openDatabase(database));
    if (!db) cleanups.push(() => reader.close());
    const timeline = async (id: string) => {
      const history = await client.history(id);
      const began = new Date(history.find((h) => h.type === 'run.started')!.at).getTime();
      const rows = await reader.query<{ sent: number }>(
        `select extract(epoch from created_at)::float8 * 1000 as sent from rmapp_run_inbox where run_id = $1`,
        [id],
      );
      return { sentAfter: Number(rows[0]!.sent) - began };
    };

    const second = engineOn();
    await second.startWorker();
    try {
      for (const [name, id] of Object.entries(ids)) {
        const machine = { timeout, shortTimeout, chain }[name as keyof typeof ids];
        await second.waitFor(id, { timeoutMs: 20_000 });
        const { sentAfter } = await timeline(id);
        const expected = await plainXState(machine, sentAfter);
        const got = (await second.get(id)).state;
        expect(got, `run ${name}: GO sent ${Math.round(sentAfter)} ms after it began, restored after its delays were due`).toEqual(
          expected,
        );
      }
      // The timeline the test meant: otherwise the comparison above proves less than it says.
      expect(away, 'the first worker stopped before the first delay (2 s) was due').toBeLessThan(1_900);
      expect((await timeline(ids.timeout)).sentAfter, 'GO reached `timeout` before its 4 s').toBeLessThan(3_900);
      expect((await timeline(ids.chain)).sentAfter, 'GO reached `chain` after its b → c at 3 s').toBeGreaterThan(3_100);
      for (const [name, id] of Object.entries(ids)) {
        const types = (await second.history(id)).map((h) => h.type);
        expect(types.indexOf('run.resumed'), `run ${name} was restored before its first state change: ${types.join(', ')}`).toBe(
          types.indexOf('state.entered') + 1,
        );
      }
      expect((await second.get(ids.timeout)).state).toBe('went');
      expect((await second.get(ids.shortTimeout)).state).toBe('wentLate');
      expect((await second.get(ids.chain)).state).toBe('gotC');
    } finally {
      await second.stop();
      await client.stop();
    }
  });
});

/** A `chain` run restored in state a, catching up, with a's delay due `dueAt` rearmed. */
function restoredChain(now: number, dueAt: number) {
  const catchUp = new TimerCatchUp(systemClock);
  const actor = createActor(chain, { clock: catchUp.actorClock, snapshot: chain.resolveState({ value: 'a' }) });
  actor.start();
  catchUp.attach(actor);
  catchUp.begin();
  const overdue: TimerRecord = {
    id: 'xstate.after.2000.chain.a',
    source: '',
    target: '',
    event: { type: 'xstate.after.2000.chain.a' },
    dueAt,
  };
  rearmTimers(actor, [overdue], now, catchUp);
  return { catchUp, actor, overdue };
}

it('while a restored run catches up, its timers are persisted with the due times of its timeline', () => {
  // A write made during the catch-up (the restore's own) must not move an overdue timer to the restore's
  // time, or a crash before it fires would order it after signals sent before that time.
  const now = Date.now();
  const { catchUp, actor, overdue } = restoredChain(now, now - 5_000);
  const held = readTimers(actor, Date.now());
  expect(held.map((t) => t.event.type)).toEqual(['xstate.after.2000.chain.a']);
  expect(Math.abs(held[0]!.dueAt - overdue.dueAt), `persisted due time ${held[0]!.dueAt} against ${overdue.dueAt}`).toBeLessThan(50);

  // Released at its due time (5 s ago), it enters b, whose 1 s delay is due 4 s ago on the run's
  // timeline: held as well; a signal sent 3.5 s ago comes after both and is taken in c.
  catchUp.deliverAt(now - 3_500, () => actor.send({ type: 'GO' }));
  expect(actor.getSnapshot().value).toBe('gotC');
  catchUp.finish();
  actor.stop();
});

it("a delay a caught-up timer starts runs from that timer's due time, and is persisted so", () => {
  const now = Date.now();
  // a's delay was due 600 ms ago: b is entered then, and b's 1 s delay is due 400 ms from now.
  const { catchUp, actor } = restoredChain(now, now - 600);
  catchUp.finish();
  expect(actor.getSnapshot().value).toBe('b');
  const [next] = readTimers(actor, Date.now());
  expect(Math.abs(next!.dueAt - (now + 400)), `b's delay persisted due at ${next!.dueAt - now} ms from the restore, not 400`).toBeLessThan(
    50,
  );
  actor.stop();
});
