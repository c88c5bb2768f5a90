/**
 * A run started under a parent (`parentRunId`) while a prune deletes that parent. The start checked the
 * parent and inserted the child in separate statements — with a worker, after running the child's first
 * macrostep in memory — and a prune between them deleted the finished parent: the child was stored naming
 * a run that no longer existed, although "a parentRunId must name a run that exists" and "retention keeps
 * a parent while such a run of it is unfinished" (an adversarial pass). The check is now part of the
 * insert, which locks the parent: a prune that deleted it first leaves the start refused, nothing stored.
 */
import { describe, expect, it } from 'vitest';
import { createEngine, openDatabase, ValidationError, type Database } from '../src/index.ts';
import { migrate } from '../src/persistence/migrate.ts';
import { pruneRuns } from '../src/persistence/retention.ts';
import { cleanupsAfterAll } from './helpers/cleanups.ts';
import { hookedStore } from './helpers/hooked-store.ts';
import { createTestDatabase } from './helpers/postgres.ts';
import { poisonedByBoom } from './helpers/workflows.ts';

const workflow = poisonedByBoom('adv10.parent');
const cleanups = cleanupsAfterAll();
const DAY_MS = 86_400_000;

const PARENT_LOOKUP = 'select workflow, workflow_version, status from rmapp_runs where id = $1';
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/**
 * A finished parent a month old, and an engine (`withWorker`: its worker takes the child at once) whose
 * store prunes the parent just before the statement that inserts a run naming it. With `holdFor`, the
 * first such insert also waits until that many starts have looked their parent up (engine.ts `start`)
 * and gone on to their insert, so that those starts queue behind it however the machine schedules them.
 */
async function parentPrunedDuringStart(withWorker: boolean, holdFor = 0) {
  const testDb = await createTestDatabase();
  cleanups.push(() => testDb.drop());
  const db: Database = await openDatabase({ url: testDb.url });
  cleanups.push(() => db.close());
  await migrate(db);
  const setupEngine = createEngine({ workflows: [workflow], database: db });
  const parentId = await setupEngine.start(workflow, {});
  // A parent still waiting, which no prune takes.
  const liveParentId = await setupEngine.start(workflow, {});
  await setupEngine.startWorker();
  await setupEngine.send(parentId, { type: 'finish' });
  expect((await setupEngine.waitFor(parentId, { timeoutMs: 30_000 })).status).toBe('succeeded');
  await setupEngine.stop();
  await db.query(`update rmapp_runs set created_at = now() - interval '30 days', finished_at = now() - interval '30 days' where id = $1`, [
    parentId,
  ]);
  let pruned = 0;
  let batches = 0;
  let lookups = 0;
  let held = false; // the first insert naming the parent was seen
  let lookedUp: () => void = () => {};
  const allLookedUp = new Promise<void>((resolve) => (lookedUp = resolve));
  const store = hookedStore(
    db,
    async (sql, params) => {
      if (/insert into rmapp_runs/i.test(sql) && /jsonb_to_recordset/.test(sql)) batches += 1;
      // One prune, before the first insert naming the parent: concurrent prunes skip the rows another
      // has locked, and a prune after a child of the parent was stored keeps the parent.
      if (/insert into rmapp_runs/i.test(sql) && JSON.stringify(params ?? []).includes(parentId) && !held) {
        held = true;
        if (holdFor > 0) {
          await allLookedUp;
          // Each start settles its first macrostep on a later turn (local-start.ts `startLocalRun`), then queues.
          for (let i = 0; i < 5; i += 1) await nextTurn();
        }
        pruned += (await pruneRuns(db, { succeededMs: 7 * DAY_MS, failedMs: 30 * DAY_MS, cancelledMs: 7 * DAY_MS })).runs;
      }
    },
    (sql) => {
      if (sql === PARENT_LOOKUP && ++lookups >= holdFor) lookedUp();
    },
  );
  // Room for every start of a test: none is inserted pending, past the batcher, for want of a slot.
  const engine = createEngine({ workflows: [workflow], database: store, concurrency: 16 });
  cleanups.push(() => engine.stop());
  if (withWorker) await engine.startWorker();
  return { db, engine, parentId, liveParentId, pruned: () => pruned, batches: () => batches };
}

describe('a start under a parent a prune deletes meanwhile', () => {
  it.each([
    ['no worker in the starting process: the run is inserted pending', false],
    ['a worker in the starting process: the run is inserted past its first macrostep', true],
  ])('%s — the start is refused and nothing is stored', async (_name, withWorker) => {
    const { db, engine, parentId, liveParentId, pruned } = await parentPrunedDuringStart(withWorker);
    const started = engine.start(workflow, {}, { parentRunId: parentId, runId: `child-of-${parentId}` });
    await expect(started).rejects.toBeInstanceOf(ValidationError);
    await expect(started).rejects.toThrow(/parentRunId.*no run with id/);
    expect(pruned()).toBe(1);
    const rows = await db.query<{ id: string }>(`select id from rmapp_runs where id <> $1`, [liveParentId]);
    expect(rows).toEqual([]);
  });

  it('starts inserted together (one statement): those under the pruned parent are refused, the others stored', async () => {
    const { db, engine, parentId, liveParentId, pruned, batches } = await parentPrunedDuringStart(true, 6);
    // The first insert is sent alone and waits on the prune; the others queue behind it and go together.
    const starts = [parentId, liveParentId, parentId, liveParentId, parentId, liveParentId].map((parentRunId, i) =>
      engine.start(workflow, {}, { parentRunId, runId: `child-${i}` }).then(
        (id) => ({ id, refused: null }),
        (err: unknown) => ({ id: null, refused: err }),
      ),
    );
    const results = await Promise.all(starts);
    expect(pruned()).toBe(1);
    expect(batches()).toBeGreaterThan(0);
    for (const [i, r] of results.entries()) {
      if (i % 2 === 0) {
        expect(r.refused).toBeInstanceOf(ValidationError);
        expect(String((r.refused as Error).message)).toMatch(/parentRunId.*no run with id/);
      } else expect(r.id).toBe(`child-${i}`);
    }
    const rows = await db.query<{ id: string; parent_run_id: string | null }>(
      `select id, parent_run_id from rmapp_runs where parent_run_id is not null order by id`,
    );
    expect(rows).toEqual([1, 3, 5].map((i) => ({ id: `child-${i}`, parent_run_id: liveParentId })));
  });
});
