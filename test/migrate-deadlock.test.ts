/**
 * A migration that loses a deadlock to the statements of workers still running is applied anyway:
 * the script is one transaction, rolled back whole by the deadlock, and `migrate` sends it again. A
 * deploy's `rmapp migrate` failed on it: migration 0014 holds rmapp_runs, a later one alters the inbox,
 * and a signal being appended holds the inbox while it waits for rmapp_runs.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { expect, it } from 'vitest';
import { openDatabase } from '../src/index.ts';
import { migrate } from '../src/persistence/migrate.ts';
import { until } from './helpers/processes.ts';
import { createTestDatabase } from './helpers/postgres.ts';
import { cleanupsAfterAll } from './helpers/cleanups.ts';

const MIGRATIONS = {
  '0000_tables': 'CREATE TABLE a (x int);--> statement-breakpoint\nCREATE TABLE b (x int);',
  '0001_hold_a_then_b': 'LOCK TABLE a IN ACCESS EXCLUSIVE MODE;--> statement-breakpoint\nALTER TABLE b ADD COLUMN y int;',
};

/** A migrations folder of its own with the first `count` of {@link MIGRATIONS}: two tables, then one holding the first and altering the second. */
function migrationsDir(count: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'rmapp-deadlock-migrations-'));
  mkdirSync(join(dir, 'meta'));
  const tags = Object.keys(MIGRATIONS).slice(0, count);
  writeFileSync(join(dir, 'meta', '_journal.json'), JSON.stringify({ entries: tags.map((tag, idx) => ({ idx, tag })) }));
  for (const tag of tags) writeFileSync(join(dir, `${tag}.sql`), MIGRATIONS[tag as keyof typeof MIGRATIONS]);
  return dir;
}

const cleanups = cleanupsAfterAll();

it('a migration that loses a deadlock with a running statement is sent again and applied', async () => {
  const { url, drop } = await createTestDatabase({ empty: true });
  cleanups.push(drop);
  const db = await openDatabase({ url });
  cleanups.push(() => db.close());
  // The first migration alone, as the database was before the deploy.
  const first = migrationsDir(1);
  expect((await migrate(db, first)).applied).toEqual(['0000_tables']);

  // A worker's transaction holds b, as a signal's append holds the inbox.
  const worker = new pg.Client({ connectionString: url });
  await worker.connect();
  cleanups.push(() => worker.end());
  await worker.query('begin');
  await worker.query('lock table b in row exclusive mode');
  const migrating = migrate(db, migrationsDir(2)).catch((err: Error) => err);
  // The migration holds a and waits for b; the worker's transaction now waits for a: a deadlock, which
  // the migration, waiting longer, is the one to detect and lose.
  await until(async () => {
    const { rows } = await worker.query(
      "select 1 from pg_locks l join pg_class c on c.oid = l.relation where c.relname = 'b' and not l.granted and l.pid <> pg_backend_pid()",
    );
    return rows.length > 0;
  }, 20_000);
  await worker.query('select count(*) from a');
  await worker.query('commit');
  const result = await migrating;
  expect(result, result instanceof Error ? result.message : '').toEqual({ applied: ['0001_hold_a_then_b'] });
  const { rows } = await worker.query("select 1 from information_schema.columns where table_name = 'b' and column_name = 'y'");
  expect(rows, 'the migration applied').toHaveLength(1);
});
