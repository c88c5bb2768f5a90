/**
 * A partition between a worker and Postgres that drops every byte and closes nothing (no RST, no FIN),
 * for longer than a lease, then heals. The worker's open connections and the ones it makes during the
 * partition never answer. A statement's deadline used to count only its answer (pg's `query_timeout`):
 * one waiting for a new connection waited out the pool's connect timeout (30 s), longer than the lease,
 * and the connections the partition left half-made held the pool that long after it healed; and with a
 * lease under 10 s the deadline (at least 5 s) was longer than the lease itself.
 *
 * Worker A reaches Postgres through a TCP proxy (test/helpers/pg-fault-proxy.ts, `freeze`, `dropAnswers`,
 * `heal`); worker B directly. Each step's executions are written to a ledger outside the engine, with the
 * worker that ran them. Asserted: what A logs (its statements fail on a deadline shorter than the lease,
 * again and again, and it fences itself), which runs finish and where, that no execution of a step
 * overlaps another of it, and that after the heal A — not restarted — claims and runs new runs; then the
 * store's own bound, and commits cut off mid-statement by their deadline.
 */
import { afterEach, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, type Engine } from '../src/state_machine/engine.ts';
import { defineWorkflow } from '../src/state_machine/definition.ts';
import { step } from '../src/state_machine/step.ts';
import { openDatabase, type Database } from '../src/persistence/database.ts';
import type { Logger } from '../src/persistence/logger.ts';
import { createTestDatabase } from './helpers/postgres.ts';
import { startFaultProxy } from './helpers/pg-fault-proxy.ts';
import { faultScene } from './helpers/fault-scene.ts';

interface Entry {
  worker: 'A' | 'B';
  key: string;
  attempt: number;
  phase: 'start' | 'end' | 'abort';
  /** The step (1 to {@link STEPS}). */
  n: number;
  /** Order of the entry in the ledger (no clock: a counter). */
  seq: number;
}
const ledger: Entry[] = [];

/** Three steps. By default the second outlasts the lease: it is under way when the partition begins. */
const STEPS = 3;
const LEASE_MS = 3_000;
const LONG_SECOND_STEP = [100, 2 * LEASE_MS, 100];

/** The same workflow (one name, one version) with steps that write `worker` into the ledger; `ms` is each step's length. */
function workflowOf(worker: 'A' | 'B') {
  const work = step(
    async ({
      input,
      signal,
      idempotencyKey,
      attempt,
    }: {
      input: { n: number; ms: number };
      signal: AbortSignal;
      idempotencyKey: string;
      attempt: number;
    }) => {
      ledger.push({ worker, key: idempotencyKey, attempt, phase: 'start', n: input.n, seq: ledger.length });
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, input.ms);
        signal.addEventListener('abort', () => {
          clearTimeout(t);
          ledger.push({ worker, key: idempotencyKey, attempt, phase: 'abort', n: input.n, seq: ledger.length });
          reject(signal.reason as Error);
        });
      });
      ledger.push({ worker, key: idempotencyKey, attempt, phase: 'end', n: input.n, seq: ledger.length });
    },
  );
  const states: Record<string, object> = {};
  for (let n = 1; n <= STEPS; n++)
    states[`s${n}`] = {
      invoke: {
        src: 'work',
        input: ({ context }: { context: { ms: number[] } }) => ({ n, ms: context.ms[n - 1] }),
        onDone: n === STEPS ? 'done' : `s${n + 1}`,
      },
    };
  states.done = { type: 'final' };
  return defineWorkflow({
    name: 'partition.steps',
    version: '1',
    machine: setup({ types: {} as { context: { ms: number[] }; input: { ms?: number[] } }, actors: { work } }).createMachine({
      id: 'steps',
      context: ({ input }) => ({ ms: input.ms ?? LONG_SECOND_STEP }),
      initial: 's1',
      states: states as Record<string, { type?: 'final' }>,
    }),
    input: z.object({ ms: z.array(z.number()).optional() }),
  });
}

const scene = faultScene();
const { closers } = scene;
afterEach(() => {
  ledger.length = 0;
});

function recordingLogger(lines: string[]): Logger {
  const line = (level: string) => (obj: unknown, msg?: string) => {
    const err = (obj as { err?: { message?: string } } | null)?.err;
    lines.push(`${level} ${msg ?? ''}${err?.message ? ` [${err.message}]` : ''}`);
  };
  return { debug: () => {}, info: () => {}, warn: line('warn'), error: line('error') } as unknown as Logger;
}

async function statuses(direct: Database): Promise<Record<string, number>> {
  const rows = await direct.query<{ status: string; n: number }>(`select status, count(*)::int as n from rmapp_runs group by status`);
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

/** Executions of one key by one worker and attempt that overlap an execution of the same key elsewhere. */
function overlaps(): string[] {
  const open = new Map<string, Entry>();
  const problems: string[] = [];
  for (const e of ledger) {
    const others = [...open.values()].filter((o) => o.key === e.key);
    if (e.phase === 'start') {
      for (const o of others)
        problems.push(`${e.key}: worker ${e.worker} started attempt ${e.attempt} while worker ${o.worker} ran attempt ${o.attempt}`);
      open.set(`${e.worker} ${e.key} ${e.attempt}`, e);
    } else open.delete(`${e.worker} ${e.key} ${e.attempt}`);
  }
  return problems;
}

it('a worker cut off by a partition that drops bytes notices within its lease, fences itself, runs no step beside the worker that took over, and works again once it heals', async () => {
  const testDb = (scene.testDb = await createTestDatabase('h3'));
  const proxy = (scene.proxy = await startFaultProxy());
  const dbA = await openDatabase({ url: proxy.url(testDb.name), maxConnections: 3 });
  const direct = await openDatabase({ url: testDb.url });
  const logsA: string[] = [];
  const a = createEngine({ database: dbA, workflows: [workflowOf('A')], leaseMs: LEASE_MS, pollMs: 200, logger: recordingLogger(logsA) });
  let b: Engine | null = null;
  closers.push(
    () => dbA.close({ force: true }),
    () => direct.close(),
    () => a.stop({ graceMs: 0 }),
    () => b?.stop({ graceMs: 0 }) ?? Promise.resolve(),
  );
  await a.startWorker();
  const ids: string[] = [];
  for (let i = 0; i < 6; i++) ids.push(await a.start('partition.steps', {}));
  // Every run is A's, its long second step under way.
  await expect.poll(() => ledger.filter((e) => e.n === 2 && e.phase === 'start').length, { timeout: 20_000 }).toBe(6);
  b = createEngine({ database: testDb.url, workflows: [workflowOf('B')], leaseMs: LEASE_MS, pollMs: 200 });
  await b.startWorker();

  proxy.freeze();
  const frozenAt = logsA.length;
  // B takes every run over once its lease has expired, and finishes it.
  await expect.poll(() => statuses(direct), { timeout: 60_000, interval: 250 }).toEqual({ succeeded: 6 });
  const during = logsA.slice(frozenAt);
  proxy.heal();
  const healedAt = logsA.length;

  // A noticed: its statements failed on a deadline shorter than the lease — none waited for the pool's
  // connect timeout (30 s) — and it kept trying: its claim loop failed again and again.
  const failures = during.filter((l) => /could not (renew|claim|commit)/.test(l));
  expect(failures.length, `A's log during the partition: ${during.join(' | ')}`).toBeGreaterThan(0);
  for (const line of failures) {
    const ms = /did not answer a statement within (\d+) ms/.exec(line)?.[1];
    expect(ms, `a failure without a deadline: ${line}`).toBeDefined();
    expect(Number(ms), line).toBeLessThan(LEASE_MS);
  }
  expect(during.filter((l) => /could not renew leases/.test(l)).length, 'its renewals failed and said so').toBeGreaterThan(0);
  expect(
    during.some((l) => /could not claim runs \(attempt [2-9]\)/.test(l)),
    `its claims failed more than once: ${during.join(' | ')}`,
  ).toBe(true);
  // It fenced itself: every second step it ran was aborted, and the runs said so.
  expect(during.filter((l) => /no longer owned by .* \(self-fence\)/.test(l)).length, during.join(' | ')).toBe(6);
  expect(ledger.filter((e) => e.worker === 'A' && e.n === 2 && e.phase !== 'start').map((e) => e.phase)).toEqual(Array(6).fill('abort'));

  // No step ran beside another execution of itself; each ran at most twice (the second time by B, after
  // A's execution was cut off), and every one ran.
  expect(overlaps()).toEqual([]);
  const perKey = new Map<string, Entry[]>();
  for (const e of ledger.filter((x) => x.phase === 'start')) perKey.set(e.key, [...(perKey.get(e.key) ?? []), e]);
  expect(perKey.size).toBe(6 * STEPS);
  for (const [key, xs] of perKey) {
    expect(xs.length, `${key} ran on ${xs.map((x) => x.worker).join(', ')}`).toBeLessThanOrEqual(2);
    if (xs.length === 2)
      expect(
        xs.map((x) => x.worker),
        key,
      ).toEqual(['A', 'B']);
  }

  // Healed: B stops, and runs started elsewhere are claimed and run to the end by A — not restarted —
  // on new connections.
  await b.stop();
  b = null;
  const c = createEngine({ database: direct, workflows: [workflowOf('B')], leaseMs: LEASE_MS });
  closers.push(() => c.stop());
  const after: string[] = [];
  for (let i = 0; i < 3; i++) after.push(await c.start('partition.steps', {}));
  for (const id of after)
    expect((await c.waitFor(id, { timeoutMs: 20_000 })).status, `run ${id}, started after the heal`).toBe('succeeded');
  expect(new Set(ledger.filter((e) => after.some((id) => e.key.startsWith(id))).map((e) => e.worker))).toEqual(new Set(['A']));
  const since = logsA.slice(healedAt);
  expect(
    since.filter((l) => /connection timeout|timeout exceeded when trying to connect/.test(l)),
    since.join(' | '),
  ).toEqual([]);
  expect(await statuses(direct)).toEqual({ succeeded: 9 });
}, 180_000);

it("a statement's deadline counts its wait for a connection, and the connections a partition left half-made do not hold the pool once it heals", async () => {
  const testDb = (scene.testDb = await createTestDatabase('h3'));
  const proxy = (scene.proxy = await startFaultProxy());
  const db = await openDatabase({ url: proxy.url(testDb.name), maxConnections: 2 });
  closers.push(() => db.close({ force: true }));
  expect(await db.query('select 1 as one', [], { timeoutMs: 5_000 })).toEqual([{ one: 1 }]);

  proxy.freeze();
  // One statement on the open connection, one on a connection made in the partition, one waiting for a
  // pool slot, and a script: each fails on its own deadline. Only the answer used to count: the others
  // waited out the pool's connect timeout (30 s), and a script had no deadline at all.
  const cut = await Promise.allSettled([
    db.query('select 1', [], { timeoutMs: 500 }),
    db.query('select 2', [], { timeoutMs: 500 }),
    db.query('select 3', [], { timeoutMs: 500 }),
    db.script(['select 4', 'select 5'], { timeoutMs: 500 }),
  ]);
  expect(cut.map((r) => (r.status === 'rejected' ? (r.reason as { code?: unknown }).code : r.status))).toEqual(
    Array(4).fill('QUERY_TIMEOUT'),
  );
  expect((cut[2] as PromiseRejectedResult).reason).toMatchObject({ message: expect.stringMatching(/no connection to it could be made/) });

  proxy.heal();
  const before = proxy.connections();
  expect(await db.query('select 6 as six', [], { timeoutMs: 5_000 })).toEqual([{ six: 6 }]);
  expect(await db.script(['select 7 as seven'], { timeoutMs: 5_000 })).toEqual([{ seven: 7 }]);
  expect(proxy.connections(), 'answered on a new connection').toBeGreaterThan(before);
});

it('commits cut off mid-statement by their deadline in a one-way partition (applied, their answers lost) leave no partial write and no run behind once it heals', async () => {
  const testDb = (scene.testDb = await createTestDatabase('h3'));
  const proxy = (scene.proxy = await startFaultProxy());
  const dbA = await openDatabase({ url: proxy.url(testDb.name) });
  const direct = await openDatabase({ url: testDb.url });
  const logsA: string[] = [];
  const a = createEngine({ database: dbA, workflows: [workflowOf('A')], leaseMs: LEASE_MS, pollMs: 200, logger: recordingLogger(logsA) });
  closers.push(
    () => dbA.close({ force: true }),
    () => direct.close(),
    () => a.stop({ graceMs: 0 }),
  );
  await a.startWorker();
  // Short steps: a commit is in flight at almost any moment.
  const ids: string[] = [];
  for (let i = 0; i < 6; i++) ids.push(await a.start('partition.steps', { ms: [150, 150, 150] }));
  await expect.poll(() => ledger.filter((e) => e.phase === 'end').length, { timeout: 20_000 }).toBeGreaterThanOrEqual(3);

  // Postgres applies what A sends (its commits, its renewals) and A hears nothing: its statements fail on
  // their deadline, their connections destroyed mid-statement.
  proxy.dropAnswers();
  const droppedAt = logsA.length;
  await expect
    .poll(() => logsA.slice(droppedAt).filter((l) => /could not renew leases: .*did not answer a statement/.test(l)).length, {
      timeout: 30_000,
    })
    .toBeGreaterThanOrEqual(3);
  proxy.heal();

  for (const id of ids) expect((await a.waitFor(id, { timeoutMs: 30_000 })).status, `run ${id}`).toBe('succeeded');
  const during = logsA.slice(droppedAt);
  expect(
    during.some((l) => /could not commit .*did not answer a statement within \d+ ms; its connection was closed/.test(l)),
    during.join(' | '),
  ).toBe(true);
  // Each write was applied whole or not at all: every step succeeded exactly once in each run's history,
  // and no execution of a step overlapped another.
  const history = await direct.query<{ run_id: string; path: string }>(
    `select h.run_id, e->>'path' as path from rmapp_run_history h, jsonb_array_elements(rmapp_history_events(h.events, h.log)) e
     where e->>'type' = 'step.succeeded'`,
  );
  const successes = new Map<string, number>();
  for (const h of history) successes.set(`${h.run_id}/${h.path}`, (successes.get(`${h.run_id}/${h.path}`) ?? 0) + 1);
  expect(successes.size).toBe(ids.length * STEPS);
  expect(
    [...successes].filter(([, n]) => n !== 1),
    'steps that succeeded more than once',
  ).toEqual([]);
  expect(overlaps()).toEqual([]);
  // Each step ran once, or again only after an execution that was cut off: never two at once (above),
  // never more than twice.
  const perKey = new Map<string, number>();
  for (const e of ledger.filter((x) => x.phase === 'start')) perKey.set(e.key, (perKey.get(e.key) ?? 0) + 1);
  expect(
    [...perKey].filter(([, n]) => n > 2),
    'steps that ran more than twice',
  ).toEqual([]);
  expect(await statuses(direct)).toEqual({ succeeded: 6 });
});
