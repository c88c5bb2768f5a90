/**
 * Two engines with the same worker id (the default, hostname:pid, is the same for every engine of one
 * process) cancel the same pending run at once. One cancellation applies; the other must not take it
 * for its own landed effect (a resend of its statement recognises "cancelled at the version after the
 * one read, with this error, newest history row this worker's"): it answers that the run had already
 * finished, as a cancel from an engine with another id does. Both answering "cancelled" also ran a
 * queued retried run's cleanup twice.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createMachine } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, silentLogger, type Database } from '../src/index.ts';
import { hookedStore } from './helpers/hooked-store.ts';
import { openTestStore } from './helpers/postgres.ts';

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

const idle = defineWorkflow({
  name: 'adv11.idle',
  input: z.object({}),
  machine: createMachine({ id: 'adv11-idle', initial: 'waiting', states: { waiting: { on: { go: 'done' } }, done: { type: 'final' } } }),
});

const CANCEL_STATEMENT = /update rmapp_runs set status = 'cancelled'/;

describe.each(['postgres', 'pglite'] as const)('concurrent in-place cancels under one worker id (%s)', (kind) => {
  it('exactly one of them reports the run cancelled, and its history has one run.cancelled', async () => {
    const store = await openTestStore(kind);
    cleanups.push(() => store.close());
    // Both cancels read the run at one version; then one statement applies, and the other is sent
    // once it has (as a resend after a lost answer would be).
    let arrived = 0;
    let bothRead!: () => void;
    const read = new Promise<void>((resolve) => (bothRead = resolve));
    let firstDone!: () => void;
    const applied = new Promise<void>((resolve) => (firstDone = resolve));
    const barrier = (sql: string) => {
      if (!CANCEL_STATEMENT.test(sql)) return;
      const mine = ++arrived;
      if (mine === 2) bothRead();
      return mine === 1 ? read : applied;
    };
    const after = (sql: string) => {
      if (CANCEL_STATEMENT.test(sql)) firstDone();
    };
    const engines = [0, 1].map(() =>
      createEngine({
        workflows: [idle],
        database: hookedStore(store.db, barrier, after) as Database,
        workerId: 'same-host:4242',
        logger: silentLogger,
      }),
    );
    for (const e of engines) cleanups.push(() => e.stop());
    const [a, b] = engines as [ReturnType<typeof createEngine>, ReturnType<typeof createEngine>];
    const runId = await a.start(idle, {});
    const results = await Promise.all([a.cancel(runId, 'stop it'), b.cancel(runId, 'stop it')]);
    const said = results.map((r) => `${r.cancelled}: ${r.message}`);
    expect(results.filter((r) => r.cancelled).length, `both cancels' answers: ${JSON.stringify(said)}`).toBe(1);
    expect((await a.get(runId))?.status).toBe('cancelled');
    const history = await a.history(runId);
    expect(history.filter((h) => h.type === 'run.cancelled').length, JSON.stringify(history.map((h) => h.type))).toBe(1);
  });
});
