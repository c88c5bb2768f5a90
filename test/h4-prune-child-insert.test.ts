/**
 * A prune whose candidate scan read the runs before a start inserted a child under one of them. The
 * start's insert locks the parent (`for key share`, runs.ts `PARENT_LOCK`), but only until it commits:
 * a prune that read the runs before the child existed and locked the parent after the insert committed
 * deleted the parent under its new, pending child (DESIGN.md: retention keeps a parent while a run of
 * it is unfinished). The prune now checks its locked runs again under a snapshot taken after its lock.
 * The store hook orders it: the child's start commits between the prune's scan and its lock.
 */
import { expect, it } from 'vitest';
import { createEngine, openDatabase, type Database } from '../src/index.ts';
import { migrate } from '../src/persistence/migrate.ts';
import { pruneRuns } from '../src/persistence/retention.ts';
import { cleanupsAfterAll } from './helpers/cleanups.ts';
import { hookedStore } from './helpers/hooked-store.ts';
import { createTestDatabase, rawTransaction } from './helpers/postgres.ts';
import { poisonedByBoom } from './helpers/workflows.ts';

const workflow = poisonedByBoom('h4.parent');
const cleanups = cleanupsAfterAll();
const DAY_MS = 86_400_000;
const POLICY = { succeededMs: 7 * DAY_MS, failedMs: 30 * DAY_MS, cancelledMs: 7 * DAY_MS };

it('a child started between the prune scan and its lock keeps its parent, a month-old finished run', async () => {
  const testDb = await createTestDatabase();
  cleanups.push(() => testDb.drop());
  const db: Database = await openDatabase({ url: testDb.url });
  cleanups.push(() => db.close());
  await migrate(db);
  const setup = createEngine({ workflows: [workflow], database: db });
  const parentId = await setup.start(workflow, {});
  await setup.startWorker();
  await setup.send(parentId, { type: 'finish' });
  expect((await setup.waitFor(parentId, { timeoutMs: 30_000 })).status).toBe('succeeded');
  await setup.stop();
  await db.query(`update rmapp_runs set created_at = now() - interval '30 days', finished_at = now() - interval '30 days' where id = $1`, [
    parentId,
  ]);

  // No worker: the child stays pending, a run retention must keep its parent for.
  const starter = createEngine({ workflows: [workflow], database: db });
  cleanups.push(() => starter.stop());
  const scans: string[][] = [];
  let childId: string | null = null;
  const pruner = hookedStore(db, async (sql) => {
    // The batch's lock and delete (one script), sent after its scan answered: the start goes first.
    if (!sql.includes("set_config('rmapp.prune_batch'")) return;
    scans.push([sql.includes(`'${parentId}'`) ? parentId : '(not the parent)']);
    if (childId === null) childId = await starter.start(workflow, {}, { parentRunId: parentId, runId: `h4-child-of-${parentId}` });
  });
  const pruned = await pruneRuns(pruner, POLICY);

  expect(scans, 'batches the prune locked, and whether the scan before proposed the parent').toEqual([[parentId]]);
  expect(childId, 'the child started between the scan and the lock').toBe(`h4-child-of-${parentId}`);
  const rows = await db.query<{ id: string; parent_run_id: string | null; status: string }>(
    `select id, parent_run_id, status from rmapp_runs order by parent_run_id nulls first`,
  );
  expect(rows, 'runs left by the prune (it deleted the parent under its new child)').toEqual([
    { id: parentId, parent_run_id: null, status: 'succeeded' },
    { id: childId, parent_run_id: parentId, status: 'pending' },
  ]);
  expect(pruned.runs, 'runs the prune reports deleted').toBe(0);

  // The same prune once the child is over and as old: both go (the parent first, then its child).
  await starter.cancel(childId!);
  await db.query(`update rmapp_runs set created_at = now() - interval '30 days', finished_at = now() - interval '30 days'`);
  expect((await pruneRuns(db, POLICY)).runs, 'runs deleted once the child ended a month ago').toBe(2);
  expect(await db.query(`select id from rmapp_runs`)).toEqual([]);
}, 60_000);

it("runs another transaction holds (another prune's batch) do not stop a prune: it moves past them and deletes the rest in the same call", async () => {
  const testDb = await createTestDatabase();
  cleanups.push(() => testDb.drop());
  const db: Database = await openDatabase({ url: testDb.url });
  cleanups.push(() => db.close());
  await migrate(db);
  const ids = ['old-0', 'old-1', 'old-2', 'old-3', 'old-4'];
  for (const [i, id] of ids.entries()) {
    await db.query(
      `insert into rmapp_runs (id, workflow, workflow_version, status, created_at, finished_at)
       values ($1, 'w', 'v', 'succeeded', now() - interval '30 days' + $2 * interval '1 second', now() - interval '29 days')`,
      [id, i],
    );
  }
  // The two oldest, a full batch of two, locked as another prune's batch locks them.
  const pruned = await rawTransaction(testDb.url, async (tx) => {
    await tx.query(`select id from rmapp_runs where id in ('old-0', 'old-1') for update`);
    return pruneRuns(db, POLICY, { batchSize: 2 });
  });
  expect(pruned.runs, 'runs deleted while the two oldest were held').toBe(3);
  const left = await db.query<{ id: string }>(`select id from rmapp_runs order by id`);
  expect(
    left.map((r) => r.id),
    'runs left',
  ).toEqual(['old-0', 'old-1']);
}, 60_000);
