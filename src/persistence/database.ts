/**
 * One database interface over two drivers: postgres.js for a real Postgres (`DATABASE_URL`) and
 * PGlite, Postgres compiled to WASM, as the embedded default. Hot paths use hand-written SQL through
 * `query`; the rest may use the typed Drizzle instance. Both see the same schema and migrations.
 *
 * postgres.js is used only in the ways that survive a terminated backend (docs/database-driver.md):
 * no array-type fetch at connect, no interactive transactions (`begin`/`reserve`), and a statement
 * the driver failed without ever sending is sent again.
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
  /**
   * Runs parameterless statements as one transaction in one round trip and returns the rows of the
   * last statement that returns rows. It is one simple-protocol message, so Postgres runs it as an implicit transaction
   * block: all or nothing, and under READ COMMITTED each statement takes a new snapshot (a lock taken
   * by one statement is held to the end and the next statement sees everything committed before it
   * was granted). Interactive transactions are not offered: postgres.js crashes the process when a
   * backend is terminated inside one (docs/database-driver.md). Values must be inlined with
   * {@link sqlLiteral}.
   */
  script<T = Record<string, unknown>>(statements: readonly string[]): Promise<T[]>;
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
  const sql = postgres(url, {
    max,
    // Notices (e.g. "relation already exists, skipping") are noise for an embedded engine.
    onnotice: () => {},
    idle_timeout: 60,
    // The array-type fetch postgres.js runs first on every connection has its promise dropped: a
    // backend terminated at that moment is an unhandled rejection that kills the process. rmapp sends
    // lists as jsonb and reads no array columns, so it needs no array types.
    fetch_types: false,
    connection: { application_name: 'rmapp' },
  });
  const query = async <T>(text: string, params: readonly unknown[] = []): Promise<T[]> =>
    // Parameterized statements are prepared once per connection: the commit CTE costs ~0.5 ms to plan.
    (await sendOnce(max, () => sql.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare: params.length > 0 }))) as unknown as T[];
  return {
    kind: 'postgres',
    description: redactUrl(url),
    drizzle: drizzlePostgres(sql, { schema }) as unknown as Database['drizzle'],
    query,
    async script<T>(statements: readonly string[]) {
      // No parameters: postgres.js sends it as one simple-protocol Query message.
      const result = await sendOnce<unknown[]>(max, () => sql.unsafe(joinScript(statements)));
      // Rows, or one row list per statement that returned rows when several did.
      return (Array.isArray(result[0]) ? result.at(-1) : result) as T[];
    },
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
    async script<T>(statements: readonly string[]) {
      const results = await pg.exec(joinScript(statements));
      return (results.filter((r) => r.fields.length > 0).at(-1)?.rows ?? []) as T[];
    },
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
 * A driver error that means the statement reached no backend: postgres.js replays the error of a
 * backend terminated mid-statement onto the first statement of that connection's next life (its
 * `query` slot is never cleared), before that statement is sent. The replayed error is a server error
 * (SQLSTATE class 57 or 08); the statement itself never left the process.
 */
function isReplayedServerError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof postgres.PostgresError && typeof code === 'string' && /^(57P0[1-3]|08...)$/.test(code);
}

/**
 * Sends a statement, and sends it again when the driver failed it without sending it (see
 * {@link isReplayedServerError}): it cannot have run, so this is safe for any statement. A statement
 * the driver did send is never repeated here; its caller decides. Each connection replays at most one
 * stale error, so `max + 1` tries always reach a live one.
 */
async function sendOnce<R>(max: number, send: () => postgres.PendingQuery<postgres.Row[]>): Promise<R> {
  for (let attempt = 0; ; attempt++) {
    const pending = send();
    try {
      return (await pending) as unknown as R;
    } catch (err) {
      // postgres.js sets `state` when it hands the statement to a connection to send; null means unsent.
      const unsent = (pending as unknown as { state: unknown }).state === null;
      if (!(unsent && isReplayedServerError(err) && attempt < max)) throw err;
    }
  }
}

/** Joins statements into one simple-protocol message. */
function joinScript(statements: readonly string[]): string {
  return statements.map((s) => s.trim().replace(/;+$/, '')).filter(Boolean).join(';\n');
}

/**
 * A string as a SQL literal, for {@link Database.script} where parameters cannot be bound: an escape
 * string (`E'…'`), whose meaning does not depend on `standard_conforming_strings`.
 *
 * @throws when the value holds a NUL byte, which no Postgres text can hold.
 */
export function sqlLiteral(value: string): string {
  if (value.includes('\0')) throw new Error('A SQL text value cannot hold a NUL byte (\\u0000).');
  return `E'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
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
