/** Migrations: concurrent start-up from several processes, and a database newer than the code. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseTooNewError, migrate, openDatabase, type Database } from '../src/index.ts';
import { loadMigrations } from '../src/persistence/migrate.ts';

const ALL = loadMigrations().map((m) => m.tag);
import { ADMIN_URL, createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { runRmapp } from './helpers/processes.ts';

describe('migrations on Postgres', () => {
  let testDb: TestDatabase;

  beforeAll(async () => {
    testDb = await createTestDatabase({ empty: true });
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
    expect(tables[0]?.n).toBe(6); // runs, history, inbox, artifacts, worker processes, migrations (the watch is a sequence since 0016)
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
    // The deploy check too: it said "0 stranded" and exited 0 for a database every worker would refuse.
    const check = await runRmapp(['versions', 'check'], { DATABASE_URL: testDb.url });
    expect(check.code, check.stdout).toBe(1);
    expect(check.stderr).toMatch(/^rmapp: The database has migrations this version of rmapp does not know \(9999_from_the_future\)/);
    await db.query(`delete from rmapp_migrations where tag = '9999_from_the_future'`);
    await db.close();
  });

  it('refuses a record of migrations that misses an older one, naming the table and the fix', async () => {
    // Applying the missing one again failed on what it had created: "trigger … already exists".
    const db = await openDatabase({ url: testDb.url });
    await migrate(db);
    const [, second] = ALL;
    const [row] = await db.query<{ hash: string }>('select hash from rmapp_migrations where tag = $1', [second]);
    await db.query('delete from rmapp_migrations where tag = $1', [second]);
    try {
      for (const args of [['migrate'], ['runs', 'list'], ['versions', 'check']]) {
        const cli = await runRmapp(args, { DATABASE_URL: testDb.url });
        expect(cli.code, args.join(' ')).toBe(1);
        expect(cli.stderr, args.join(' ')).toMatch(
          new RegExp(
            `^rmapp: rmapp_migrations records ${ALL.at(-1)} but not the earlier ${second}: .* Restore the database from a backup, or put the missing rows back`,
          ),
        );
      }
    } finally {
      await db.query('insert into rmapp_migrations (tag, hash) values ($1, $2)', [second, row?.hash]);
      await db.close();
    }
  });

  it('refuses rmapp tables whose record of migrations is emptied or dropped', async () => {
    // A second pass: both read as a new database — `versions check` exited 0, `migrate` failed on
    // "relation … already exists".
    const db = await openDatabase({ url: testDb.url });
    await migrate(db);
    const kept = await db.query<{ tag: string; hash: string }>('select tag, hash from rmapp_migrations');
    try {
      for (const [how, change] of [
        ['is empty', 'delete from rmapp_migrations'],
        ['is missing', 'drop table rmapp_migrations'],
      ] as const) {
        await db.query(change);
        for (const args of [['migrate'], ['versions', 'check']]) {
          const cli = await runRmapp(args, { DATABASE_URL: testDb.url });
          expect(cli.code, `${args.join(' ')} when the record ${how}`).toBe(1);
          expect(cli.stderr).toMatch(
            new RegExp(`^rmapp: rmapp's tables are in the database but rmapp_migrations ${how}: .* Restore the database from a backup`),
          );
        }
      }
    } finally {
      await db.query(
        'create table if not exists rmapp_migrations (tag text primary key, hash text not null, applied_at timestamptz not null default now())',
      );
      for (const r of kept)
        await db.query('insert into rmapp_migrations (tag, hash) values ($1, $2) on conflict do nothing', [r.tag, r.hash]);
      await db.close();
    }
  });

  it("refuses another program's rmapp_migrations table, naming it and the fix", async () => {
    // It was `column "tag" does not exist` from every command.
    const other = await createTestDatabase({ empty: true });
    const db = await openDatabase({ url: other.url });
    try {
      await db.query('create table rmapp_migrations (id serial primary key, name text)');
      await expect(migrate(db)).rejects.toMatchObject({ code: 'MIGRATION_RECORD' });
      for (const args of [['migrate'], ['runs', 'list'], ['versions', 'check']]) {
        const cli = await runRmapp(args, { DATABASE_URL: other.url });
        expect(cli.code, args.join(' ')).toBe(1);
        expect(cli.stderr, args.join(' ')).toMatch(
          /^rmapp: rmapp_migrations has not the columns rmapp keeps its record in \(tag, hash, applied_at\): column "tag" does not exist\. .* Give rmapp a database of its own/,
        );
      }
      // A second pass: other shapes gave raw errors from the first migration's insert ("column "hash" does
      // not exist", "cannot insert into view"), or read as a newer rmapp's record.
      for (const [shape, described] of [
        ['create table rmapp_migrations (tag int)', 'a table with tag integer'],
        [
          `create table rmapp_migrations (tag text, hash text); insert into rmapp_migrations values ('v1.0', 'x')`,
          'a table with tag text, hash text, holding "v1.0"',
        ],
        [`create view rmapp_migrations as select '0000_init'::text as tag, 'x'::text as hash`, 'a view with tag text, hash text'],
      ] as const) {
        await db.script(['drop table if exists rmapp_migrations', ...shape.split('; ')]); // the view comes last
        const cli = await runRmapp(['migrate'], { DATABASE_URL: other.url });
        expect(cli.code, shape).toBe(1);
        expect(cli.stderr, shape).toContain(
          `rmapp: rmapp_migrations is not rmapp's record of migrations (${described}): it is another program's table`,
        );
      }
    } finally {
      await db.close();
      await other.drop();
    }
  });

  it('checks the shape of its record without refusing a role the catalog refuses', async () => {
    // The shape check read pg_attribute: a role that may read rmapp's tables but not that catalog was
    // refused with MIGRATION_PRIVILEGE advice it already followed (a second pass).
    const other = await createTestDatabase({ empty: true });
    const db = await openDatabase({ url: other.url });
    const role = `rmapp_cat_${other.name.slice(-8)}`;
    try {
      await migrate(db);
      await db.script([
        `create role ${role} login`,
        `grant usage on schema public to ${role}`,
        `grant select, insert, update, delete on all tables in schema public to ${role}`,
        `grant usage, select, update on all sequences in schema public to ${role}`,
        `grant execute on all functions in schema public to ${role}`,
        'revoke select on pg_catalog.pg_attribute from public',
      ]);
      const url = new URL(other.url);
      url.username = role;
      for (const args of [['migrate'], ['runs', 'list']]) {
        const cli = await runRmapp(args, { DATABASE_URL: url.toString() });
        expect(cli.code, `${args.join(' ')}: ${cli.stderr}`).toBe(0);
      }
    } finally {
      await db.query('grant select on pg_catalog.pg_attribute to public').catch(() => {});
      await db.close();
      await other.dropNow();
      const admin = await openDatabase({ url: ADMIN_URL });
      await admin.query(`drop role if exists ${role}`);
      await admin.close();
    }
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
