/**
 * rmapp's connections never plan a sequential scan where an index serves (src/persistence/planner-settings.ts,
 * `PLANNER_SETTINGS`): Postgres keeps a prepared statement's generic plan, and one planned while
 * `rmapp_runs` was empty — every new database — scanned the whole table on each commit until
 * autovacuum analyzed it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { migrate } from '../src/persistence/migrate.ts';
import { openDatabase } from '../src/persistence/database.ts';
import { createTestDatabase, openTestStore } from './helpers/postgres.ts';

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe.each(['postgres', 'pglite'] as const)('%s', (kind) => {
  it('plans a commit by run id with the primary key on a new table, generic plan included', async () => {
    const store = await openTestStore(kind, { empty: true });
    cleanups.push(() => store.close());
    const { db } = store;
    await migrate(db);
    // A commit's run exists: the table holds a row (with none, two indexes tie at the same cost).
    await db.query(`insert into rmapp_runs (id, workflow, workflow_version) values ('a-run', 'w', 'v1')`);
    // The generic plan a prepared statement keeps after its fifth execution, forced here at once.
    const plan = await db.script<{ 'QUERY PLAN': string }>([
      'set local plan_cache_mode = force_generic_plan',
      'prepare rmapp_planner_check(text, int) as update rmapp_runs set version = version + 1 where id = $1 and version = $2',
      `explain execute rmapp_planner_check('a-run', 1)`,
      'deallocate rmapp_planner_check',
    ]);
    const text = plan.map((r) => r['QUERY PLAN']).join('\n');
    expect(text, `the generic plan of a fenced update on a one-row rmapp_runs:\n${text}`).toMatch(/Index Scan using rmapp_runs_pkey/);
    expect(text).not.toMatch(/Seq Scan/);
  });

  it('sets it on every connection of the pool', async () => {
    const store = await openTestStore(kind, { empty: true });
    cleanups.push(() => store.close());
    // Ten statements at once take ten connections of the Postgres pool (PGlite has one).
    const settings = await Promise.all(
      Array.from({ length: 10 }, () =>
        store.db.query<{ v: string }>(
          `select current_setting('enable_seqscan') || ' ' || current_setting('jit') as v from (select pg_sleep(0.05)) s`,
        ),
      ),
    );
    expect(settings.map((rows) => rows[0]?.v)).toEqual(Array.from({ length: 10 }, () => 'off off'));
  });
});

describe('postgres', () => {
  it('does not JIT-compile a query that can only scan sequentially (its cost is raised by the setting)', async () => {
    const store = await openTestStore('postgres', { empty: true });
    cleanups.push(() => store.close());
    await migrate(store.db);
    // No index on `hash`: a sequential scan, costed 10^10 with enable_seqscan off, over every JIT threshold.
    const [plan] = await store.db.query<{ 'QUERY PLAN': unknown[] }>(
      `explain (analyze, format json) select exists (select 1 from rmapp_migrations where hash = $1) as found`,
      ['none'],
    );
    const top = (plan?.['QUERY PLAN'] as Record<string, unknown>[])[0] ?? {};
    expect(top['JIT'], `JIT in the plan of a sequential-scan-only query: ${JSON.stringify(top['JIT'])}`).toBeUndefined();
  });

  it("keeps the connection string's own startup options", async () => {
    const testDb = await createTestDatabase({ empty: true });
    cleanups.push(() => testDb.drop());
    const db = await openDatabase({ url: `${testDb.url}?options=${encodeURIComponent('-c statement_timeout=12345')}` });
    cleanups.push(() => db.close());
    const [row] = await db.query<{ timeout: string; seqscan: string }>(
      `select current_setting('statement_timeout') as timeout, current_setting('enable_seqscan') as seqscan`,
    );
    expect(row).toEqual({ timeout: '12345ms', seqscan: 'off' });
    const [jit] = await db.query<{ jit: string }>(`select current_setting('jit') as jit`);
    expect(jit?.jit).toBe('off');
  });
});

describe('postgres, durability', () => {
  it('commits are flushed before they are answered even where the server, database or role has synchronous_commit off; the URL may still choose', async () => {
    const testDb = await createTestDatabase({ empty: true });
    cleanups.push(() => testDb.drop());
    // An operator's throughput setting: a crash of Postgres then loses commits it had acknowledged.
    const admin = await openDatabase({ url: testDb.url });
    await admin.query(`alter database ${testDb.name} set synchronous_commit = off`);
    await admin.close();
    const db = await openDatabase({ url: testDb.url });
    cleanups.push(() => db.close());
    const settings = await Promise.all(
      Array.from({ length: 5 }, () =>
        db.query<{ v: string }>(`select current_setting('synchronous_commit') as v from (select pg_sleep(0.05)) s`),
      ),
    );
    expect(
      settings.map((rows) => rows[0]?.v),
      "synchronous_commit on rmapp's connections",
    ).toEqual(Array(5).fill('on'));
    const chosen = await openDatabase({ url: `${testDb.url}?options=${encodeURIComponent('-c synchronous_commit=local')}` });
    cleanups.push(() => chosen.close());
    const [row] = await chosen.query<{ v: string }>(`select current_setting('synchronous_commit') as v`);
    expect(row?.v, 'the connection string chose it').toBe('local');
  });
});

describe('postgres, a lone "%" in the connection string', () => {
  it.each([
    ['a password', (url: URL) => `postgres://${url.username}:100%zz@${url.host}${url.pathname}`],
    ['a password ending in "%"', (url: URL) => `postgres://${url.username}:pw%@${url.host}${url.pathname}`],
    [
      'a password, with its own startup options',
      (url: URL) => `postgres://${url.username}:100%zz@${url.host}${url.pathname}?options=-c statement_timeout=4321`,
    ],
  ])('in %s connects, with the settings (pg takes such a password as it is)', async (_what, make) => {
    // Trust authentication here: the password is not checked, only carried.
    const testDb = await createTestDatabase({ empty: true });
    cleanups.push(() => testDb.drop());
    const url = make(new URL(testDb.url));
    const db = await openDatabase({ url });
    cleanups.push(() => db.close());
    const [row] = await db.query<{ v: string; timeout: string }>(
      `select current_setting('enable_seqscan') || ' ' || current_setting('jit') as v, current_setting('statement_timeout') as timeout`,
    );
    expect(row?.v, `settings on a connection opened with ${url}`).toBe('off off');
    if (url.includes('options=')) expect(row?.timeout).toBe('4321ms');
  });
});

it('a lone "%" next to an encoded query value is refused with the fix (the driver would send the value still encoded)', async () => {
  const url = 'postgres://app:100%zz@127.0.0.1:5432/db?options=-c%20statement_timeout%3D4321';
  const err = (await openDatabase({ url }).catch((e: unknown) => e)) as Error & { code?: string };
  expect(err.code).toBe('DATABASE_CONFIG');
  expect(err.message).toMatch(/holds a "%" that does not start an escape .* write that "%" as %25/);
  expect(err.message).not.toMatch(/100%zz/);
});
