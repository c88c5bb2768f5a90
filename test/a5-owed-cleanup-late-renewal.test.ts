/**
 * An owed cleanup's renewals are not serialised (one every third of the lease): a renewal whose answer
 * came late, after a later one had answered, set the cleanup's trust back to its own (older) send time,
 * already past, and the signal aborted although every renewal held the lease — the cleanup was cut and
 * left owed to run again. The worker's renewals of a run never move its trust back (lease-renewals.ts `renew`);
 * the database never moves the lease's expiry back either (run-admin.ts `renewOwedCleanup`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { setup } from 'xstate';
import { z } from 'zod';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, defineWorkflow } from '../src/index.ts';
import type { Queryable } from '../src/persistence/database.ts';
import { silentLogger } from '../src/persistence/logger.ts';
import { CLEANUP_OWED } from '../src/persistence/run-admin.ts';
import type { WorkflowDefinition } from '../src/state_machine/definition.ts';
import { runOwedCleanup } from '../src/state_machine/pending-cancel.ts';

const LEASE_MS = 1_000;

describe('an owed cleanup whose first renewal answers after a later one (PGlite)', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  });

  it('keeps its signal unaborted while every renewal holds the lease', async () => {
    const seen: { aborted: boolean; reason?: unknown }[] = [];
    const definition = defineWorkflow({
      name: 'a5.late-renewal',
      version: '1',
      input: z.object({}),
      // Runs for two leases, looking at its signal every 50 ms, as the README asks.
      cleanup: async ({ signal }) => {
        for (let i = 0; i < 40; i++) {
          if (signal?.aborted) return void seen.push({ aborted: true, reason: signal.reason });
          await sleep(50);
        }
        seen.push({ aborted: false });
      },
      machine: setup({}).createMachine({ id: 'a5LateRenewal', initial: 'idle', states: { idle: {} } }),
    });
    const engine = createEngine({ database: { url: '', dataDir: 'memory://' }, workflows: [definition] });
    cleanups.push(() => engine.stop({ graceMs: 0 }));
    const db = await engine.db();
    const runId = await engine.start(definition, {});
    await engine.cancel(runId, 'owed');
    await db.query(`update rmapp_runs set status_message = $1 where id = $2`, [CLEANUP_OWED, runId]);

    // The first renewal's answer comes 0.9 of a lease late (a stalled connection of a pool); the rest at once.
    let renewals = 0;
    const slow: Queryable = {
      async query(text, params, options) {
        const renewal = text.includes('greatest(lease_expires_at');
        const n = renewal ? ++renewals : 0;
        const rows = await db.query(text, params, options);
        if (n === 1) await sleep(LEASE_MS * 0.9);
        return rows as never;
      },
    };
    const ran = await runOwedCleanup(
      slow,
      { runId, reason: 'owed', context: {}, definition: definition as unknown as WorkflowDefinition },
      { worker: 'a5', logger: silentLogger, leaseMs: LEASE_MS },
    );
    expect(seen, `the cleanup's signal aborted while every renewal held the lease: ${JSON.stringify(seen)}`).toEqual([{ aborted: false }]);
    expect(renewals, 'the cleanup ran past several renewals').toBeGreaterThan(3);
    expect(ran).toBe(true);
  });
});
