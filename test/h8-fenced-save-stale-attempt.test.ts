/**
 * `ctx.saveArtifact(…, { fenced: true })` guards an effect outside the database (step.ts
 * `SaveArtifactOptions.fenced`): it must be refused to work that is no longer the run's, not only to a
 * worker that lost the run's lease. Three cases where the same session still holds the run while a
 * step function goes on past its own end (it ignores its abort, as a `git push` or an HTTP call in
 * flight does):
 * - its attempt timed out and the retry (on the same worker, same session) did the effect;
 * - the run was cancelled and its definition's cleanup is still running (the run is `running` until
 *   the cancellation's commit);
 * - its machine left the step's state (an event moved it on) and runs another step.
 * Each effect is counted in a ledger outside the engine; a stale one must be refused (`RUN_LEFT`) and
 * make no effect, and the run goes on (or ends) as it would have.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, step, type Engine } from '../src/index.ts';
import { engineDatabaseFor } from './helpers/postgres.ts';

/** Effects made, by who made them: the ledger outside the engine. */
const effects: string[] = [];
/** What each stale fenced save ended in: 'saved', or the error's code. */
const outcomes = new Map<string, string>();
const waiters = new Map<string, () => void>();
const passed = new Set<string>();
const reached = (name: string) => {
  passed.add(name);
  waiters.get(name)?.();
};
/** True once `name` is reached (at once if it was already), false after `ms`. */
const until = (name: string, ms = 20_000) =>
  new Promise<boolean>((resolve) => {
    if (passed.has(name)) return resolve(true);
    const timer = setTimeout(() => resolve(false), ms);
    waiters.set(name, () => {
      clearTimeout(timer);
      resolve(true);
    });
  });

async function fencedEffect(
  ctx: { saveArtifact: (n: string, v: unknown, o?: { fenced?: boolean }) => Promise<void> },
  who: string,
): Promise<void> {
  try {
    await ctx.saveArtifact('effect-record', who, { fenced: true });
    outcomes.set(who, 'saved');
  } catch (err) {
    outcomes.set(who, String((err as { code?: unknown }).code ?? err));
    throw err;
  } finally {
    reached(`settled:${who}`);
  }
  effects.push(who);
}

// 1. A timed-out attempt that goes on while its retry runs.
const slowFirst = step(
  async (ctx) => {
    if (ctx.attempt === 1) {
      // Ignores its abort (the timeout): waits for the retry to have made its effect.
      await until('retry-done');
      await fencedEffect(ctx, 'timeout:attempt-1').catch(() => {});
      return 'late';
    }
    await fencedEffect(ctx, `timeout:attempt-${ctx.attempt}`);
    reached('retry-done');
    return 'ok';
  },
  { timeoutMs: 300, retry: { maxAttempts: 2, initialDelayMs: 10, jitter: 0 } },
);
const timeoutWf = defineWorkflow({
  name: 'h8.fence-timeout',
  machine: setup({ actors: { slowFirst } }).createMachine({
    id: 'h8timeout',
    initial: 'work',
    states: { work: { invoke: { src: 'slowFirst', onDone: 'done' } }, done: { type: 'final' } },
  }),
  input: z.object({}),
});

// 2. A step going on after its run was cancelled, while the definition's cleanup runs.
const pastCancel = step(async (ctx) => {
  reached('cancel:started');
  await new Promise<void>((resolve) => (ctx.signal.aborted ? resolve() : ctx.signal.addEventListener('abort', () => resolve())));
  // Ignores the abort: a moment later it records and makes its effect.
  await new Promise((r) => setTimeout(r, 50));
  await fencedEffect(ctx, 'cancel:after-abort').catch(() => {});
  return 'late';
});
const cancelWf = defineWorkflow({
  name: 'h8.fence-cancel',
  machine: setup({ actors: { pastCancel } }).createMachine({
    id: 'h8cancel',
    initial: 'work',
    states: { work: { invoke: { src: 'pastCancel', onDone: 'done' } }, done: { type: 'final' } },
  }),
  input: z.object({}),
  // A cleanup that takes its time (the service's removes a workspace, edits a comment).
  cleanup: async () => {
    await until('settled:cancel:after-abort', 5_000);
  },
});

// 3. A step whose machine moved on (an event) while it ran; the run goes on with another step.
const leftBehind = step(async (ctx) => {
  reached('moved:started');
  await until('moved:next-running');
  await fencedEffect(ctx, 'moved:left-behind').catch(() => {});
  return 'late';
});
const next = step(async () => {
  reached('moved:next-running');
  await until('settled:moved:left-behind', 5_000);
  return 'next';
});
const movedWf = defineWorkflow({
  name: 'h8.fence-moved',
  machine: setup({ actors: { leftBehind, next } }).createMachine({
    id: 'h8moved',
    initial: 'work',
    states: {
      work: { invoke: { src: 'leftBehind', onDone: 'done' }, on: { SKIP: 'other' } },
      other: { invoke: { src: 'next', onDone: 'done' } },
      done: { type: 'final' },
    },
  }),
  input: z.object({}),
});

/** Databases dropped after every engine of the file has stopped. */
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

describe.each(['postgres', 'pglite'] as const)('a fenced save from work that is no longer the run’s (%s)', (kind) => {
  let engine: Engine;
  afterAll(async () => engine?.stop());

  it('starts', async () => {
    effects.length = 0;
    outcomes.clear();
    passed.clear();
    engine = createEngine({ database: await engineDatabaseFor(kind, cleanups), workflows: [timeoutWf, cancelWf, movedWf], pollMs: 50 });
    await engine.startWorker();
  });

  it('refuses the timed-out attempt once its retry made the effect', async () => {
    const id = await engine.start(timeoutWf, {});
    expect((await engine.waitFor(id, { timeoutMs: 20_000 })).status).toBe('succeeded');
    expect(await until('settled:timeout:attempt-1')).toBe(true);
    expect(outcomes.get('timeout:attempt-1'), 'the timed-out attempt 1 saved its fenced record after attempt 2 had').toBe('RUN_LEFT');
    expect(effects.filter((e) => e.startsWith('timeout:'))).toEqual(['timeout:attempt-2']);
    expect(await engine.getArtifact(id, 'effect-record')).toBe('timeout:attempt-2');
  }, 30_000);

  it('refuses a step going on after its run was cancelled', async () => {
    const started = until('cancel:started');
    const id = await engine.start(cancelWf, {});
    expect(await started).toBe(true);
    await engine.cancel(id, 'h8');
    expect((await engine.waitFor(id, { timeoutMs: 20_000 })).status).toBe('cancelled');
    expect(outcomes.get('cancel:after-abort'), 'the cancelled step saved its fenced record while the cleanup ran').toBe('RUN_LEFT');
    expect(effects.filter((e) => e.startsWith('cancel:'))).toEqual([]);
  }, 30_000);

  it('refuses a step its machine left, while the run goes on', async () => {
    const started = until('moved:started');
    const id = await engine.start(movedWf, {});
    expect(await started).toBe(true);
    await engine.send(id, { type: 'SKIP' });
    const run = await engine.waitFor(id, { timeoutMs: 20_000 });
    expect(run.status).toBe('succeeded');
    expect(outcomes.get('moved:left-behind'), 'the step its machine had left saved its fenced record').toBe('RUN_LEFT');
    expect(effects.filter((e) => e.startsWith('moved:'))).toEqual([]);
  }, 30_000);
});
