/**
 * Adversarial, Postgres: migration 0014 copies rmapp_runs under an exclusive lock. Two processes
 * migrating at once must both come up (src/persistence/migrate.ts: advisory lock, one transaction);
 * a migrator killed in the middle of the copy must leave the 0013 table as it was (the migration is one
 * transaction) and a later migrate must finish it; workers of an engine that were running on the 0013
 * table (their statements prepared against it) must go on working after the table was swapped under them.
 */
import { rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createEngine, openDatabase, type Database } from '../src/index.ts';
import { loadMigrations, migrate } from '../src/persistence/migrate.ts';
import { createTestDatabase } from './helpers/postgres.ts';
import { approvalWorkflow, timerWorkflow } from './helpers/durability-workflows.ts';
import { migrationsUpTo } from './helpers/migrations.ts';
import { cleanupsAfterAll } from './helpers/cleanups.ts';

/** The migrations a 0013 database gets: 0014 and every later one. */
const FROM_0014 = loadMigrations()
  .map((m) => m.tag)
  .filter((tag) => tag >= '0014');

const cleanups = cleanupsAfterAll();

async function database0013(rows: number): Promise<{ url: string; db: Database }> {
  const dir = migrationsUpTo('0013_drop_created_index');
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const t = await createTestDatabase({ prefix: 'advtest', empty: true });
  cleanups.push(() => t.drop());
  const db = await openDatabase({ url: t.url });
  cleanups.push(() => db.close());
  await migrate(db, dir);
  if (rows > 0)
    await db.query(
      `insert into rmapp_runs (id, workflow, workflow_version, status, input, output, snapshot, wake_at)
       select 'bulk-' || lpad(i::text, 8, '0'), 'bulk', 'v1', case when i % 2 = 0 then 'succeeded' else 'waiting' end,
         jsonb_build_object('i', i), 'null'::jsonb, jsonb_build_object('value', 'x', 'context', jsonb_build_object('pad', repeat('p', 200))),
         now() + interval '1 day'
       from generate_series(1, $1::int) i`,
      [rows],
    );
  return { url: t.url, db };
}

const columnOrder = (db: Database) =>
  db.query<{ attname: string }>(
    `select attname from pg_attribute where attrelid = 'rmapp_runs'::regclass and attnum > 0 and not attisdropped order by attnum`,
  );

describe('migration 0014 under concurrency and interruption (postgres)', () => {
  it('two migrators at once: both come up, one applies 0014/0015, the rows are copied once', async () => {
    const { url } = await database0013(20_000);
    const a = await openDatabase({ url });
    const b = await openDatabase({ url });
    cleanups.push(
      () => a.close(),
      () => b.close(),
    );
    const [ra, rb] = await Promise.all([migrate(a), migrate(b)]);
    expect([ra.applied, rb.applied].sort((x, y) => x.length - y.length)).toEqual([[], FROM_0014]);
    const [n] = await a.query<{ n: number; nulls: number }>(
      `select count(*)::int as n, count(*) filter (where output is null)::int as nulls from rmapp_runs`,
    );
    expect(n).toEqual({ n: 20_000, nulls: 20_000 });
  }, 120_000);

  it('a migrator killed during the copy leaves 0013 intact; the next migrate completes it', async () => {
    const { url, db } = await database0013(400_000);
    const orderBefore = await columnOrder(db);
    const victim = await openDatabase({ url });
    cleanups.push(() => victim.close());
    const running = migrate(victim).then(
      () => 'finished',
      (err: unknown) => `failed: ${(err as Error).message}`,
    );
    let killed = false;
    for (let i = 0; i < 400 && !killed; i++) {
      const rows = await db.query<{ pid: number }>(
        `select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and query like '%insert into rmapp_migrations%' and state = 'active'
           and exists (select 1 from pg_locks l where l.pid = pg_stat_activity.pid and l.relation = 'rmapp_runs'::regclass and l.mode = 'AccessExclusiveLock' and l.granted)`,
      );
      if (rows.length > 0) {
        await db.query(`select pg_terminate_backend($1)`, [rows[0]!.pid]);
        killed = true;
      } else await new Promise((r) => setTimeout(r, 10));
    }
    const outcome = await running;
    expect(killed, `the migration was never seen copying (${outcome})`).toBe(true);
    expect(outcome).toMatch(/^failed/);
    expect(await columnOrder(db), 'the 0013 table, columns in their old order').toEqual(orderBefore);
    const [left] = await db.query<{ runs: number; reordered: number; applied: number }>(
      `select (select count(*)::int from rmapp_runs) as runs,
         (select count(*)::int from pg_class where relname like 'rmapp_runs_reordered%') as reordered,
         (select count(*)::int from rmapp_migrations where tag >= '0014') as applied`,
    );
    expect(left).toEqual({ runs: 400_000, reordered: 0, applied: 0 });
    expect((await migrate(db)).applied).toEqual(FROM_0014);
    const [after] = await db.query<{ runs: number; first: string }>(
      `select count(*)::int as runs, (select attname from pg_attribute where attrelid = 'rmapp_runs'::regclass and attnum = 29) as first from rmapp_runs`,
    );
    expect(after).toEqual({ runs: 400_000, first: 'steps' });
  }, 180_000);

  it('an engine running on the 0013 table keeps working after another process swapped the table', async () => {
    const { url, db } = await database0013(0);
    // Today's engine needs 0015's function and 0019's and 0020's columns (each may be applied again).
    for (const tag of ['0015_commit_in_id_order', '0019_inbox_reported', '0020_steps_done']) {
      await db.script(loadMigrations().find((m) => m.tag === tag)!.statements);
    }
    const engine = createEngine({
      database: url,
      workflows: [approvalWorkflow(), timerWorkflow()],
      pollMs: 50,
      leaseMs: 2_000,
      migrate: false,
      concurrency: 20,
    });
    cleanups.push(() => engine.stop());
    await engine.startWorker();
    const first = await Promise.all(Array.from({ length: 20 }, () => engine.start('test.approval', { timeoutMs: 3_600_000 })));
    const until = Date.now() + 30_000;
    while ((await db.query(`select 1 from rmapp_runs where status <> 'waiting'`)).length > 0 && Date.now() < until)
      await new Promise((r) => setTimeout(r, 100));
    // Signals and timers in flight while another process migrates.
    const timers = await Promise.all(Array.from({ length: 10 }, () => engine.start('test.timer', { delayMs: 300 })));
    const sending = Promise.all(
      first.map((id, i) => new Promise((r) => setTimeout(r, i * 20)).then(() => engine.send(id, { type: 'approve', by: 'x' }))),
    );
    const migrator = await openDatabase({ url });
    cleanups.push(() => migrator.close());
    expect((await migrate(migrator)).applied).toEqual(FROM_0014);
    await sending;
    const second = await Promise.all(Array.from({ length: 10 }, () => engine.start('test.approval', { timeoutMs: 3_600_000 })));
    for (const id of second) {
      for (;;) {
        if ((await engine.get(id)).state === 'awaitingApproval') break;
        if (Date.now() > until + 30_000) throw new Error(`run ${id} never got to its approval`);
        await new Promise((r) => setTimeout(r, 100));
      }
      await engine.send(id, { type: 'approve', by: 'y' });
    }
    const all = [...first, ...timers, ...second];
    for (;;) {
      const statuses = await Promise.all(all.map(async (id) => (await engine.get(id)).status));
      if (statuses.every((s) => s === 'succeeded')) break;
      if (Date.now() > until + 60_000) throw new Error(`not finished after the swap: ${JSON.stringify(statuses)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }, 180_000);
});
