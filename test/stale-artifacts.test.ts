/**
 * A step that goes on after its run was cancelled and pruned (it ignores its AbortSignal, as a hung
 * agent that still flushes its transcript) stores no artifact: an adversarial pass saw such a write land
 * after the prune, an artifact no later prune removed, listed by a new run under the same id. An
 * artifact (or history row) is never stored for a run that does not exist.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, silentLogger, step } from '../src/index.ts';
import { saveArtifact } from '../src/persistence/artifacts.ts';
import { pruneRuns } from '../src/persistence/retention.ts';
import { appendHistory } from '../src/persistence/runs.ts';
import { openTestStore } from './helpers/postgres.ts';

describe.each(['postgres', 'pglite'] as const)('artifacts of a run that has ended (%s)', (kind) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('a step that outlives its pruned run is refused its write, and no artifact of the run is left', async () => {
    const store = await openTestStore(kind);
    cleanups.push(() => store.close());
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    const late: string[] = [];
    const work = step(async ({ saveArtifact: save }) => {
      await save('transcript', { lines: 1 });
      await gate; // ignores its AbortSignal
      await save('transcript', { lines: 2 }).then(
        () => late.push('saved'),
        (err: Error) => late.push(`refused: ${err.message}`),
      );
      return 'done';
    });
    const machine = setup({ actors: { work } }).createMachine({
      initial: 'a',
      states: { a: { invoke: { src: 'work', onDone: 'b' } }, b: { type: 'final' } },
    });
    const wf = defineWorkflow({ name: 'test.stale-artifacts', machine, input: z.object({}) });
    const engine = createEngine({ database: store.db, workflows: [wf], logger: silentLogger });
    cleanups.push(() => engine.stop());
    await engine.startWorker();
    const id = await engine.start(wf, {}, { runId: 'stale-artifacts' });
    for (let i = 0; i < 500 && (await engine.artifacts(id)).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    await engine.cancel(id);
    expect((await engine.waitFor(id, { timeoutMs: 20_000 })).status).toBe('cancelled');
    expect((await pruneRuns(store.db, { succeededMs: 0, failedMs: 0, cancelledMs: 0 })).artifacts, 'artifacts pruned').toBe(1);
    openGate();
    for (let i = 0; i < 500 && late.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(late, 'the write the step tried after its run was pruned').toEqual([
      expect.stringMatching(/^refused: No run with id "stale-artifacts"/),
    ]);
    const [left] = await store.db.query<{ n: number }>('select count(*)::int as n from rmapp_run_artifacts where run_id = $1', [id]);
    expect(left?.n, 'artifact rows of the pruned run').toBe(0);
    expect(await saveArtifact(store.db, id, 'transcript', '{"lines":3}', 11), 'a save for the pruned run').toBe(false);
    const [after] = await store.db.query<{ n: number }>('select count(*)::int as n from rmapp_run_artifacts where run_id = $1', [id]);
    expect(after?.n, 'artifact rows stored for a run that does not exist').toBe(0);
    // Nor history (a cancel's `run.cancelled`, appended just after a prune deleted the run).
    await appendHistory(store.db, id, [{ type: 'run.cancelled', data: { reason: 'late' } }], null);
    const [history] = await store.db.query<{ n: number }>('select count(*)::int as n from rmapp_run_history where run_id = $1', [id]);
    expect(history?.n, 'history rows stored for a run that does not exist').toBe(0);
  });
});
