/**
 * One database interface over two drivers: postgres.js for a real Postgres (`DATABASE_URL`) and
 * PGlite, Postgres compiled to WASM, as the embedded default. Hot paths use hand-written SQL through
 * `query`; the rest may use the typed Drizzle instance. Both see the same schema and migrations.
 */
import { mkdirSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import { resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import postgres from 'postgres';
import * as schema from './schema.ts';

/** A transaction-scoped query function: every statement runs on the transaction's connection. */
export interface Queryable {
  query<T = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<T[]>;
}

/** The store's connection, whatever the driver. */
export interface Database extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /** Where the data lives, with any password removed: safe to log. */
  readonly description: string;
  readonly drizzle: PgDatabase<PgQueryResultHKT, typeof schema>;
  /** Runs `fn` in one transaction (BEGIN … COMMIT, ROLLBACK on throw). */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** LISTEN on a channel; resolves to a function that stops listening. */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** Options for {@link openDatabase}. */
export interface OpenDatabaseOptions {
  /** `postgres://…` for Postgres; absent means embedded PGlite. */
  url?: string | undefined;
  /** Data directory for PGlite; `memory://` keeps it in memory (tests). Default `.rmapp/pgdata`. */
  dataDir?: string | undefined;
  /** Pool size for postgres.js. */
  maxConnections?: number | undefined;
}

/**
 * Opens the store: Postgres when `url` (or `DATABASE_URL`) is set, otherwise PGlite under `.rmapp/`.
 *
 * @example
 * const db = await openDatabase({ url: process.env.DATABASE_URL });
 */
export async function openDatabase(options: OpenDatabaseOptions = {}): Promise<Database> {
  const url = options.url ?? process.env.DATABASE_URL;
  if (url) return openPostgres(url, options.maxConnections ?? 10);
  return openPglite(options.dataDir ?? process.env.RMAPP_DATA_DIR ?? '.rmapp/pgdata');
}

/** Removes the password from a connection string so it can be printed. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres (unparseable DATABASE_URL)';
  }
}

function openPostgres(url: string, max: number): Database {
  if (!/^postgres(ql)?:\/\//.test(url)) {
    throw new Error(
      `DATABASE_URL must start with postgres:// or postgresql:// (got "${redactUrl(url)}"); unset it to use the embedded PGlite store.`,
    );
  }
  // Notices (e.g. "relation already exists, skipping") are noise for an embedded engine.
  const sql = postgres(url, { max, onnotice: () => {}, idle_timeout: 60, connection: { application_name: 'rmapp' } });
  const run = (s: postgres.Sql | postgres.TransactionSql) =>
    async <T>(text: string, params: readonly unknown[] = []): Promise<T[]> =>
      // Parameterized statements are prepared once per connection: the commit CTE costs ~0.5 ms to plan.
      (await s.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare: params.length > 0 })) as unknown as T[];
  const query = run(sql);
  return {
    kind: 'postgres',
    description: redactUrl(url),
    drizzle: drizzlePostgres(sql, { schema }) as unknown as Database['drizzle'],
    query,
    transaction: (fn) => sql.begin((tx) => fn({ query: run(tx) })) as Promise<never>,
    async listen(channel, onPayload) {
      const sub = await sql.listen(channel, onPayload);
      return () => sub.unlisten();
    },
    close: () => sql.end({ timeout: 5 }),
  };
}

async function openPglite(dataDir: string): Promise<Database> {
  let pg: PGlite;
  let unlock = () => {};
  if (dataDir.startsWith('memory://')) {
    pg = new PGlite(dataDir);
  } else {
    const dir = resolve(dataDir);
    mkdirSync(dir, { recursive: true });
    unlock = lockDataDir(dir);
    pg = new PGlite(dir);
  }
  try {
    await pg.waitReady;
  } catch (err) {
    unlock();
    throw err;
  }
  const query = async <T>(text: string, params: readonly unknown[] = []): Promise<T[]> =>
    (await pg.query<T>(text, params as unknown[])).rows;
  return {
    kind: 'pglite',
    description: `pglite:${dataDir}`,
    drizzle: drizzlePglite(pg, { schema }) as unknown as Database['drizzle'],
    query,
    transaction: (fn) =>
      pg.transaction((tx) =>
        fn({ query: async <T>(text: string, params: readonly unknown[] = []) => (await tx.query<T>(text, params as unknown[])).rows }),
      ),
    async listen(channel, onPayload) {
      const unsub = await pg.listen(channel, onPayload);
      return () => unsub();
    },
    close: async () => {
      await pg.close();
      unlock();
    },
  };
}

/**
 * PGlite is one process's database: two processes opening one directory corrupt it. A lock file
 * holding the owner's pid turns that into a clear error; a lock left by a dead process is taken over.
 */
function lockDataDir(dir: string): () => void {
  const lockFile = `${dir}.lock`;
  for (let tries = 0; tries < 2; tries++) {
    try {
      const fd = openSync(lockFile, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      const release = () => rmSync(lockFile, { force: true });
      process.once('exit', release);
      return () => {
        process.off('exit', release);
        release();
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(lockFile, 'utf8'));
      if (pid && pid !== process.pid && isAlive(pid)) {
        throw new Error(
          `The embedded store ${dir} is in use by process ${pid}. PGlite serves one process at a time: stop that ` +
            'process, or set DATABASE_URL=postgres://… so several processes can share one Postgres.',
        );
      }
      rmSync(lockFile, { force: true });
    }
  }
  throw new Error(`Could not lock the embedded store ${dir}; remove ${lockFile} if no rmapp process is running.`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
