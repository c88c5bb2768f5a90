/**
 * A cancellation (or a deadline) reaching a session whose lease it no longer trusts (its renewals failing while the run only
 * waits, so nothing self-fenced it) must not start the definition's cleanup: another worker may hold the run
 * by then and run that cleanup itself (README, "Cancellation": never by two executions at once). Engine A
 * holds a run waiting for an event, its renewals (and claims) cut off; once its lease expired engine B claims the run,
 * and a cancel reaches both (or the run's deadline passes in both). Each engine's cleanup writes its start and end in a ledger outside the engine.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, onTestFinished } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, openDatabase } from '../src/index.ts';
import { storesOnOneDatabase } from './helpers/failing-run-flow.ts';
import { hookedStore } from './helpers/hooked-store.ts';

interface Mark {
  engine: string;
  phase: 'start' | 'end';
  t: number;
  aborted: boolean;
}

const LEASE_MS = 1_000;

/** The workflow as engine `name` registers it: it waits for `go` (or 500 s, so it stays in memory); its cleanup takes 400 ms and writes to `ledger`. */
function waitingFlow(name: string, ledger: Mark[]) {
  return defineWorkflow({
    name: 'h218.idle-cancel',
    version: '1',
    input: z.object({}),
    cleanup: async ({ signal }) => {
      ledger.push({ engine: name, phase: 'start', t: performance.now(), aborted: false });
      await sleep(400);
      ledger.push({ engine: name, phase: 'end', t: performance.now(), aborted: signal?.aborted === true });
    },
    machine: setup({}).createMachine({
      id: 'h218IdleCancel',
      initial: 'waiting',
      states: { waiting: { after: { 500_000: 'done' }, on: { go: 'done' } }, done: { type: 'final' } },
    }),
  });
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** What ends the run while engine B holds it: a cancel, or the run's deadline (4 s after its start). */
const ENDINGS = [
  { what: 'a cancellation', timeoutMs: undefined, status: 'cancelled' },
  { what: 'its deadline', timeoutMs: 4_000, status: 'failed' },
] as const;

/** Each ending on Postgres (two stores of one database) and on PGlite (one store, engine A's statements hooked). */
const CASES = (['postgres', 'pglite'] as const).flatMap((store) => ENDINGS.map((e) => ({ ...e, store })));

describe('a session whose lease expired unrenewed while its run only waited', () => {
  const stores = storesOnOneDatabase();

  it.each(CASES)(
    'does not run the cleanup beside the worker that took the run over, ended by $what ($store)',
    async ({ timeoutMs, status, store }) => {
      const ledger: Mark[] = [];
      let cutOff = false;
      const pglite = store === 'pglite' ? await openDatabase({ dataDir: 'memory://' }) : null;
      if (pglite) onTestFinished(() => pglite.close());
      const dbA = hookedStore(pglite ?? (await stores.open()), (sql) => {
        // Its renewals fail, and so do its claims (else it takes its own expired run back before B does).
        if (cutOff && /set lease_expires_at = greatest\(r\.lease_expires_at|lease_epoch = r\.lease_epoch \+ 1/.test(sql))
          throw new Error('lease statements cut off (test)');
      });
      const dbB = pglite ?? (await stores.open());
      const options = { leaseMs: LEASE_MS, evictAfterMs: 600_000 };
      const a = createEngine({ database: dbA, workflows: [waitingFlow('A', ledger)], ...options });
      const b = createEngine({ database: dbB, workflows: [waitingFlow('B', ledger)], ...options });
      stores.track(a, b);
      // Stopped at the end of each case: a worker of the first case would take the second's run.
      onTestFinished(async () => {
        await a.stop();
        await b.stop();
      });
      await a.startWorker();
      const runId = await a.start('h218.idle-cancel', {}, timeoutMs ? { timeoutMs } : undefined);
      const owner = async () =>
        (await dbB.query<{ lease_owner: string | null }>(`select lease_owner from rmapp_runs where id = $1`, [runId]))[0]?.lease_owner ??
        null;
      await until('engine A to hold the run', async () => (await owner()) !== null);
      const ownerA = await owner();
      cutOff = true;
      await until(
        "engine A's lease to expire",
        async () =>
          (await dbB.query<{ x: boolean }>(`select lease_expires_at <= now() as x from rmapp_runs where id = $1`, [runId]))[0]?.x === true,
      );
      await b.startWorker();
      await until('engine B to take the run over', async () => {
        const o = await owner();
        return o !== null && o !== ownerA;
      });
      if (!timeoutMs) await b.cancel(runId, 'stop');
      expect((await b.waitFor(runId, { timeoutMs: 15_000 })).status).toBe(status);
      await sleep(800);
      const startedBy = ledger.filter((m) => m.phase === 'start').map((m) => m.engine);
      expect(
        startedBy.filter((e) => e === 'A'),
        `engine A, whose lease had expired unrenewed (engine B held the run), ran the cleanup: ${JSON.stringify(ledger)}`,
      ).toEqual([]);
      expect(startedBy, JSON.stringify(ledger)).toEqual(['B']);
    },
    60_000,
  );

  it('leaves the run to be cancelled, its cleanup run once, when the same worker gets its leases back', async () => {
    const ledger: Mark[] = [];
    let cutOff = false;
    const dbA = hookedStore(await stores.open(), (sql) => {
      if (cutOff && /set lease_expires_at = greatest\(r\.lease_expires_at|lease_epoch = r\.lease_epoch \+ 1/.test(sql))
        throw new Error('lease statements cut off (test)');
    });
    const a = createEngine({ database: dbA, workflows: [waitingFlow('A', ledger)], leaseMs: LEASE_MS, evictAfterMs: 600_000 });
    stores.track(a);
    onTestFinished(() => a.stop());
    await a.startWorker();
    const runId = await a.start('h218.idle-cancel', {});
    const expired = async () =>
      (await dbA.query<{ x: boolean }>(`select lease_expires_at <= now() as x from rmapp_runs where id = $1`, [runId]))[0]?.x === true;
    await until('engine A to hold the run', async () => !(await expired()));
    cutOff = true;
    await until("engine A's lease to expire", expired);
    await a.cancel(runId, 'stop');
    // The cancellation reached a session no longer trusting its lease: it let the run go, unwritten.
    await sleep(300);
    cutOff = false;
    expect((await a.waitFor(runId, { timeoutMs: 15_000 })).status, `run ${runId} was not cancelled once the leases came back`).toBe(
      'cancelled',
    );
    await sleep(500);
    expect(
      ledger.filter((m) => m.phase === 'start').map((m) => m.engine),
      `the cleanup of run ${runId} did not run exactly once: ${JSON.stringify(ledger)}`,
    ).toEqual(['A']);
  }, 60_000);
});
