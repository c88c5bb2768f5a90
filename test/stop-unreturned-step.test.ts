/**
 * A graceful stop whose grace ends while a step's function still runs: the step's signal aborts, and
 * the run's lease is given back only once the function has returned. A function that ignores its abort
 * keeps the run leased by the stopping worker until the lease expires — given back at once, another
 * worker started the same step while the first process still ran it (an adversarial pass: the ledger
 * showed the two executions overlapping). A function that returns on its abort is handed over at once.
 */
import { setup } from 'xstate';
import { z } from 'zod';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, defineWorkflow, openDatabase, step, type Database, type Engine } from '../src/index.ts';
import { expireDeadProcessLeases, expirePreviousIncarnation } from '../src/persistence/claims.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';

interface Execution {
  runId: string;
  worker: string;
  start: number;
  abortedAt: number | null;
  end: number | null;
}
const ledger: Execution[] = [];
let gate = newGate();
function newGate() {
  let open = () => {};
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

/** One step; `ignores` says whether the worker's function ignores its abort (and waits for the gate). */
function workflowFor(worker: string, ignores: boolean) {
  const work = step(async ({ runId, signal }) => {
    const e: Execution = { runId, worker, start: performance.now(), abortedAt: null, end: null };
    ledger.push(e);
    signal.addEventListener('abort', () => (e.abortedAt = performance.now()));
    try {
      if (worker.startsWith('next')) return 'done';
      if (ignores) await gate.opened;
      else await new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error)));
      return 'done';
    } finally {
      e.end = performance.now();
    }
  });
  const machine = setup({ actors: { work } }).createMachine({
    id: 'unreturned',
    initial: 'working',
    states: { working: { invoke: { src: 'work', onDone: 'done' } }, done: { type: 'final' } },
  });
  return defineWorkflow({ name: 'test.unreturned', machine, input: z.object({}) });
}

let testDb: TestDatabase;
let admin: Database;
const engines: Engine[] = [];
beforeAll(async () => {
  testDb = await createTestDatabase();
  admin = await openDatabase({ url: testDb.url });
});
afterAll(async () => {
  gate.open();
  for (const e of engines) await e.stop({ graceMs: 0 }).catch(() => {});
  await admin.close();
  await testDb.drop();
});

/** A logger that keeps the messages of warnings and errors in `lines`. */
function recordingLogger(lines: string[]) {
  return {
    warn: (_: unknown, m?: string) => void lines.push(m ?? ''),
    error: (_: unknown, m?: string) => void lines.push(m ?? ''),
  };
}

function engine(worker: string, ignores: boolean, warnings: string[] = []): Engine {
  const logger = recordingLogger(warnings);
  const e = createEngine({
    database: testDb.url,
    workflows: [workflowFor(worker, ignores)],
    leaseMs: 2_000,
    pollMs: 100,
    workerId: worker,
    logger,
  });
  engines.push(e);
  return e;
}

async function startedOn(e: Engine): Promise<string> {
  await e.startWorker();
  const id = await e.start('test.unreturned', {});
  while (!ledger.some((x) => x.runId === id)) await new Promise((r) => setTimeout(r, 10));
  return id;
}

async function lease(id: string): Promise<{ owner: string | null; held: boolean }> {
  const [row] = await admin.query<{ owner: string | null; held: boolean }>(
    `select lease_owner as owner, coalesce(lease_expires_at > now(), false) as held from rmapp_runs where id = $1`,
    [id],
  );
  return row!;
}

it('keeps the run leased while a step that ignores its abort still runs; the next worker starts it only after it returned', async () => {
  gate = newGate();
  const warnings: string[] = [];
  const a = engine('ignoring', true, warnings);
  const id = await startedOn(a);
  await a.stop({ graceMs: 50 });
  const first = ledger.find((x) => x.runId === id)!;
  expect(first.abortedAt, 'the step was not aborted when the grace ended').not.toBeNull();
  expect(first.end, 'the step returned though it waits for the gate').toBeNull();
  expect(await lease(id), 'the stopping worker gave the lease back while its step still ran').toEqual({
    owner: expect.stringMatching(/^ignoring:[0-9a-f]{8}:kept$/),
    held: true,
  });
  // A worker started again under the same id in another process takes its previous incarnation's leases
  // over at once: not this one (it ran the step beside the stopped process, an adversarial pass).
  // Even when that incarnation is proven gone.
  const stopped = ((await lease(id)).owner ?? '').replace(/:kept$/, '');
  expect(
    await expirePreviousIncarnation(admin, { workerId: 'ignoring', owners: [stopped], liveOwners: [] }),
    'a kept lease taken over',
  ).toBe(0);
  // Nor does a new process on an embedded store, which takes the leases of the process before over at
  // once: that process stopped its worker and closed the store, but may live on (a second pass).
  expect(await expireDeadProcessLeases(admin, []), "a kept lease taken over as a dead process's").toBe(0);
  expect((await lease(id)).held).toBe(true);
  expect(
    warnings.find((w) => w.includes(id)),
    `no warning names the run; logged: ${JSON.stringify(warnings)}`,
  ).toMatch(/still running .* the lease is kept \(its owner marked ":kept"\) until it expires/);
  const next = engine('next-1', true);
  await next.startWorker();
  const resumed = next.waitFor(id, { timeoutMs: 30_000 });
  gate.open();
  expect((await resumed).status).toBe('succeeded');
  await next.stop();
  const runs = ledger.filter((x) => x.runId === id);
  expect(runs.map((x) => x.worker)).toEqual(['ignoring', 'next-1']);
  expect(runs[1]!.start, 'the next worker started the step while the first still ran it').toBeGreaterThanOrEqual(runs[0]!.end!);
});

it('gives the lease back at once when the step returns on its abort', async () => {
  const warnings: string[] = [];
  const a = engine('honouring', false, warnings);
  const id = await startedOn(a);
  await a.stop({ graceMs: 50 });
  const first = ledger.find((x) => x.runId === id)!;
  expect(first.end, 'the step did not return on its abort').not.toBeNull();
  expect(await lease(id), 'the lease was not given back').toEqual({ owner: null, held: false });
  expect(warnings.filter((w) => w.includes(id))).toEqual([]);
  const next = engine('next-2', false);
  await next.startWorker();
  expect((await next.waitFor(id, { timeoutMs: 30_000 })).status).toBe('succeeded');
  await next.stop();
  expect(ledger.filter((x) => x.runId === id).map((x) => x.worker)).toEqual(['honouring', 'next-2']);
});

it('keeps a run whose timed-out step still runs in memory through its backoff; it leaves memory once the function returned', async () => {
  // The backoff after a timeout is a wait: the run was written out as waiting, and another worker woke
  // it and ran the step's next attempt while the timed-out call still ran (an adversarial pass).
  const slowGate = newGate();
  const timedOut = step(
    async ({ runId, attempt }) => {
      if (attempt > 1) return 'done';
      const e: Execution = { runId, worker: 'timeouts', start: performance.now(), abortedAt: null, end: null };
      ledger.push(e);
      await slowGate.opened;
      e.end = performance.now();
      return 'late';
    },
    { timeoutMs: 200, retry: { maxAttempts: 2, initialDelayMs: 60_000, jitter: 0 } },
  );
  const machine = setup({ actors: { timedOut } }).createMachine({
    id: 'timeouts',
    initial: 'working',
    states: { working: { invoke: { src: 'timedOut', onDone: 'done' } }, done: { type: 'final' } },
  });
  const warnings: string[] = [];
  const e = createEngine({
    logger: recordingLogger(warnings),
    database: testDb.url,
    workflows: [defineWorkflow({ name: 'test.timeouts', machine, input: z.object({}) })],
    leaseMs: 2_000,
    pollMs: 100,
    evictAfterMs: 50,
    workerId: 'timeouts',
  });
  engines.push(e);
  await e.startWorker();
  const id = await e.start('test.timeouts', {});
  const retrying = async () => (await e.history(id)).some((h) => h.type === 'step.retrying');
  while (!(await retrying())) await new Promise((r) => setTimeout(r, 20));
  // Ten times the eviction's delay: it would have written the run out by now.
  await new Promise((r) => setTimeout(r, 500));
  expect((await e.get(id)).status, 'the run left memory while its timed-out step still ran').toBe('running');
  expect(e.activeRuns).toBe(1);
  expect(
    warnings.filter((w) => w.includes(id)),
    'the warning that the run stays in memory',
  ).toEqual([expect.stringMatching(/stays in memory .* a step function whose attempt ended \(it timed out\) has not returned/)]);
  slowGate.open();
  while ((await e.get(id)).status === 'running') await new Promise((r) => setTimeout(r, 20));
  expect((await e.get(id)).status, 'once the function returned, the run waits out its backoff out of memory').toBe('waiting');
  await e.stop();
});
