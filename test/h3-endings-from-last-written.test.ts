/**
 * Every ending from a run's last written state — a cancellation, a timeout (`timeoutMs`), a failure —
 * accounts for what the run did since that state the same way (session-signals.ts
 * `endFromLastWritten`): no history entry of the unwritten state (the states it entered, the step
 * attempts it began) stays, and each signal it took since is either applied in a written state, dropped
 * (`signal.dropped`, consumed `dropped`) when the run will never read its inbox again (cancelled, timed
 * out), or queued again for `engine.retry` (a failure). Checked after each ending against the inbox rows,
 * the history rows and the engine's views (`get`, `queuedSignals`, `send`). Real Postgres and PGlite.
 *
 * The clock is a TestClock set past the run's deadline: the deadline's timer fires only when the test
 * advances it, so the run meets its deadline exactly where the test places it (no timing assertion).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createActor, sendTo, setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, type Database, type Engine } from '../src/index.ts';
import { TestClock } from '../src/state_machine/testing/test-clock.ts';
import { hookedStore } from './helpers/hooked-store.ts';
import { inboxRows, noteMachine, notesWorkflow, signalEntries, SMALL, stepWorkflow } from './helpers/rolled-back-runs.ts';
import { openTestStore } from './helpers/postgres.ts';
import { until } from './helpers/processes.ts';

const HOUR = 3_600_000;
const quiet = { error: () => {}, warn: () => {}, info: () => {}, debug: () => {} };

/** {@link noteMachine}'s workflow: `note` appends 1,100 bytes to the context (four are over {@link SMALL}); `aside` is taken by no state. */
const notes = notesWorkflow('h3.notes');

/** The cleanup of a run of {@link slowCleanup} waits for this gate (a cancellation's or timeout's cleanup runs before the ending is written). */
const cleanupGate = { open: (): void => {}, started: false };

/** {@link notes} with a cleanup that waits for {@link cleanupGate}. */
const slowCleanup = defineWorkflow({
  name: 'h3.notes.cleanup',
  version: '1',
  input: z.object({}).passthrough(),
  machine: noteMachine,
  cleanup: async () => {
    cleanupGate.started = true;
    await new Promise<void>((resolve) => (cleanupGate.open = resolve));
  },
});

/** The notes go to an invoked child machine (`kid`), whose state and context grow with them. */
const parent = defineWorkflow({
  name: 'h3.parent',
  version: '1',
  input: z.object({}).passthrough(),
  machine: setup({
    types: {} as { events: { type: 'note' } | { type: 'aside' } },
    actors: { kid: noteMachine },
  }).createMachine({
    id: 'parent',
    initial: 'watching',
    states: {
      watching: {
        invoke: { id: 'kid', src: 'kid' },
        on: { note: { actions: sendTo('kid', { type: 'note' }) } },
      },
    },
  }),
});

/** Steps that ran, kept outside the engine. */
const ledger: string[] = [];

/** `go` fills the context past {@link SMALL} and enters `working`, which runs a step. */
const worker = stepWorkflow('h3.worker', ledger);

/** The commit statement (persistence/commits.ts `commitRunWrites`). */
const isCommit = (sql: string) => sql.includes('seen_signal_seq int, consumed jsonb');
/** The read of the inbox (persistence/inbox.ts `pendingSignals`). */
const isRead = (sql: string) => sql.includes('left join rmapp_run_inbox i on i.run_id');

describe.each(['postgres', 'pglite'] as const)('endings from the last written state (%s)', (kind) => {
  const engines: Engine[] = [];
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const e of engines.splice(0).reverse()) await e.stop().catch(() => {});
    for (const c of closers.splice(0).reverse()) await c();
  });

  const engineOn = (db: Database, clock?: TestClock, evictAfterMs?: number): Engine => {
    const engine = createEngine({
      database: db,
      ...(evictAfterMs ? { evictAfterMs } : {}),
      workflows: [notes, slowCleanup, parent, worker],
      pollMs: 50,
      limits: { snapshotBytes: SMALL },
      logger: quiet,
      ...(clock ? { clock } : {}),
    });
    engines.push(engine);
    return engine;
  };

  const store = async (): Promise<Database> => {
    const s = await openTestStore(kind);
    closers.push(s.close);
    return s.db;
  };

  /** A run of `wf` with a one-hour deadline, written in its first state, then left by its worker. */
  const parked = async (db: Database, wf: typeof notes | typeof parent, clock: TestClock): Promise<string> => {
    const first = engineOn(db, clock);
    await first.startWorker();
    const id = await first.start(wf, {}, { timeoutMs: HOUR });
    await until(async () => (await first.history(id)).some((h) => h.type === 'state.entered'), 20_000, 'the first state written');
    await first.stop();
    return id;
  };

  it('a timeout reached with signals taken after the last written state drops them, and no entry claims the unwritten state', async () => {
    const db = await store();
    const clock = new TestClock();
    const id = await parked(db, notes, clock);
    const client = engineOn(db, clock);
    // Right before the deadline: an event no state takes, then four notes, the fourth over the limit.
    const taken: number[] = [Number((await client.send(id, { type: 'aside' })).id)];
    for (let i = 0; i < 4; i++) taken.push(Number((await client.send(id, { type: 'note' }, { dedupeKey: `note-${i}` })).id));
    await client.stop();
    // The deadline has passed when the next worker writes what the notes made (its timer never fired:
    // a TestClock fires nothing unless advanced).
    const next = engineOn(db, new TestClock(clock.now() + 2 * HOUR));
    await next.startWorker();
    const run = await next.waitFor(id, { timeoutMs: 20_000 });
    expect(run.status).toBe('failed');
    expect(run.error?.code, `the run ended: ${JSON.stringify(run.error)}`).toBe('RUN_TIMEOUT');
    expect(run.state, 'the run ends in its last written state').toBe('open');

    const rows = await inboxRows(db, id);
    for (const r of rows) {
      expect(r, `signal ${r.id} (${r.type}) is in no state written: dropped`).toMatchObject({
        consumed: true,
        outcome: 'dropped',
        dedupe_key: null,
      });
    }
    expect(rows.map((r) => r.id)).toEqual(taken);
    expect((await next.queuedSignals(id)).signals, 'engine.queuedSignals lists none for a timed-out run').toEqual([]);

    const history = await next.history(id);
    const claimed = history.filter((h) => h.type === 'state.entered' && JSON.stringify(h.state) === '"noted"');
    expect(claimed, `entries of the unwritten state: ${JSON.stringify(claimed)}`).toEqual([]);
    expect(signalEntries(history), 'one signal.dropped entry a signal, nothing else').toEqual(taken.map((t) => ['signal.dropped', t]));
    const reasons = history.filter((h) => h.type === 'signal.dropped').map((h) => (h.data as { reason: string }).reason);
    expect(
      reasons.every((r) => r.includes('timed out')),
      reasons.join(' | '),
    ).toBe(true);
    expect(history.map((h) => h.type).slice(-2)).toEqual(['state.unwritable', 'run.timed_out']);

    // A signal sent now meets a finished run, as an event sent to a stopped XState actor changes nothing.
    const late = await next.send(id, { type: 'note' }, { dedupeKey: 'note-0' }).then(
      (r) => r.outcome,
      (e: Error) => e.name,
    );
    expect(late).toBe('RunStateError');
  });

  /**
   * The commit carrying `aside` is held in flight; meanwhile `notes` notes are read and taken in memory
   * (four make a state that cannot be written), the deadline fires, and then the commit lands, fails
   * for a moment (sent again), or is refused for its data (it can never succeed).
   */
  const inFlight = [
    { end: 'the deadline', commit: 'lands', notes: 4, taken: 'four notes' },
    { end: 'the deadline', commit: 'fails for a moment', notes: 4, taken: 'four notes' },
    { end: 'the deadline', commit: 'is refused', notes: 4, taken: 'four notes' },
    { end: 'the deadline', commit: 'is refused', notes: 0, taken: 'no note' },
    { end: 'the deadline', commit: 'is refused while the cleanup runs', notes: 4, taken: 'four notes' },
    { end: 'a cancellation', commit: 'is refused', notes: 4, taken: 'four notes' },
  ] as const;
  it.each(inFlight)('signals read during an in-flight commit, then $end; the commit $commit ($taken)', async (c) => {
    const raw = await store();
    const clock = new TestClock();
    let hold: 'off' | 'armed' | 'held' | 'done' = 'off';
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let heldNow!: () => void;
    const isHeld = new Promise<void>((r) => (heldNow = r));
    // Reads of the inbox started and finished (one run: its session reads one at a time, in order).
    let readsStarted = 0;
    let readsDone = 0;
    const db = hookedStore(
      raw,
      async (sql) => {
        if (isRead(sql)) readsStarted += 1;
        if (hold !== 'armed' || !isCommit(sql)) return;
        hold = 'held';
        heldNow();
        await released;
        hold = 'done';
        if (c.commit === 'fails for a moment') throw Object.assign(new Error('injected: connection lost'), { code: '57P01' });
        if (c.commit !== 'lands') throw Object.assign(new Error('injected: invalid input syntax'), { code: '22P02' });
      },
      (sql) => {
        if (isRead(sql)) readsDone += 1;
      },
    );
    // The run stays in memory while it waits (its deadline, its only wake-up, is within evictAfterMs).
    const engine = engineOn(db, clock, 4 * HOUR);
    await engine.startWorker();
    const during = c.commit === 'is refused while the cleanup runs';
    cleanupGate.started = false;
    const id = await engine.start(during ? slowCleanup : notes, {}, { timeoutMs: HOUR });
    await until(async () => (await engine.history(id)).some((h) => h.type === 'state.entered'), 20_000, 'the first state written');
    hold = 'armed';
    const aside = Number((await engine.send(id, { type: 'aside' })).id);
    await isHeld;
    const noteIds: number[] = [];
    for (let i = 0; i < c.notes; i++) noteIds.push(Number((await engine.send(id, { type: 'note' }, { dedupeKey: `n-${i}` })).id));
    const sentBy = readsStarted;
    // A read that started after the last note was sent has them all (a NOTIFY or the poll starts one).
    if (c.notes > 0) await until(async () => readsDone > sentBy, 20_000, 'a read of the inbox after the notes');
    await clock.advance(0);
    expect(hold, 'the commit carrying `aside` is still held').toBe('held');
    // The deadline fires (or the cancellation is read) while the commit is still held, then the commit's fate.
    const cancel = c.end === 'a cancellation';
    if (cancel) {
      const readBy = readsStarted;
      await engine.cancel(id, 'stop it');
      await until(async () => readsDone > readBy, 20_000, 'the cancellation read');
      await clock.advance(0);
    } else await clock.advance(2 * HOUR);
    expect(cleanupGate.started, 'the cleanup runs').toBe(during);
    release();
    if (during) {
      // The refusal reaches the run while its cleanup still runs; then the cleanup returns.
      await until(async () => hold === 'done', 20_000, 'the commit refused');
      await clock.advance(0);
      cleanupGate.open();
    }
    const run = await engine.waitFor(id, { timeoutMs: 20_000 });
    expect(run.error?.code, `the run ended: ${JSON.stringify(run.error)}`).toBe(cancel ? 'CANCELLED' : 'RUN_TIMEOUT');
    expect(run.state).toBe('open');
    // Read back by another engine (not the worker's own final row): the same.
    const stored = await engineOn(raw).get(id);
    expect([stored.status, stored.state, stored.error?.code]).toEqual([run.status, 'open', run.error?.code]);
    const landed = c.commit === 'lands' || c.commit === 'fails for a moment';
    const rows = await inboxRows(raw, id);
    expect(
      rows.find((r) => r.id === aside),
      'the signal the held commit carried',
    ).toMatchObject(landed ? { consumed: true, outcome: 'ignored' } : { consumed: true, outcome: 'dropped' });
    for (const r of rows.filter((r) => noteIds.includes(r.id))) {
      expect(r, `note ${r.id}: taken after the last written state`).toMatchObject({ consumed: true, outcome: 'dropped', dedupe_key: null });
    }
    expect((await engine.queuedSignals(id)).signals).toEqual([]);
    const history = await engine.history(id);
    expect(signalEntries(history)).toEqual([
      [landed ? 'signal.ignored' : 'signal.dropped', aside],
      ...noteIds.map((n) => ['signal.dropped', n]),
    ]);
    expect(history.filter((h) => h.type === 'state.entered' && JSON.stringify(h.state) === '"noted"')).toEqual([]);
    // Why the run ended in `open`: the state the notes made, and the refused write, each in one entry.
    const why = history.filter((h) => h.type === 'state.unwritable').map((h) => (h.data as { error: { code: string } }).error.code);
    expect(why).toEqual([...(c.notes > 0 ? ['SIZE_LIMIT_EXCEEDED'] : []), ...(landed ? [] : ['WRITE_REJECTED'])]);
    const closing = cancel ? 'run.cancelled' : 'run.timed_out';
    expect(history.at(-1)?.type).toBe(closing);
    expect(history.filter((h) => ['run.timed_out', 'run.cancelled', 'run.failed'].includes(h.type)).map((h) => h.type)).toEqual([closing]);
    if (cancel) expect(rows.find((r) => r.type === 'rmapp.cancel')).toMatchObject({ consumed: true, outcome: 'received' });
  });

  it('a child run’s unwritten state goes too: the parent times out with the notes its child took dropped', async () => {
    const db = await store();
    const clock = new TestClock();
    const id = await parked(db, parent, clock);
    const client = engineOn(db, clock);
    const taken: number[] = [];
    for (let i = 0; i < 4; i++) taken.push(Number((await client.send(id, { type: 'note' })).id));
    await client.stop();
    const next = engineOn(db, new TestClock(clock.now() + 2 * HOUR));
    await next.startWorker();
    const run = await next.waitFor(id, { timeoutMs: 20_000 });
    expect(run.error?.code, JSON.stringify(run.error)).toBe('RUN_TIMEOUT');
    expect(run.children, 'the child as last written').toEqual([expect.objectContaining({ path: 'kid', state: 'open' })]);
    const history = await next.history(id);
    const kid = history.filter((h) => h.type === 'state.entered' && JSON.stringify(h.state) === '"noted"');
    expect(kid, `the child's unwritten state in the history: ${JSON.stringify(kid)}`).toEqual([]);
    expect(signalEntries(history)).toEqual(taken.map((t) => ['signal.dropped', t]));
    expect((await inboxRows(db, id)).every((r) => r.outcome === 'dropped')).toBe(true);
  });

  it('a failure from the last written state keeps no entry of the unwritten state; its signals stay queued for a retry', async () => {
    const db = await store();
    const id = await (async () => {
      const first = engineOn(db);
      await first.startWorker();
      const runId = await first.start(notes, {});
      await until(async () => (await first.history(runId)).some((h) => h.type === 'state.entered'), 20_000, 'the first state written');
      await first.stop();
      return runId;
    })();
    const client = engineOn(db);
    const sent: number[] = [Number((await client.send(id, { type: 'aside' })).id)];
    for (let i = 0; i < 4; i++) sent.push(Number((await client.send(id, { type: 'note' }, { dedupeKey: `f-${i}` })).id));
    // Read with the notes: the fourth is named, before this one's effect is mixed in.
    sent.push(Number((await client.send(id, { type: 'aside' })).id));
    await client.stop();
    const next = engineOn(db);
    await next.startWorker();
    const run = await next.waitFor(id, { timeoutMs: 20_000 });
    expect(run.status).toBe('failed');
    expect(run.error?.code).toBe('SIZE_LIMIT_EXCEEDED');
    expect(run.state).toBe('open');
    const history = await next.history(id);
    const claimed = history.filter((h) => h.type === 'state.entered' && JSON.stringify(h.state) === '"noted"');
    expect(claimed, `entries of the unwritten state: ${JSON.stringify(claimed)}`).toEqual([]);
    expect(signalEntries(history), 'the signals are in no entry: they are queued').toEqual([]);
    expect((await inboxRows(db, id)).every((r) => !r.consumed && r.outcome === null)).toBe(true);
    expect((await next.queuedSignals(id)).signals.map((s) => s.id)).toEqual(sent);

    // Retried without the fourth note, the run takes the rest and enters `noted` once: the entry comes
    // from the retry's written state, not from the failure's.
    await next.retry(id, { dropSignal: true });
    await until(
      async () => (await next.get(id)).state === 'noted' && (await next.queuedSignals(id)).signals.length === 0,
      20_000,
      'the retry',
    );
    const after = await next.history(id);
    expect(after.filter((h) => h.type === 'state.entered' && JSON.stringify(h.state) === '"noted"')).toHaveLength(1);
    expect(signalEntries(after).filter(([t]) => t === 'signal.dropped')).toEqual([['signal.dropped', sent[4]]]);
  });

  it('a failure of a state that began a step: the step did no work and its start is not in the history', async () => {
    const db = await store();
    ledger.length = 0;
    const engine = engineOn(db);
    await engine.startWorker();
    const id = await engine.start(worker, {});
    await until(async () => (await engine.history(id)).some((h) => h.type === 'state.entered'), 20_000, 'the first state written');
    const go = Number((await engine.send(id, { type: 'go' })).id);
    const run = await engine.waitFor(id, { timeoutMs: 20_000 });
    expect(run.status).toBe('failed');
    expect(run.state).toBe('idle');
    expect(ledger, 'the step of the unwritten state ran').toEqual([]);
    const history = await engine.history(id);
    const claimed = history.filter((h) => h.type.startsWith('step.') || (h.type === 'state.entered' && h.state === 'working'));
    expect(claimed, `entries of the unwritten state: ${JSON.stringify(claimed)}`).toEqual([]);
    expect((await inboxRows(db, id)).find((r) => r.id === go)).toMatchObject({ consumed: false, outcome: null });
    expect((await engine.queuedSignals(id)).signals.map((s) => s.id)).toEqual([go]);
  });
});

describe('plain XState, for comparison', () => {
  it('an actor that reached a final state or was stopped takes no event: nothing changes, nothing is kept', () => {
    const actor = createActor(noteMachine).start();
    actor.send({ type: 'note' });
    actor.stop();
    const at = actor.getSnapshot();
    actor.send({ type: 'note' });
    expect(actor.getSnapshot(), 'a stopped actor’s snapshot is unchanged by a later event').toBe(at);
    expect(actor.getSnapshot().context.notes).toHaveLength(1);
  });
});
