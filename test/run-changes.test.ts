/**
 * Run changes are announced on `rmapp_run_changed` only while someone watches (migrations 0011, 0016): a run
 * executed while nobody watches sends no NOTIFY (each one costs every listening connection a
 * transaction), one executed while a watch is live announces its changes, and a watch that ran out
 * announces nothing again. Absence is proven with a marker: a NOTIFY sent after the run finished
 * arrives after every notification committed before it, so what arrived before the marker is all.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, type Database } from '../src/index.ts';
import { watchRunChanges } from '../src/persistence/run-changes.ts';
import { openTestStore } from './helpers/postgres.ts';
import { sequenceWorkflow } from './helpers/workflows.ts';

const CHANNEL = 'rmapp_run_changed';
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** Runs one `test.sequence` run to its end; returns the payloads that reached `channel` before a marker sent afterwards. */
async function announcedWhileRunning(db: Database, runId: string): Promise<string[]> {
  const heard: string[] = [];
  let markerHeard: () => void = () => {};
  const marker = new Promise<void>((resolve) => (markerHeard = resolve));
  const stop = await db.listen(CHANNEL, (payload) => {
    if (payload === `marker-${runId}`) markerHeard();
    else heard.push(payload);
  });
  const engine = createEngine({ workflows: [sequenceWorkflow(3)], database: db, pollMs: 50 });
  try {
    await engine.startWorker();
    const id = await engine.start('test.sequence', {}, { runId });
    expect((await engine.waitFor(id, { timeoutMs: 30_000 })).status).toBe('succeeded');
    await db.query(`select pg_notify($1, $2)`, [CHANNEL, `marker-${runId}`]);
    await marker;
    return heard;
  } finally {
    await engine.stop();
    await stop();
  }
}

describe.each(['postgres', 'pglite'] as const)('%s', (kind) => {
  it('announces run changes only while a watch is live', async () => {
    const store = await openTestStore(kind);
    cleanups.push(() => store.close());
    const { db } = store;

    expect(await announcedWhileRunning(db, `quiet-${kind}`), 'nobody watches: no NOTIFY per commit').toEqual([]);

    await watchRunChanges(db);
    const watched = await announcedWhileRunning(db, `watched-${kind}`);
    expect(watched.length, `changes announced while watched: ${JSON.stringify(watched)}`).toBeGreaterThanOrEqual(3);
    expect(new Set(watched)).toEqual(new Set([`watched-${kind}`]));

    // The watch runs out (as 60 s after the last renewal): quiet again.
    await db.query(`select setval('rmapp_run_change_watch_until', floor(extract(epoch from now()))::bigint - 1)`);
    expect(await announcedWhileRunning(db, `lapsed-${kind}`), 'a lapsed watch: no NOTIFY').toEqual([]);

    // A renewal never shortens another watcher's time.
    await db.query(`select setval('rmapp_run_change_watch_until', floor(extract(epoch from now()))::bigint + 3600)`);
    await watchRunChanges(db);
    const [row] = await db.query<{ later: boolean }>(
      `select to_timestamp(pg_sequence_last_value('rmapp_run_change_watch_until')) > now() + interval '50 minutes' as later`,
    );
    expect(row?.later).toBe(true);
  });
});
