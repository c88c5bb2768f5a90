/**
 * A write held for a read of the inbox (run-session.ts `heldForRead`: the run's state is over
 * `limits.snapshotBytes`, and a cancellation may be among the signals being read) is built once that
 * read is over — also when the read fails. Attacked by holding the read until the step that makes the
 * state too large has returned, then failing it (or letting it deliver a cancellation): the run must end
 * either way, not stay in memory unwritten with its lease renewed for ever. Outcomes only: the run's
 * status, its history, its queued signals, and a ledger of step executions kept outside the engine.
 */
import { assign, setup } from 'xstate';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { createEngine, defineWorkflow, openDatabase, step } from '../src/index.ts';
import { cleanupsAfterAll } from './helpers/cleanups.ts';
import { hookedStore } from './helpers/hooked-store.ts';

const cleanups = cleanupsAfterAll();
const quietLogger = { error: () => {}, warn: () => {}, info: () => {}, debug: () => {} };

function scenario() {
  const ledger: string[] = [];
  let stepReturned!: () => void;
  const returned = new Promise<void>((resolve) => (stepReturned = resolve));
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const big = step(async () => {
    ledger.push('big');
    // Returns only once the read of the inbox it races has begun.
    await gate;
    stepReturned();
    return 'y'.repeat(20_000);
  });
  const machine = setup({
    types: {} as { context: { big: string }; events: { type: 'GO' } | { type: 'PING' } },
    actors: { big },
  }).createMachine({
    id: 'held',
    context: { big: '' },
    initial: 'idle',
    states: {
      idle: { on: { GO: 'working' } },
      working: {
        invoke: { src: 'big', onDone: { target: 'idle', actions: assign({ big: ({ event }) => event.output as string }) } },
      },
    },
  });
  return { ledger, returned, open, workflow: defineWorkflow({ name: 'held.write', machine, input: z.object({}) }) };
}

describe('a write held for a read of the inbox', () => {
  for (const outcome of ['read fails', 'read delivers a cancel'] as const) {
    it(`ends the run when the ${outcome === 'read fails' ? 'read fails' : 'read delivers a cancellation'}`, async () => {
      const { ledger, returned, open, workflow } = scenario();
      const raw = await openDatabase({ dataDir: 'memory://' });
      cleanups.push(() => raw.close());
      let arm: 'off' | 'armed' = 'off';
      const db = hookedStore(raw, async (sql) => {
        if (arm !== 'armed' || !sql.includes('left join rmapp_run_inbox i on i.run_id')) return;
        arm = 'off';
        open();
        // Past the step's return and its write's attempt (held for this read), then the read's fate.
        await returned;
        await new Promise((r) => setTimeout(r, 200));
        if (outcome === 'read fails') throw Object.assign(new Error('injected: the read of the inbox failed'), { code: '57P01' });
      });
      const engine = createEngine({
        workflows: [workflow],
        database: db,
        limits: { snapshotBytes: 8 * 1024 },
        pollMs: 50,
        logger: quietLogger,
      });
      cleanups.push(() => engine.stop());
      await engine.startWorker();
      const id = await engine.start('held.write', {});
      await engine.send(id, { type: 'GO' });
      while (ledger.length === 0) await new Promise((r) => setTimeout(r, 20));
      arm = 'armed';
      if (outcome === 'read fails') await engine.send(id, { type: 'PING' });
      else await engine.cancel(id, 'stop it');
      const run = await engine.waitFor(id, { timeoutMs: 20_000 });
      const types = (await engine.history(id)).map((e) => e.type);
      if (outcome === 'read fails') {
        expect(run.status).toBe('failed');
        expect(run.error?.message).toMatch(/limits\.snapshotBytes/);
      } else {
        expect(run.status).toBe('cancelled');
        expect(run.error?.message).toBe('stop it');
        expect(types).toContain('state.unwritable');
      }
      expect(ledger).toEqual(['big']);
      // Nothing of the run is held by this worker: it released it as it ended.
      expect(
        (await raw.query<{ lease_owner: string | null }>('select lease_owner from rmapp_runs where id = $1', [id]))[0]?.lease_owner ?? null,
      ).toBeNull();
    }, 30_000);
  }
});
