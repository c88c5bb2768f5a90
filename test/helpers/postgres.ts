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
  drop(): Promise<void>;
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
    async drop() {
      const a = postgres(ADMIN_URL, { max: 1, onnotice: () => {}, fetch_types: false });
      await a.unsafe(`drop database if exists ${name} with (force)`);
      await a.end();
    },
  };
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
