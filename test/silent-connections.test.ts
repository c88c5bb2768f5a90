/**
 * A worker whose open connections go silent — a partition that keeps the sockets open, a NAT or load
 * balancer that dropped their state — while new connections work. Its commits, claims and renewals used
 * to wait for TCP to give up (about 15 minutes on Linux), and every run it held stalled with it, without
 * a word in the log. Every statement of a worker now has a timeout (a quarter of the lease, at least
 * 5 s): the statement fails as a transient error, its connection leaves the pool, and it is made again
 * on a new one; a run started while the LISTEN connection was silent is claimed once it is made again.
 * Real Postgres behind a TCP proxy that silences the open connections (no timing
 * assertion: the waits are bounds far above what the fix needs and far below what TCP takes). Each
 * step's executions are counted in a ledger outside the engine.
 */
import { afterEach, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, type Engine } from '../src/state_machine/engine.ts';
import { defineWorkflow } from '../src/state_machine/definition.ts';
import { step } from '../src/state_machine/step.ts';
import { statementTimeoutMs } from '../src/state_machine/engine-options.ts';
import { openDatabase, type Database } from '../src/persistence/database.ts';
import type { Logger } from '../src/persistence/logger.ts';
import { createTestDatabase } from './helpers/postgres.ts';
import { startFaultProxy } from './helpers/pg-fault-proxy.ts';
import { faultScene } from './helpers/fault-scene.ts';

/** Every execution of every step: `<run>/<n>`, in the order they started. */
const ledger: string[] = [];
const work = step(async ({ input, runId }: { input: { n: number }; runId: string }) => {
  ledger.push(`${runId}/${input.n}`);
  await new Promise((r) => setTimeout(r, 30));
  return input.n;
});
const states: Record<string, object> = {};
for (let n = 1; n <= 6; n++) states[`s${n}`] = { invoke: { src: 'work', input: { n }, onDone: n === 6 ? 'done' : `s${n + 1}` } };
states.done = { type: 'final' };
const six = defineWorkflow({
  name: 'silent.six',
  machine: setup({ actors: { work } }).createMachine({ id: 'six', initial: 's1', states: states as Record<string, { type?: 'final' }> }),
  input: z.object({}).passthrough(),
});

const scene = faultScene();
const { closers } = scene;
afterEach(() => {
  ledger.length = 0;
});

function recordingLogger(lines: string[]): Logger {
  const logger: Logger = {
    debug: () => {},
    info: () => {},
    warn: (_obj: unknown, msg?: string) => void lines.push(`warn ${msg}`),
    error: (_obj: unknown, msg?: string) => void lines.push(`error ${msg}`),
  } as unknown as Logger;
  return logger;
}

/** A worker whose pool goes through the proxy; `runs` runs started and their steps under way when it returns. */
async function workerUnderLoad(
  leaseMs: number,
  runs: number,
): Promise<{ worker: Engine; ids: string[]; logs: string[]; direct: Database }> {
  const testDb = (scene.testDb = await createTestDatabase());
  const proxy = (scene.proxy = await startFaultProxy());
  const db = await openDatabase({ url: proxy.url(testDb.name) });
  const direct = await openDatabase({ url: testDb.url });
  const logs: string[] = [];
  const worker = createEngine({ database: db, workflows: [six], leaseMs, logger: recordingLogger(logs) });
  closers.push(
    () => db.close({ force: true }),
    () => direct.close(),
    () => worker.stop({ graceMs: 0 }),
  );
  await worker.startWorker();
  const ids: string[] = [];
  for (let i = 0; i < runs; i++) ids.push(await worker.start(six, {}));
  // Steps are running and commits are in flight when the connections go silent.
  await expect.poll(() => ledger.length, { timeout: 20_000 }).toBeGreaterThan(runs);
  return { worker, ids, logs, direct };
}

async function statuses(direct: Database): Promise<Record<string, number>> {
  const rows = await direct.query<{ status: string; n: number }>(`select status, count(*)::int as n from rmapp_runs group by status`);
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

it('a worker whose open connections go silent keeps its runs: statements time out and are made again on new connections', async () => {
  // A lease long enough for a renewal that timed out to be made again before it ends.
  const leaseMs = 40_000;
  expect(statementTimeoutMs(leaseMs)).toBe(10_000);
  const { ids, logs, direct } = await workerUnderLoad(leaseMs, 20);
  const before = ledger.length;
  scene.proxy?.silenceOpen();
  // TCP would take ~15 minutes; the statement timeout is 10 s.
  await expect.poll(() => statuses(direct), { timeout: 60_000, interval: 500 }).toEqual({ succeeded: 20 });
  expect(before, 'steps had run before the connections went silent').toBeGreaterThan(0);
  // No run was lost by its worker: every step of every run ran exactly once.
  const counts = new Map<string, number>();
  for (const e of ledger) counts.set(e, (counts.get(e) ?? 0) + 1);
  const twice = [...counts].filter(([, n]) => n !== 1);
  expect(twice, 'steps that ran more than once').toEqual([]);
  expect(counts.size).toBe(ids.length * 6);
  expect(
    logs.some((l) => /did not answer a statement within 10\d{3} ms; its connection was closed; retrying/.test(l)),
    `the worker said what happened (log: ${logs.join(' | ')})`,
  ).toBe(true);
});

it('with a short lease, the worker may lose its leases to the silence and takes its runs back', async () => {
  // Statements time out after half the lease here (1 s, engine-options.ts `statementTimeoutMs`); a
  // renewal cut off may be made again too late.
  const leaseMs = 2_000;
  const { ids, direct } = await workerUnderLoad(leaseMs, 20);
  scene.proxy?.silenceOpen();
  await expect.poll(() => statuses(direct), { timeout: 60_000, interval: 500 }).toEqual({ succeeded: 20 });
  // A step whose completion could not be written may run again on the run's next claim, never an
  // earlier step after a later one: each run's steps ran in order.
  for (const id of ids) {
    const order = ledger.filter((e) => e.startsWith(`${id}/`)).map((e) => Number(e.split('/').pop()));
    expect(
      order.every((n, i) => i === 0 || n >= (order[i - 1] as number)),
      `run ${id} ran its steps in this order: ${order.join(', ')}`,
    ).toBe(true);
    expect(new Set(order), `run ${id}'s steps`).toEqual(new Set([1, 2, 3, 4, 5, 6]));
  }
});

const quick = defineWorkflow({
  name: 'silent.quick',
  machine: setup({}).createMachine({ id: 'quick', initial: 'done', states: { done: { type: 'final' } } }),
  input: z.object({}).passthrough(),
});

it('a LISTEN connection that went silent is noticed and made again, a run started meanwhile is claimed then, and a stop does not wait for its goodbye', async () => {
  const testDb = (scene.testDb = await createTestDatabase());
  const proxy = (scene.proxy = await startFaultProxy());
  const db = await openDatabase({ url: proxy.url(testDb.name) });
  // Notifications are the only wake-up: a poll every 10 minutes, and no run whose lease expiry would wake
  // the claim loop (it wakes at the earliest one it read). Statements time out after 5 s (a quarter of
  // the lease); the LISTEN connection is pinged every 10 s and has 5 s to answer.
  const worker = createEngine({ database: db, workflows: [quick], pollMs: 600_000, leaseMs: 20_000 });
  const client = createEngine({ database: testDb.url, workflows: [quick] });
  closers.push(
    () => db.close({ force: true }),
    () => client.stop(),
  );
  await worker.startWorker();
  // The claim loop's first pass found nothing and read when to wake next (never): it waits now.
  await expect
    .poll(() => proxy?.seen.some((t) => t.startsWith('select least((select wake_at')), { timeout: 20_000, interval: 20 })
    .toBe(true);
  await new Promise((r) => setTimeout(r, 500));

  proxy.silenceOpen();
  // The notification of this start reaches nobody. Once the LISTEN connection is found dead and made again
  // on a new connection, the worker claims at once (its first claim may go to a silent pooled connection,
  // time out and be made again); it used to wait for its next poll, or for another notification.
  const missed = await client.start(quick, {});
  expect((await client.waitFor(missed, { timeoutMs: 90_000 })).status, `run ${missed}, started while its worker could not hear`).toBe(
    'succeeded',
  );
  const next = await client.start(quick, {});
  expect((await client.waitFor(next, { timeoutMs: 20_000 })).status, 'a run started after, woken by its notification').toBe('succeeded');

  // Its stop's UNLISTEN and goodbye go to a connection that answers; one that went silent meanwhile is
  // given 5 s. Before, the stop waited for its own bound (30 s) on the silent connection.
  proxy.silenceOpen();
  const stopped = await Promise.race([
    worker.stop({ graceMs: 0 }).then(() => 'stopped'),
    new Promise((r) => setTimeout(() => r('still stopping after 20 s'), 20_000)),
  ]);
  expect(stopped).toBe('stopped');
}, 150_000);
