/**
 * A fenced save matches (run id, lease owner, lease epoch) and an unexpired running lease
 * (persistence/artifacts.ts). A run's epoch starts again at 1 when a run is created again under the
 * same id — a caller-chosen `runId` — once the first run was pruned: a step function of the first
 * run still going on past its cancellation (it ignores its abort) on the same worker then matches the
 * new run's session (same owner, epoch 1) and its fenced save passes, writing into the new run and
 * making its effect. The fence now names the run's creation instant too.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, step, type Engine } from '../src/index.ts';
import { pruneRuns } from '../src/persistence/retention.ts';
import { engineDatabaseFor } from './helpers/postgres.ts';

const effects: string[] = [];
const outcomes = new Map<string, string>();
let go: () => void = () => {};
const released = new Promise<void>((resolve) => (go = resolve));
let settled: () => void = () => {};
const saveSettled = new Promise<void>((resolve) => (settled = resolve));
let startedFirst: () => void = () => {};
const firstStarted = new Promise<void>((resolve) => (startedFirst = resolve));

const hung = step<string, { second?: boolean }>(async (ctx) => {
  if (ctx.input.second) {
    // The second run under the id: holds its lease while the first run's step goes on.
    await saveSettled;
    return 'second';
  }
  startedFirst();
  // Ignores its abort: goes on once released.
  await released;
  try {
    await ctx.saveArtifact('record', 'first run', { fenced: true });
    outcomes.set('first', 'saved');
    effects.push('first run');
  } catch (err) {
    outcomes.set('first', String((err as { code?: unknown }).code ?? err));
  } finally {
    settled();
  }
  return 'late';
});
const wf = defineWorkflow({
  name: 'h8.reused-id',
  machine: setup({
    types: {} as { context: { input: { second?: boolean } }; input: { second?: boolean } },
    actors: { hung },
  }).createMachine({
    id: 'h8reused',
    initial: 'work',
    context: ({ input }) => ({ input }),
    states: {
      work: {
        invoke: { src: 'hung', input: ({ context }: { context: { input: { second?: boolean } } }) => context.input, onDone: 'done' },
      },
      done: { type: 'final' },
    },
  }),
  input: z.object({ second: z.boolean().optional() }),
});

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

describe.each(['postgres'] as const)('a run id used again after a prune (%s)', (kind) => {
  let engine: Engine;
  afterAll(async () => {
    go();
    settled();
    await engine?.stop({ graceMs: 100 });
  });

  it('refuses the first run’s step the fenced save in the second run', async () => {
    engine = createEngine({ database: await engineDatabaseFor(kind, cleanups), workflows: [wf], pollMs: 50 });
    await engine.startWorker();
    const id = await engine.start(wf, {}, { runId: 'h8-reused' });
    await firstStarted;
    await engine.cancel(id, 'h8');
    expect((await engine.waitFor(id, { timeoutMs: 20_000 })).status).toBe('cancelled');
    const db = await engine.db();
    await new Promise((r) => setTimeout(r, 20));
    const pruned = await pruneRuns(db, { succeededMs: Infinity, failedMs: Infinity, cancelledMs: 0 });
    expect(pruned.runs).toBe(1);
    await engine.start(wf, { second: true }, { runId: 'h8-reused' });
    for (let i = 0; i < 400; i++) {
      const rows = await db.query<{ status: string }>(`select status from rmapp_runs where id = 'h8-reused'`);
      if (rows[0]?.status === 'running') break;
      await new Promise((r) => setTimeout(r, 25));
    }
    const lease = await db.query(`select lease_owner, lease_epoch, status from rmapp_runs where id = 'h8-reused'`);
    go();
    await saveSettled;
    expect(outcomes.get('first'), `the first run's step saved into the second run (lease ${JSON.stringify(lease)})`).toBe('RUN_LEFT');
    expect(effects).toEqual([]);
    expect(await engine.getArtifact(id, 'record')).toBeUndefined();
  }, 60_000);
});
