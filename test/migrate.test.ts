/** Migrations: concurrent start-up from several processes, and a database newer than the code. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseTooNewError, migrate, openDatabase, type Database } from '../src/index.ts';
import { loadMigrations } from '../src/persistence/migrate.ts';

const ALL = loadMigrations().map((m) => m.tag);
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { runRmapp } from './helpers/processes.ts';

describe('migrations on Postgres', () => {
  let testDb: TestDatabase;

  beforeAll(async () => {
    testDb = await createTestDatabase();
  });
  afterAll(async () => {
    await testDb.drop();
  });

  it('three `rmapp migrate` processes on an empty database all succeed', async () => {
    const results = await Promise.all([1, 2, 3].map(() => runRmapp(['migrate'], { DATABASE_URL: testDb.url })));
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const applied = results.filter((r) => r.stdout.startsWith('Applied')).length;
    const upToDate = results.filter((r) => r.stdout.startsWith('Up to date')).length;
    expect(applied).toBe(1);
    expect(upToDate).toBe(2);
    const db = await openDatabase({ url: testDb.url });
    const rows = await db.query<{ tag: string }>('select tag from rmapp_migrations');
    const tables = await db.query<{ n: number }>(`select count(*)::int as n from pg_tables where tablename like 'rmapp_%'`);
    await db.close();
    expect(ALL.length).toBeGreaterThanOrEqual(5);
    expect(rows.map((r) => r.tag).sort()).toEqual(ALL);
    expect(tables[0]?.n).toBe(5); // runs, history, inbox, artifacts, migrations (the watch is a sequence since 0016)
  });

  it('refuses a database migrated by a newer rmapp, with a message that says what to do', async () => {
    const db = await openDatabase({ url: testDb.url });
    await migrate(db);
    await db.query(`insert into rmapp_migrations (tag, hash) values ('9999_from_the_future', 'x')`);
    await expect(migrate(db)).rejects.toBeInstanceOf(DatabaseTooNewError);
    const cli = await runRmapp(['migrate'], { DATABASE_URL: testDb.url });
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/9999_from_the_future.*newer rmapp/);
    expect(cli.stderr).not.toMatch(/\n\s+at /);
    await db.query(`delete from rmapp_migrations where tag = '9999_from_the_future'`);
    await db.close();
  });
});

describe('migrations on PGlite', () => {
  let db: Database;
  beforeAll(async () => {
    db = await openDatabase({ url: '', dataDir: 'memory://' });
  });
  afterAll(async () => {
    await db.close();
  });

  it('applies once and is a no-op the second time', async () => {
    expect((await migrate(db)).applied).toEqual(ALL);
    expect((await migrate(db)).applied).toEqual([]);
  });
});
