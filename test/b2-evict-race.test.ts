/**
 * A run chosen to leave memory (it only waits) is written out as `waiting` by its next write, built a
 * moment later by the committer (after a batch in flight, or its backoff). Its wait may end meanwhile: a
 * 40 ms `after` delay enters a step's state, a step's backoff ends and its next attempt starts. Before,
 * the write gave the run up all the same, with a step in flight and nothing to wake it (`wake_at` null):
 * the run stayed `waiting` until a signal came, which these runs never get. On the embedded store (the
 * default), with runs evicted as soon as they wait (`evictAfterMs: 1`), most of 30 backoff runs and a few
 * of 30 delay runs were stranded so.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, openDatabase, type Database, type Engine } from '../src/index.ts';
import { workflows } from './fixtures/b2-evict-race.ts';
import { until } from './helpers/processes.ts';

describe('a run whose wait ends while it is being written out (PGlite)', () => {
  let db: Database;
  let engine: Engine;
  afterAll(async () => {
    await engine?.stop();
    await db?.close();
  });

  it('stays in memory and finishes', async () => {
    db = await openDatabase({ url: '', dataDir: 'memory://' });
    engine = createEngine({ database: db, workflows, evictAfterMs: 1, pollMs: 5_000 });
    await engine.startWorker();
    const ids = await Promise.all(
      Array.from({ length: 30 }, () => [engine.start('b2.after-step', {}), engine.start('b2.backoff', {})]).flat(),
    );
    const runs = () =>
      db.query<{ id: string; workflow: string; status: string; wake: Date | null; state: unknown }>(
        'select id, workflow, status, wake_at as wake, state_value as state from rmapp_runs where id = any($1::text[])',
        [ids],
      );
    // Until every run finished, or some run waits with nothing to wake it and no session holds it.
    const stranded = async () => (engine.activeRuns > 0 ? [] : (await runs()).filter((r) => r.status === 'waiting' && r.wake === null));
    await until(async () => (await runs()).every((r) => r.status === 'succeeded') || (await stranded()).length > 0, 60_000, 'the runs');
    expect(
      (await stranded()).map((r) => `${r.id} (${r.workflow}) in ${JSON.stringify(r.state)}`),
      'runs left waiting with a step in flight and nothing to wake them',
    ).toEqual([]);
  }, 90_000);
});
