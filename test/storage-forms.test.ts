/**
 * The compact storage forms of history rows (history-codec.ts) and snapshots (snapshot-codec.ts) read
 * back as what was written, and rows written in the older forms (before migration 0012) read as they
 * always did — on Postgres and on PGlite, through the TypeScript readers and the SQL function.
 */
import { createActor, fromPromise, setup } from 'xstate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../src/index.ts';
import { migrate } from '../src/persistence/migrate.ts';
import { appendHistory, getHistory, getRun } from '../src/persistence/runs.ts';
import { decodeHistory, encodeHistory } from '../src/persistence/history-codec.ts';
import { decodeSnapshot, encodeSnapshot, storedSnapshotJson } from '../src/persistence/snapshot-codec.ts';
import type { HistoryEntry } from '../src/persistence/runs.ts';
import { openTestStore } from './helpers/postgres.ts';

const entries: HistoryEntry[] = [
  { type: 'run.started', data: { workflow: 'w', version: 'v1' } },
  { type: 'state.entered', path: '', state: { a: 'b' } },
  { type: 'step.started', path: '0.m.s', step: 'noop', attempt: 1 },
  { type: 'step.succeeded', path: '0.m.s', step: 'noop', attempt: 2, data: { durationMs: 0, note: null } },
  { type: 'run.succeeded' },
];
/** What the history API reports for `entries`: absent fields as `''` (path) or null. */
const asReported = entries.map((e) => ({
  type: e.type,
  path: e.path ?? '',
  state: e.state ?? null,
  step: e.step ?? null,
  attempt: e.attempt ?? null,
  data: e.data ?? null,
}));

/** A persisted snapshot as XState writes it: a machine inside a step, with a child machine and a step child. */
function persistedSnapshot(): unknown {
  const inner = setup({}).createMachine({ id: 'inner', initial: 'idle', states: { idle: {} } });
  const machine = setup({ actors: { inner, work: fromPromise(() => new Promise<number>(() => {})) } }).createMachine({
    id: 'outer',
    context: { n: 1 },
    initial: 'busy',
    states: {
      busy: {
        invoke: [
          { id: 'child', src: 'inner' },
          { id: 'step', src: 'work', input: { n: 2 } },
        ],
      },
    },
  });
  const actor = createActor(machine).start();
  const snapshot = actor.getPersistedSnapshot();
  actor.stop();
  return JSON.parse(JSON.stringify(snapshot));
}

describe('snapshot storage form', () => {
  it('encodes to fewer bytes and decodes to the snapshot XState persisted', () => {
    const snapshot = persistedSnapshot();
    const stored = JSON.parse(storedSnapshotJson(snapshot));
    expect(JSON.stringify(stored).length, 'stored form is shorter').toBeLessThan(JSON.stringify(snapshot).length);
    expect(stored).not.toHaveProperty('historyValue');
    expect(stored).not.toHaveProperty('status');
    expect(decodeSnapshot(stored), 'decoded stored form').toEqual(snapshot);
    expect(decodeSnapshot(snapshot), 'a snapshot stored before the compact form').toEqual(snapshot);
    expect(encodeSnapshot(null)).toBeNull();
  });

  it('keeps a status other than active and a non-empty history value', () => {
    const snapshot = { status: 'done', value: 'x', historyValue: { a: [] }, context: {}, children: {}, output: 1 };
    expect(encodeSnapshot(snapshot)).toEqual(snapshot);
  });
});

describe('history storage form', () => {
  it('round-trips every entry exactly, absent fields absent', () => {
    expect(decodeHistory(null, encodeHistory(entries))).toEqual(entries);
    expect(decodeHistory(entries, null), 'a row in the object form').toEqual(entries);
  });
});

describe.each(['postgres', 'pglite'] as const)('stored forms on %s', (kind) => {
  let db: Database;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ db, close } = await openTestStore(kind));
    await migrate(db);
    await db.query(`insert into rmapp_runs (id, workflow, workflow_version, snapshot) values ('r1', 'w', 'v1', $1::jsonb)`, [
      JSON.stringify(persistedSnapshot()),
    ]);
  });
  afterAll(async () => close());

  it('reads a history of old-form and compact rows in order, the same through SQL', async () => {
    await db.query(`insert into rmapp_run_history (run_id, worker, events) values ('r1', 'w-old', $1::jsonb)`, [JSON.stringify(entries)]);
    await appendHistory(db, 'r1', entries, 'w-new');
    const history = await getHistory(db, 'r1');
    expect(history.map(({ type, path, state, step, attempt, data }) => ({ type, path, state, step, attempt, data }))).toEqual([
      ...asReported,
      ...asReported,
    ]);
    expect(history.map((e) => e.worker)).toEqual([...entries.map(() => 'w-old'), ...entries.map(() => 'w-new')]);
    const rows = await db.query<{ log: unknown; events: unknown }>(
      `select log, rmapp_history_events(h.events, h.log) as events from rmapp_run_history h where run_id = 'r1' order by id`,
    );
    expect(rows[0]?.log, 'the row written before migration 0012').toBeNull();
    expect(rows[1]?.log, 'a row written now').not.toBeNull();
    expect(rows[1]?.events, 'rmapp_history_events of a compact row').toEqual(rows[0]?.events);
  });

  it('reads a run whose snapshot was stored in full', async () => {
    expect((await getRun(db, 'r1'))?.snapshot).toEqual(persistedSnapshot());
  });
});
