/**
 * A fresh Postgres database per test file on the machine's server. Postgres suites never skip: if the
 * server is down the suite fails and says how to start it.
 */
import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll } from 'vitest';
import { openDatabase, type Database } from '../../src/index.ts';
import type { Queryable } from '../../src/persistence/database.ts';

/** The environment variable naming the run's migrated template (test/helpers/migrated-template.ts). */
export const TEMPLATE_ENV = 'RMAPP_TEST_TEMPLATE_DB';

/** The server the tests use; override with RMAPP_TEST_DATABASE_URL. */
export const ADMIN_URL = process.env.RMAPP_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  url: string;
  name: string;
  /** Ends the database's use; it is dropped at the end of the run ({@link retireTestDatabase}). */
  drop(): Promise<void>;
  /**
   * Drops the database now, for a test that must drop something the database holds on to afterwards
   * (a role granted privileges in it).
   */
  dropNow(): Promise<void>;
}

/** Options of {@link createTestDatabase}. */
export interface TestDatabaseOptions {
  /** The start of the database's name; default RMAPP_TEST_DB_PREFIX, or `rmapp_test`. */
  prefix?: string;
  /**
   * An empty database, for tests of the migrations themselves (applied one by one, up to one, by
   * another role). Otherwise the database is a copy of the migrated template when the run has one
   * (test/helpers/migrated-template.ts): the engine's `migrate` then finds every migration applied.
   */
  empty?: boolean;
}

/**
 * Creates a database and returns its URL: migrated (a copy of the run's template), or empty with
 * `empty` or when the run has no template. Its name starts with the prefix (a string is the prefix;
 * several people sharing one server each keep to a prefix of their own).
 */
export async function createTestDatabase(options: string | TestDatabaseOptions = {}): Promise<TestDatabase> {
  const { prefix = process.env.RMAPP_TEST_DB_PREFIX ?? 'rmapp_test', empty = false } =
    typeof options === 'string' ? { prefix: options } : options;
  const template = empty ? undefined : process.env[TEMPLATE_ENV];
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {}, fetch_types: false });
  const name = `${prefix}_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  try {
    await admin.unsafe(template ? `create database ${name} template ${template}` : `create database ${name}`);
  } catch (err) {
    await admin.end();
    throw new Error(
      `Cannot reach Postgres at ${ADMIN_URL} (${(err as Error).message}). Start it with: ` +
        'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start',
    );
  }
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    drop: () => retireTestDatabase(name),
    async dropNow() {
      const a = postgres(ADMIN_URL, { max: 1, onnotice: () => {}, fetch_types: false });
      try {
        await a.unsafe(`drop database if exists ${name} with (force)`);
      } finally {
        await a.end();
      }
    },
  };
}

/**
 * What marks a test database as finished (`COMMENT ON DATABASE`): {@link dropRetiredTestDatabases}
 * drops every database that carries it.
 */
export const RETIRED_COMMENT = 'rmapp test database, finished: to drop';

/**
 * Ends a test database's use without dropping it yet: new connections are refused and the open ones
 * terminated at once (what `drop … with (force)` did for a process a test left behind), and the database
 * is marked for {@link dropRetiredTestDatabases} at the end of the run (test/global-setup.ts).
 *
 * Why not drop it here: on Postgres 15 every `DROP DATABASE` forces an immediate checkpoint and waits
 * for it, which writes out every database's dirty buffers while the other test file runs and makes the
 * next change to each page log a full-page image; the suite's ~400 drops were one checkpoint every
 * ~15 s of the run (README, "Testing"). Dropped together at the end, concurrent drops share
 * checkpoints and little is dirty. A database that does not exist is fine (a second call).
 */
export async function retireTestDatabase(name: string): Promise<void> {
  const a = postgres(ADMIN_URL, { max: 1, onnotice: () => {}, fetch_types: false });
  try {
    await a.unsafe(`alter database ${name} allow_connections false`);
    await a.unsafe(`comment on database ${name} is '${RETIRED_COMMENT}'`);
    await a`select pg_terminate_backend(pid) from pg_stat_activity where datname = ${name} and pid <> pg_backend_pid()`;
  } catch (err) {
    if ((err as { code?: string }).code !== '3D000') throw err; // invalid_catalog_name: already gone
  } finally {
    await a.end();
  }
}

/**
 * Drops every retired test database on the server ({@link retireTestDatabase}), this run's and any a
 * killed run left, a few at a time: drops that overlap share the checkpoint each one waits for.
 * Returns how many were dropped.
 */
export async function dropRetiredTestDatabases(): Promise<number> {
  const a = postgres(ADMIN_URL, { max: 4, onnotice: () => {}, fetch_types: false });
  try {
    const rows = await a<{ datname: string }[]>`
      select d.datname from pg_database d
      join pg_shdescription s on s.objoid = d.oid and s.classoid = 'pg_database'::regclass
      where s.description = ${RETIRED_COMMENT} and not d.datistemplate`;
    const names = rows.map((r) => r.datname);
    let next = 0;
    const dropNext = async (): Promise<void> => {
      for (let name = names[next++]; name !== undefined; name = names[next++]) {
        await a.unsafe(`drop database if exists "${name.replace(/"/g, '""')}" with (force)`);
      }
    };
    await Promise.all([dropNext(), dropNext(), dropNext(), dropNext()]);
    return names.length;
  } finally {
    await a.end();
  }
}

/**
 * The engine's `database` option for a test of `kind`: a fresh Postgres database (dropped by the
 * cleanup pushed onto `cleanups`) or an in-memory PGlite.
 */
export async function engineDatabaseFor(
  kind: 'postgres' | 'pglite',
  cleanups: (() => Promise<void>)[],
  options: TestDatabaseOptions = {},
): Promise<{ url: string; dataDir?: string }> {
  if (kind === 'pglite') return { url: '', dataDir: 'memory://' };
  const testDb = await createTestDatabase(options);
  cleanups.push(() => testDb.drop());
  return { url: testDb.url };
}

/**
 * A store for a `describe.each(['postgres', 'pglite'])` suite: a fresh Postgres database (see
 * {@link createTestDatabase} for `options`), or in-memory PGlite (always empty).
 */
export async function openTestStore(
  kind: 'postgres' | 'pglite',
  options: TestDatabaseOptions = {},
): Promise<{ db: Database; close(): Promise<void> }> {
  if (kind === 'pglite') {
    const db = await openDatabase({ url: '', dataDir: 'memory://' });
    return { db, close: () => db.close() };
  }
  const testDb = await createTestDatabase(options);
  const db = await openDatabase({ url: testDb.url });
  return {
    db,
    async close() {
      await db.close();
      await testDb.drop();
    },
  };
}

/**
 * An interactive transaction on a connection of its own, for tests that hold locks open. rmapp itself
 * offers none (docs/database-driver.md): nothing here terminates this connection.
 */
export async function rawTransaction<T>(url: string, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  const sql = postgres(url, { max: 1, onnotice: () => {}, fetch_types: false, connection: { lock_timeout: 5_000 } });
  try {
    return (await sql.begin((tx) =>
      fn({
        query: async <R>(text: string, params: readonly unknown[] = []) => (await tx.unsafe(text, params as never[])) as unknown as R[],
      }),
    )) as T;
  } finally {
    await sql.end();
  }
}

/**
 * A fresh database and a store on it for the whole test file: `const store = useTestDatabase();` then
 * `store.db` and `store.testDb` inside tests and hooks registered after it.
 */
export function useTestDatabase(): { db: Database; testDb: TestDatabase } {
  const state = {} as { db: Database; testDb: TestDatabase };
  beforeAll(async () => {
    state.testDb = await createTestDatabase();
    state.db = await openDatabase({ url: state.testDb.url });
  });
  afterAll(async () => {
    await state.db?.close();
    await state.testDb?.drop();
  });
  return state;
}
