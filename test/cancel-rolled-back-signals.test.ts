/**
 * A run cancelled from its last written state (its live state cannot be written: over
 * `limits.snapshotBytes`) leaves no signal queued for ever and no history entry for an effect its final
 * state does not have. The signals it took since its last write made the state it could not write: they
 * were listed as queued by `engine.queuedSignals` for good (the run is cancelled: nothing will take
 * them), and the `state.entered` entries of the states they led to stayed in its history, though the run
 * ended in the state before them. Now each is consumed as `dropped` (`signal.dropped` in the history,
 * with why), the entries of the unwritten state are gone, and the cancellation is `received`; a signal
 * the run never reached is listed as queued no more (nothing will take it). Real
 * Postgres and PGlite (the default store), through the engine's public API.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, type Database, type Engine, type HistoryEvent } from '../src/index.ts';
import { openTestStore } from './helpers/postgres.ts';
import { until } from './helpers/processes.ts';
import { inboxRows, notesWorkflow, SMALL, stepWorkflow } from './helpers/rolled-back-runs.ts';

/** {@link noteMachine}'s workflow (test/helpers/rolled-back-runs.ts). */
const notes = notesWorkflow('rolled.notes');

/** Steps that ran, kept outside the engine. */
const ledger: string[] = [];

/** `go` fills the context past {@link SMALL} and enters `working`, which runs a step. */
const worker = stepWorkflow('rolled.worker', ledger);

describe.each(['postgres', 'pglite'] as const)('cancelled from its last written state (%s)', (kind) => {
  const engines: Engine[] = [];
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    for (const e of engines.splice(0).reverse()) await e.stop().catch(() => {});
    await close?.();
    close = undefined;
  });

  const engineOn = (db: Database): Engine => {
    const engine = createEngine({ database: db, workflows: [notes, worker], pollMs: 50, limits: { snapshotBytes: SMALL } });
    engines.push(engine);
    return engine;
  };

  it('the signals that made the unwritten state are dropped, not queued, and its state entries are gone', async () => {
    const store = await openTestStore(kind);
    close = store.close;
    const db = store.db;
    const worker = engineOn(db);
    await worker.startWorker();
    const id = await worker.start(notes, {});
    await until(async () => (await worker.get(id)).status === 'waiting', 20_000, 'the run to wait');
    await worker.stop();
    // No worker: a client queues an event no state takes, the notes, another such event and the
    // cancellation; the next worker reads them in one read.
    const client = engineOn(db);
    const taken: number[] = [Number((await client.send(id, { type: 'aside' })).id)];
    for (let i = 0; i < 4; i++) taken.push(Number((await client.send(id, { type: 'note' }, { dedupeKey: `note-${i}` })).id));
    // The fourth note makes a state that cannot be written: the run reaches no signal after it but the cancellation.
    const unreached = Number((await client.send(id, { type: 'aside' })).id);
    await client.cancel(id, 'stop it');
    await client.stop();
    const next = engineOn(db);
    await next.startWorker();
    const run = await next.waitFor(id, { timeoutMs: 20_000 });
    expect(run.status).toBe('cancelled');
    expect(run.state, 'the run ends in its last written state').toBe('open');
    const history: HistoryEvent[] = await next.history(id);
    expect(
      history.find((h) => h.type === 'state.unwritable'),
      'why the state was not written',
    ).toBeDefined();

    // The inbox: each signal the run took is dropped, none is listed as queued; the cancellation was applied.
    const rows = await inboxRows(db, id);
    for (const r of rows.filter((r) => taken.includes(r.id))) {
      expect(r, `signal ${r.id} (${r.type}) is in no state written`).toMatchObject({
        consumed: true,
        outcome: 'dropped',
        dedupe_key: null,
      });
    }
    expect(rows.find((r) => r.type === 'rmapp.cancel')).toMatchObject({ consumed: true, outcome: 'received' });
    // The one the run never reached was taken by no state: not consumed, yet not queued for anyone either.
    expect(rows.find((r) => r.id === unreached)).toMatchObject({ consumed: false, outcome: null });
    expect((await next.queuedSignals(id)).signals, 'engine.queuedSignals lists none').toEqual([]);

    // The history: no entry claims what the final state does not have.
    const claimed = history.filter(
      (h) =>
        (h.type === 'state.entered' && JSON.stringify(h.state) === '"noted"') || ['signal.received', 'signal.ignored'].includes(h.type),
    );
    expect(claimed, `entries of the unwritten state: ${JSON.stringify(claimed)}`).toEqual([]);
    const dropped = history.filter((h) => h.type === 'signal.dropped');
    expect(
      dropped.map((h) => (h.data as { id: number }).id),
      'each signal left out has one signal.dropped entry',
    ).toEqual(taken);
    expect(
      dropped.every((h) => JSON.stringify(h.state) === '"open"'),
      'at the state the run ended in',
    ).toBe(true);
    expect(
      history.some((h) => (h.data as { id?: unknown } | undefined)?.id === unreached),
      'no entry for the signal never reached',
    ).toBe(false);
    expect(history.map((h) => h.type).slice(-2)).toEqual(['state.unwritable', 'run.cancelled']);

    // Its dedupe key is free: sent again, the event is not a `duplicate` of one the run took, but meets a finished run.
    const again = await next.send(id, { type: 'note' }, { dedupeKey: 'note-0' }).then(
      (r) => r.outcome,
      (e: Error) => e.name,
    );
    expect(again).toBe('RunStateError');
  });

  it('a step the unwritten state began did no work, and its start is not in the history', async () => {
    const store = await openTestStore(kind);
    close = store.close;
    const db = store.db;
    ledger.length = 0;
    const first = engineOn(db);
    await first.startWorker();
    const id = await first.start(worker, {});
    await until(async () => (await first.get(id)).status === 'waiting', 20_000, 'the run to wait');
    await first.stop();
    const client = engineOn(db);
    const go = Number((await client.send(id, { type: 'go' })).id);
    await client.cancel(id, 'not now');
    await client.stop();
    const next = engineOn(db);
    await next.startWorker();
    const run = await next.waitFor(id, { timeoutMs: 20_000 });
    expect(run.status).toBe('cancelled');
    expect(run.state).toBe('idle');
    expect(ledger, 'the step of the unwritten state ran').toEqual([]);
    const history = await next.history(id);
    const claimed = history.filter((h) => h.type.startsWith('step.') || (h.type === 'state.entered' && h.state === 'working'));
    expect(claimed, `entries of the unwritten state: ${JSON.stringify(claimed)}`).toEqual([]);
    expect(history.filter((h) => h.type.startsWith('signal.')).map((h) => [h.type, (h.data as { id: number }).id])).toEqual([
      ['signal.dropped', go],
    ]);
    expect((await inboxRows(db, id)).find((r) => r.id === go)).toMatchObject({ consumed: true, outcome: 'dropped' });
  });
});
