/**
 * History rows are stored as compact JSON text since migration 0012 (src/persistence/history-codec.ts):
 * a `json` column takes `\u0000` and lone surrogate escapes that jsonb refuses, but every statement that
 * searches history in SQL converts the row to jsonb (`rmapp_history_events`). A step's error message
 * is text from outside (an exception, a tool's stderr); a row that holds such text must not make the
 * run's history unreadable, its signals unreachable or its retention fail.
 */
import { assign, setup } from 'xstate';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, defineWorkflow, step, type Database, type Engine } from '../src/index.ts';
import { openTestStore } from './helpers/postgres.ts';

const hostile = 'tool said: a\u0000b and \ud800 lone';
const fails = step(
  async () => {
    throw new Error(hostile);
  },
  { retry: { maxAttempts: 1 } },
);
const machine = setup({ actors: { fails }, types: { context: {} as { error: string | null } } }).createMachine({
  id: 'advHostileHistory',
  initial: 'working',
  context: { error: null },
  states: {
    working: { invoke: { src: 'fails', onError: { target: 'waiting', actions: assign({ error: () => 'failed' }) } } },
    waiting: { on: { go: 'done' } },
    done: { type: 'final' },
  },
});
const workflow = defineWorkflow({ name: 'adv.hostileHistory', machine, input: z.object({}) });

for (const kind of ['postgres', 'pglite'] as const) {
  describe(`a step error with NUL and a lone surrogate (${kind})`, () => {
    let store: { db: Database; close(): Promise<void> };
    let engine: Engine;
    beforeAll(async () => {
      store = await openTestStore(kind);
      // The default lease: the step allows one attempt, so a lease that lapsed under load would fail it
      // by design (STEP_NEVER_FINISHED), which is not what this file tests.
      engine = createEngine({ database: store.db, workflows: [workflow], pollMs: 50 });
      await engine.startWorker();
    });
    afterAll(async () => {
      await engine?.stop();
      await store?.close();
    });

    it('leaves the history readable, the run able to take its signal, and the SQL view of its history working', async () => {
      const id = await engine.start('adv.hostileHistory', {});
      await expect.poll(async () => (await engine.get(id)).state, { timeout: 20_000 }).toBe('waiting');
      const history = await engine.history(id);
      const failed = history.find((e) => e.type === 'step.failed');
      const error = (failed?.data as { error?: { message?: string; code?: string } } | undefined)?.error;
      // The step's own failure, not a write that failed, a lost lease and "never finished".
      expect(error?.code, `history: ${JSON.stringify(history.map((e) => [e.type, e.data]))}`).toBe('ERROR');
      expect(error?.message).toBe('tool said: a\ufffdb and \ufffd lone');
      expect(history.map((e) => e.type)).not.toContain('lease.taken_over');
      const db = await engine.db();
      const rows = await db.query<{ n: number }>(
        `select count(*)::int as n from rmapp_run_history h, jsonb_array_elements(rmapp_history_events(h.events, h.log)) e where h.run_id = $1`,
        [id],
      );
      expect(rows[0]?.n, 'history as jsonb (what signals, retention and landed writes search)').toBeGreaterThan(0);
      await engine.send(id, { type: 'go' });
      const done = await engine.waitFor(id, { timeoutMs: 20_000 });
      expect(done.status, `run ended ${done.status}: ${JSON.stringify(done.error)}`).toBe('succeeded');
    });
  });
}

// A step's progress message is text from outside too (an agent's line of output).
const reports = step(async ({ progress }) => {
  progress('agent said: a\u0000b \udc00', { line: 'x\u0000y' });
  return { ok: true };
});
const reporting = setup({ actors: { reports } }).createMachine({
  id: 'advHostileProgress',
  initial: 'working',
  states: {
    working: { invoke: { src: 'reports', onDone: 'waiting' } },
    waiting: { on: { go: 'done' } },
    done: { type: 'final' },
  },
});
const reportingWorkflow = defineWorkflow({ name: 'adv.hostileProgress', machine: reporting, input: z.object({}) });

for (const kind of ['postgres', 'pglite'] as const) {
  describe(`a progress message with NUL and a lone surrogate (${kind})`, () => {
    let store: { db: Database; close(): Promise<void> };
    let engine: Engine;
    beforeAll(async () => {
      store = await openTestStore(kind);
      engine = createEngine({ database: store.db, workflows: [reportingWorkflow], pollMs: 50 });
      await engine.startWorker();
    });
    afterAll(async () => {
      await engine?.stop();
      await store?.close();
    });

    it('is stored readable by the SQL that searches history, and the run still takes its signal', async () => {
      const id = await engine.start('adv.hostileProgress', {});
      await expect.poll(async () => (await engine.get(id)).state, { timeout: 20_000 }).toBe('waiting');
      const db = await engine.db();
      const rows = await db.query<{ n: number }>(
        `select count(*)::int as n from rmapp_run_history h, jsonb_array_elements(rmapp_history_events(h.events, h.log)) e where h.run_id = $1`,
        [id],
      );
      expect(rows[0]?.n).toBeGreaterThan(0);
      const progress = (await engine.history(id)).find((e) => e.type === 'progress');
      expect(progress?.data).toEqual({ message: 'agent said: a\ufffdb \ufffd', line: 'x\ufffdy' });
      await engine.send(id, { type: 'go' });
      const done = await engine.waitFor(id, { timeoutMs: 20_000 });
      expect(done.status, `run ended ${done.status}: ${JSON.stringify(done.error)}`).toBe('succeeded');
    });
  });
}
