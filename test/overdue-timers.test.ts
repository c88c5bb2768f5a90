/**
 * A run whose worker was away past a delayed event's due time, with signals sent meanwhile: plain
 * XState, running the whole time, takes every signal sent before the due time first, then the delayed
 * event, then the later signals; chained delays keep their spacing. The restored run must end where the
 * same machine driven by plain XState on the same timeline ends (src/state_machine/timer-catch-up.ts).
 * Real worker engines on the wall clock, on Postgres and PGlite; the reference is plain XState on a
 * test clock driven through the timeline the runs actually had (read back from the database).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { assign, cancel, createActor, enqueueActions, raise, setup, type AnyStateMachine } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, openDatabase, type Database, type Engine } from '../src/index.ts';
import { TestClock } from '../src/state_machine/testing/test-clock.ts';
import { createTestKit } from '../src/state_machine/testing/test-kit.ts';
import { TimerCatchUp } from '../src/state_machine/timer-catch-up.ts';
import { readTimers, rearmTimers, type TimerRecord } from '../src/state_machine/timers.ts';
import { systemClock, type Clock } from '../src/state_machine/clock.ts';
import { engineDatabaseFor } from './helpers/postgres.ts';
import { hookedStore } from './helpers/hooked-store.ts';
import { appendSignal } from '../src/persistence/inbox.ts';

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
    const engineOn = (evictAfterMs?: number): Engine => createEngine({ database: db ?? database, workflows, pollMs: 50, evictAfterMs });

    // Its runs leave memory 50 ms after they start waiting (not the default 1 s): the stop below must come
    // well before the first delay is due, on a loaded machine too.
    const first = engineOn(50);
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

const isInboxRead = (sql: string) => sql.includes('as sent_at');

/** a → b after 1 s; S1 is taken in b (→ c), S2 in c (→ e) or in b (→ d). */
const buffered = setup({ types: {} as { events: { type: 'S1' } | { type: 'S2' } } }).createMachine({
  id: 'buffered',
  initial: 'a',
  states: {
    a: { after: { 1000: 'b' } },
    b: { on: { S1: 'c', S2: 'd' } },
    c: { on: { S2: 'e' } },
    d: { type: 'final' },
    e: { type: 'final' },
  },
});

/** a → b after 1 s; Y is taken in a without leaving it; X ends the run in the state it is taken in. */
const pinged = setup({ types: {} as { context: { pings: number }; events: { type: 'X' } | { type: 'Y' } } }).createMachine({
  id: 'pinged',
  context: { pings: 0 },
  initial: 'a',
  states: {
    a: { after: { 1000: 'b' }, on: { X: 'xInA', Y: { actions: assign({ pings: ({ context }) => context.pings + 1 }) } } },
    b: { on: { X: 'xInB' } },
    xInA: { type: 'final' },
    xInB: { type: 'final' },
  },
});

describe('the catch-up at its edges (postgres)', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  const edgeWorkflows = [
    ...workflows,
    defineWorkflow({ name: 'test.overdue.buffered', machine: buffered, input: z.object({}) }),
    defineWorkflow({ name: 'test.overdue.pinged', machine: pinged, input: z.object({}) }),
  ];

  it('a signal from a clock that gives no storable instant is dated by the wall clock, not refused', async () => {
    const database = await engineDatabaseFor('postgres', cleanups);
    const db = await openDatabase(database);
    try {
      const engine = createEngine({ database: db, workflows: edgeWorkflows });
      const id = await engine.start('test.overdue.pinged', {});
      for (const sentAt of [NaN, Infinity, -1, 1e20]) {
        const before = Date.now();
        const { appended } = await appendSignal(db, id, { type: 'Y' }, null, null, sentAt);
        expect(appended, `a signal dated ${sentAt}`).toBe(true);
        const [row] = await db.query<{ sent: number }>(
          'select extract(epoch from created_at)::float8 * 1000 as sent from rmapp_run_inbox where run_id = $1 order by id desc limit 1',
          [id],
        );
        expect(Number(row!.sent), `the signal dated ${sentAt}`).toBeGreaterThanOrEqual(before - 1);
      }
      await engine.stop();
    } finally {
      await db.close();
    }
  });

  it("on a test clock, a timer's due time is the clock's, however much real time passes", { timeout: 60_000 }, async () => {
    // The clock does not move while 1.2 s of real time pass; Y makes the run write its timer then.
    const database = await engineDatabaseFor('postgres', cleanups);
    const clock = new TestClock();
    const first = createEngine({ database, workflows: edgeWorkflows, clock, pollMs: 50 });
    await first.startWorker();
    const id = await first.start('test.overdue.pinged', {});
    await sleep(1_200);
    await first.send(id, { type: 'Y' });
    await expect.poll(async () => (await first.history(id)).some((h) => h.type === 'signal.received'), { timeout: 10_000 }).toBe(true);
    await first.stop();
    // Half a second later on the clock, X comes while the worker is away: a's 1 s delay is not due yet.
    await clock.advance(500);
    const client = createEngine({ database, workflows: edgeWorkflows, clock });
    await client.send(id, { type: 'X' });
    const second = createEngine({ database, workflows: edgeWorkflows, clock, pollMs: 50 });
    await second.startWorker();
    try {
      await expect.poll(async () => (await second.get(id)).status, { timeout: 20_000 }).toBe('succeeded');
      expect((await second.get(id)).state, (await second.history(id)).map((h) => h.type).join(', ')).toBe('xInA');
    } finally {
      await second.stop();
      await client.stop();
    }
  });

  /** Starts `name`, lets its first worker go, sends `sends` at their times, and restores it at `restoreAt` on `db`. */
  async function awayAndBack(
    name: string,
    sends: { at: number; event: { type: string }; buffer?: boolean }[],
    restoreAt: number,
    hook: (sql: string) => Promise<void>,
  ) {
    const database = await engineDatabaseFor('postgres', cleanups);
    const first = createEngine({ database, workflows: edgeWorkflows, pollMs: 50 });
    await first.startWorker();
    const id = await first.start(name, {});
    const started = Date.now();
    // Its first state is durable (the run's insert): the worker may go.
    await expect.poll(async () => (await first.get(id)).state, { timeout: 10_000 }).toBeTruthy();
    await first.stop();
    const client = createEngine({ database, workflows: edgeWorkflows });
    for (const x of sends) {
      await sleep(Math.max(0, started + x.at - Date.now()));
      await client.send(id, x.event, x.buffer ? { buffer: { forMs: 600_000 } } : undefined);
    }
    await sleep(Math.max(0, started + restoreAt - Date.now()));
    const db = await openDatabase(database);
    const second = createEngine({ database: hookedStore(db, hook), workflows: edgeWorkflows, pollMs: 50, leaseMs: 3_000 });
    await second.startWorker();
    try {
      // Resumed, then at rest: the run is `waiting` before the new worker's first claim as well (its
      // start does not wait for that claim), which under load came after a first look at its status.
      await expect
        .poll(async () => (await second.history(id)).some((h) => h.type === 'run.resumed') && (await second.get(id)).status !== 'running', {
          timeout: 20_000,
        })
        .toBe(true);
      const history = (await second.history(id)).map((h) => h.type);
      // The first worker went before any delay was due: otherwise there was nothing to catch up on.
      expect(history.indexOf('run.resumed'), `restored before its first state change: ${history.join(', ')}`).toBe(
        history.indexOf('state.entered') + 1,
      );
      return { state: (await second.get(id)).state, history };
    } finally {
      await second.stop();
      await client.stop();
      await db.close();
    }
  }

  it(
    'a timer that comes due while the first read of the inbox is on its way waits for the signals sent before it',
    { timeout: 60_000 },
    async () => {
      // `timeout`'s 4 s delay is not due at the restore (3.7 s) but is before the read (delayed 1.5 s) returns.
      let first = true;
      const { state, history } = await awayAndBack('test.overdue.timeout', [{ at: 100, event: { type: 'GO' } }], 3_700, async (sql) => {
        if (isInboxRead(sql) && first) {
          first = false;
          await sleep(1_500);
        }
      });
      expect(state, `history: ${history.join(', ')}`).toBe(await plainXState(timeout, 100));
    },
  );

  it('a failed first read of the inbox keeps the timers held until a read succeeds', { timeout: 60_000 }, async () => {
    let first = true;
    const { state, history } = await awayAndBack('test.overdue.shortTimeout', [{ at: 100, event: { type: 'GO' } }], 3_000, async (sql) => {
      if (isInboxRead(sql) && first) {
        first = false;
        throw Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' });
      }
    });
    expect(state, `history: ${history.join(', ')}`).toBe(await plainXState(shortTimeout, 100));
  });

  it('a buffered signal is offered again after each timer of the catch-up, before the later signals', { timeout: 60_000 }, async () => {
    // S1 (buffered) comes in a, b is entered at 1 s, S2 at 1.6 s: XState (with S1 kept) takes S1 in b, S2 in c.
    const sends = [
      { at: 100, event: { type: 'S1' }, buffer: true },
      { at: 1_600, event: { type: 'S2' } },
    ];
    const { state, history } = await awayAndBack('test.overdue.buffered', sends, 2_400, async () => {});
    expect(state, `history: ${history.join(', ')}`).toBe('e');
  });
});

/** A `chain` run restored in state a with a's delay due `dueAt` rearmed: catching up (signals waiting), or not. */
function restoredChain(now: number, dueAt: number, clock: Clock = systemClock, catchingUp = true) {
  const catchUp = new TimerCatchUp(clock);
  const actor = createActor(chain, { clock: catchUp.actorClock, snapshot: chain.resolveState({ value: 'a' }) });
  catchUp.attach(actor);
  actor.start();
  if (catchingUp) catchUp.begin();
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
  const held = readTimers(actor, Date.now(), (r) => catchUp.dueOf(r));
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
  const [next] = readTimers(actor, Date.now(), (r) => catchUp.dueOf(r));
  expect(Math.abs(next!.dueAt - (now + 400)), `b's delay persisted due at ${next!.dueAt - now} ms from the restore, not 400`).toBeLessThan(
    50,
  );
  actor.stop();
});

/** Delays with ties, out of order: the labels plain XState fires them in, and what rmapp holds and releases. */
const manyDelays = Array.from({ length: 60 }, (_, i) => ({ label: `t${i}`, delay: 1_000 + ((i * 37) % 11) * 100 }));
/** Every third timer without an id (XState makes one up); with `twice`, t5 and t7 share one (the later replaces the record). */
const manyTimersMachine = (twice: boolean) =>
  setup({ types: {} as { context: { log: string[] }; events: { type: 'T'; label: string } } }).createMachine({
    id: 'many',
    context: { log: [] },
    initial: 'on',
    states: {
      on: {
        entry: enqueueActions(({ enqueue }) => {
          manyDelays.forEach(({ label, delay }, i) =>
            enqueue.raise(
              { type: 'T', label },
              { delay, ...(i % 3 === 0 ? {} : { id: twice && (i === 5 || i === 7) ? 'twice' : `id${i}` }) },
            ),
          );
        }),
        on: { T: { actions: assign({ log: ({ context, event }) => [...context.log, event.label] }) } },
      },
    },
  });

it("every timer of a run is persisted with its own due time on the run's clock, however many (ids made up, used twice)", () => {
  // A test clock far from the wall clock: a due time derived from XState's wall-clock record would be off by decades.
  const manyTimers = manyTimersMachine(true);
  const clock = new TestClock(1_000_000);
  const catchUp = new TimerCatchUp(clock);
  const actor = createActor(manyTimers, { clock: catchUp.actorClock });
  catchUp.attach(actor);
  actor.start();
  const persisted = readTimers(actor, clock.now(), (r) => catchUp.dueOf(r));
  const plain = createActor(manyTimers, { clock: new TestClock(1_000_000) }).start();
  expect(persisted.length, 'timers persisted against plain XState').toBe(Object.keys(plain.system.getSnapshot()._scheduledEvents).length);
  for (const t of persisted) {
    const label = (t.event as unknown as { label: string }).label;
    const delay = manyDelays.find((d) => d.label === label)!.delay;
    expect(t.dueAt, `timer ${t.id} (${label})`).toBe(1_000_000 + delay);
  }
  actor.stop();
  plain.stop();
});

it('held timers are released in due-time order, ties in scheduling order, as plain XState fires them', async () => {
  const manyTimers = manyTimersMachine(false);
  const clock = new TestClock(0);
  const plain = createActor(manyTimers, { clock }).start();
  await clock.advance(5_000, async () => {});
  const expected = plain.getSnapshot().context.log;

  // The same timers, persisted by a run restored 10 s after it started, with a signal waiting.
  const source = new TestClock(0);
  const first = new TimerCatchUp(source);
  const running = createActor(manyTimers, { clock: first.actorClock });
  first.attach(running);
  running.start();
  const timers = readTimers(running, source.now(), (r) => first.dueOf(r));
  running.stop();

  const later = new TestClock(10_000);
  const catchUp = new TimerCatchUp(later);
  const restored = createActor(manyTimers, {
    clock: catchUp.actorClock,
    snapshot: manyTimers.resolveState({ value: 'on', context: { log: [] } }),
  });
  catchUp.attach(restored);
  restored.start();
  catchUp.begin();
  rearmTimers(restored, timers, later.now(), catchUp);
  catchUp.finish();
  expect(restored.getSnapshot().context.log).toEqual(expected);
  restored.stop();
});

/**
 * Restored with no signal waiting: the timers that came due while the run was away, and the overdue
 * delays they start, fire in due-time order on the run's timeline, as plain XState's clock fires them.
 * Each case crashes the run 10 ms after its start and resumes it 990 ms later, on a test clock.
 */
// Typed loosely: XState's action types do not follow a helper shared by several machines.
const logged = (entry: string) => assign({ log: ({ context }: { context: { log: string[] } }) => [...context.log, entry] }) as never;
const noSignalCases: Record<string, AnyStateMachine> = {
  // Region a's second delay (due 150) comes before region b's (due 200): a3 before b2.
  parallelChain: setup({ types: {} as { context: { log: string[] } } }).createMachine({
    id: 'parallelChain',
    type: 'parallel',
    context: { log: [] },
    states: {
      a: {
        initial: 'a1',
        states: {
          a1: { after: { 100: { target: 'a2', actions: logged('a2') } } },
          a2: { after: { 50: { target: 'a3', actions: logged('a3') } } },
          a3: {},
        },
      },
      b: { initial: 'b1', states: { b1: { after: { 200: { target: 'b2', actions: logged('b2') } } }, b2: {} } },
    },
  }),
  // a2 (at 100) cancels the delayed `late` (due 200) at 150 by entering a3: it never fires.
  cancelledByChain: setup({ types: {} as { context: { log: string[] } } }).createMachine({
    id: 'cancelledByChain',
    context: { log: [] },
    initial: 'a1',
    entry: raise({ type: 'late' }, { delay: 200, id: 'late' }) as never,
    on: { late: { actions: logged('late') } },
    states: {
      a1: { after: { 100: { target: 'a2', actions: logged('a2') } } },
      a2: { after: { 50: { target: 'a3', actions: [logged('a3'), cancel('late') as never] } } },
      a3: {},
    },
  }),
};

for (const [name, machine] of Object.entries(noSignalCases)) {
  it(`restored without signals, overdue delays and the delays they start fire in due-time order (${name})`, async () => {
    const reference = createActor(machine, { clock: new TestClock(0) });
    reference.start();
    await (reference.options.clock as TestClock).advance(2_000);
    const expected = (reference.getSnapshot().context as { log: string[] }).log;
    reference.stop();

    const kit = await createTestKit({
      workflows: [defineWorkflow({ name: `test.nosignal.${name}`, machine, input: z.object({}) })],
      startAt: 0,
    });
    try {
      const id = await kit.engine.start(`test.nosignal.${name}`, {});
      await kit.until(async () => (await kit.engine.get(id)).status === 'running', 'the run to start');
      await kit.advance(10);
      kit.crash();
      await kit.advance(990);
      const engine = await kit.resume();
      await kit.until(async () => (await engine.history(id)).some((h) => h.type === 'run.resumed'), 'the run to be resumed');
      await kit.advance(0);
      await kit.advance(1_000);
      const persistedLog = async () =>
        (await kit.db.query<{ snapshot: { context: { log: string[] } } }>('select snapshot from rmapp_runs where id = $1', [id]))[0]
          ?.snapshot.context.log ?? [];
      await kit
        .until(async () => (await persistedLog()).length >= expected.length, `${expected.length} delayed events persisted`)
        .catch(() => {});
      expect(await persistedLog(), `the order of ${name}'s delayed events after the restore`).toEqual(expected);
    } finally {
      await kit.close();
    }
  });
}
