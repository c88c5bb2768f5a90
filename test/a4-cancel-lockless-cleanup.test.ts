/**
 * Two cancels of one queued retried run from two processes at once (two stores: two LISTEN connections,
 * so the cleanup lock of pending-cancel.ts `holdCleanup` is a real session lock between them): the one
 * that finds the lock taken must not run the cleanup beside it: it leaves it to the lock's holder, which
 * runs it. It ran it, and a third call made once the first let go of the lock found the mark still there
 * and ran the cleanup a second time, at the same time — the ledger outside the engine (a file each
 * cleanup appends to) shows both.
 */
import { appendFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect, it } from 'vitest';
import { createEngine } from '../src/index.ts';
import { hookedStore } from './helpers/hooked-store.ts';
import { failingRunFlow, storesOnOneDatabase } from './helpers/failing-run-flow.ts';
import { readJsonLines } from './helpers/ledger.ts';

const ledger = join(mkdtempSync(join(tmpdir(), 'a4-lockless-')), 'cleanups.jsonl');

const flow = failingRunFlow({
  name: 'a4.lockless-cleanup',
  concurrency: { limit: 1, key: (i) => i.key },
  cleanup: async ({ runId }) => {
    appendFileSync(ledger, `${JSON.stringify({ runId, phase: 'start', t: Date.now() })}\n`);
    // Long enough for another call to start it again meanwhile.
    await sleep(1_500);
    appendFileSync(ledger, `${JSON.stringify({ runId, phase: 'end', t: Date.now() })}\n`);
  },
});

const { open, track } = storesOnOneDatabase();

it('a cancel that finds the cleanup lock taken leaves the cleanup to its holder: it runs once', async () => {
  // The run fails, and is retried into its key's queue (pending, its snapshot stored) with no worker left.
  const runner = createEngine({ database: await open(), workflows: [flow], leaseMs: 1_000 });
  track(runner);
  await runner.startWorker();
  const id = await runner.start(flow, { key: 'k' });
  expect((await runner.waitFor(id, { timeoutMs: 30_000 })).status).toBe('failed');
  await runner.stop();
  expect((await runner.retry(id)).status).toBe('pending');

  // A's cancellation statement is held up after A took the cleanup lock.
  let entered!: () => void;
  const inside = new Promise<void>((r) => (entered = r));
  const slowA = hookedStore(await open(), async (sql) => {
    if (sql.includes("set status = 'cancelled'")) {
      entered();
      await sleep(700);
    }
  });
  const a = createEngine({ database: slowA, workflows: [flow], migrate: false });
  const b = createEngine({ database: await open(), workflows: [flow], migrate: false });
  const c = createEngine({ database: await open(), workflows: [flow], migrate: false });
  track(a, b, c);

  const first = a.cancel(id, 'from A');
  await inside;
  // B finds the lock taken; its statement lands first.
  const second = b.cancel(id, 'from B');
  await first;
  // A, the lock's holder, found B's cancellation landed and ran the cleanup B left to it.
  expect(
    readJsonLines<{ phase: string }>(ledger).filter((l) => l.phase === 'end'),
    'the cleanup had not run when the call holding its lock returned',
  ).toHaveLength(1);
  // A let go of the lock; the run is cancelled, marked owed, and B's cleanup (if B runs one) still runs.
  const third = await c.cancel(id, 'from C');
  await second;
  // Whoever runs it, the cleanup runs (a cancel again, or a worker's sweep, finishes what is owed).
  for (let i = 0; i < 3 && readJsonLines(ledger).length === 0; i++) await c.cancel(id, 'again');
  const lines = readJsonLines<{ runId: string; phase: string; t: number }>(ledger).filter((l) => l.runId === id);
  expect(
    lines.filter((l) => l.phase === 'start'),
    `the cleanup of ${id} ran more than once (third call: ${third.message}): ${JSON.stringify(lines)}`,
  ).toHaveLength(1);
  expect((await c.get(id))?.statusMessage ?? null).toBeNull();
}, 60_000);
