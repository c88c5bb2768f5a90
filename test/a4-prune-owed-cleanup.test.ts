/**
 * Retention (persistence/retention.ts `pruneRuns`: `rmapp prune`, an engine's `retention` job) keeps a
 * cancelled run whose cleanup is still owed (run-admin.ts `CLEANUP_OWED`): deleted, the cleanup was lost
 * for good — no worker's sweep and no cancel finds a run that is gone. A ledger outside the engine (a file
 * the cleanup appends to) shows whether it ran.
 */
import { appendFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, openDatabase, step, type Database, type Engine } from '../src/index.ts';
import { CLEANUP_OWED } from '../src/persistence/run-admin.ts';
import { pruneRuns } from '../src/persistence/retention.ts';
import { readJsonLines } from './helpers/ledger.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { until } from './helpers/processes.ts';

const ledger = join(mkdtempSync(join(tmpdir(), 'a4-prune-')), 'cleanups.jsonl');

const work = step(
  async () => {
    throw Object.assign(new Error('the step is broken'), { category: 'permanent' });
  },
  { retry: { maxAttempts: 1 } },
);

const flow = defineWorkflow({
  name: 'a4.pruned-owed',
  version: '1',
  input: z.object({ key: z.string() }),
  concurrency: { limit: 1, key: (i) => i.key },
  cleanup: ({ runId }) => appendFileSync(ledger, `${JSON.stringify({ runId })}\n`),
  machine: setup({ types: {} as { input: { key: string }; context: { key: string } }, actors: { work } }).createMachine({
    id: 'a4PrunedOwed',
    context: ({ input }) => input,
    initial: 'working',
    states: { working: { invoke: { src: 'work', onDone: 'done' } }, done: { type: 'final' } },
  }),
});

let testDb: TestDatabase | undefined;
let db: Database | undefined;
const engines: Engine[] = [];
afterAll(async () => {
  for (const e of engines) await e.stop().catch(() => {});
  await db?.close().catch(() => {});
  await testDb?.drop();
});

it('a prune keeps a cancelled run whose cleanup is owed, and a worker then runs the cleanup', async () => {
  testDb = await createTestDatabase();
  db = await openDatabase({ url: testDb.url });
  const runner = createEngine({ database: db, workflows: [flow], leaseMs: 1_000 });
  engines.push(runner);
  await runner.startWorker();
  const owed = await runner.start(flow, { key: 'a' });
  const plain = await runner.start(flow, { key: 'b' });
  for (const id of [owed, plain]) expect((await runner.waitFor(id, { timeoutMs: 30_000 })).status).toBe('failed');
  await runner.stop();
  // As a cancel of the queued retried run leaves it when its process died before the cleanup (a day ago);
  // the other run cancelled without a mark, as old.
  await db.query(
    `update rmapp_runs set status = 'cancelled', status_message = case when id = $1 then $3 end,
       finished_at = now() - interval '1 day', created_at = now() - interval '1 day' where id in ($1, $2)`,
    [owed, plain, CLEANUP_OWED],
  );

  const pruned = await pruneRuns(db, { succeededMs: Infinity, failedMs: Infinity, cancelledMs: 0 });
  expect(pruned.runs, 'the run cancelled without an owed cleanup is pruned as before').toBe(1);
  expect(await runner.get(plain).catch(() => null)).toBeNull();
  expect(await runner.get(owed), `run ${owed}, whose cleanup is owed, was deleted by the prune`).not.toBeNull();

  // A worker that registers the version sweeps at start and runs it.
  const worker = createEngine({ database: db, workflows: [flow], leaseMs: 1_000, migrate: false });
  engines.push(worker);
  await worker.startWorker();
  await until(() => readJsonLines<{ runId: string }>(ledger).some((l) => l.runId === owed), 15_000, `the owed cleanup of ${owed}`);
  await until(async () => (await worker.get(owed))?.statusMessage === null, 15_000, 'the mark cleared');
  await worker.stop();
  // Its cleanup done, the run goes as any cancelled run does.
  expect((await pruneRuns(db, { succeededMs: Infinity, failedMs: Infinity, cancelledMs: 0 })).runs).toBe(1);
}, 60_000);
