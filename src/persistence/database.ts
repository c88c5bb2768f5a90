/**
 * One database interface over two drivers: node-postgres (`pg`) for a real Postgres (`DATABASE_URL`)
 * and PGlite, Postgres compiled to WASM, as the embedded default. Why node-postgres and not
 * postgres.js: docs/database-driver.md (a terminated backend could crash the process, wedge a
 * connection or hand an old error to the next statement).
 *
 * One idiom for every query: parameterized SQL through `Queryable.query` (database-types.ts), one small module per
 * operation or table group (`claims.ts`, `commits.ts`, `runs.ts`, `inbox.ts`, …), raw rows mapped to
 * the schema's types in one place (`rows.ts`). Drizzle keeps the schema (`schema.ts`) and generates the
 * migrations; it runs no query. Why not Drizzle's query builder: the hot path needs what it cannot
 * say — the group commit's one statement over `jsonb_to_recordset`, its runs updated in id order,
 * named prepared statements (the commit statement costs ~0.5 ms to plan) — so it was hand-written
 * SQL already, and the two reads that used the builder made two idioms for one table. Loading
 * drizzle-orm's runtime also cost every process 150–300 ms at start-up (measured importing
 * `drizzle-orm/pg-core` and both drivers on this machine), which the CLI no longer pays.
 */
import { checkDataDirSetting } from './data-dir-setting.ts';
import type { Database } from './database-types.ts';
import { openPostgres } from './postgres-store.ts';
import { openPglite } from './pglite-store.ts';

export type { Database, ListenOptions, LockHolder, Queryable, QueryOptions } from './database-types.ts';
export { driverConnectionString, redactUrl } from './connection-string.ts';
export { heldSessionLocksSql, sessionLockKeySql } from './listener.ts';
export { sqlLiteral } from './sql-text.ts';

/**
 * `db` with a default `QueryOptions.timeoutMs` (database-types.ts) on every statement and script that does not set one:
 * `timeoutMs`, plus a millisecond per kilobyte the statement sends (a link of 1 MB/s still gets a large
 * commit batch through, instead of cutting and sending it again for ever). An engine's statements go
 * through it: on a connection whose server went silent (a partition that kept the socket open, a NAT or
 * load balancer that dropped its state), a commit, claim or renewal otherwise waited for TCP to give up
 * — about 15 minutes on Linux — and the worker with it, while new connections worked. Scripts too: the
 * admission of queued runs (claims.ts `admitKey`) is one, and the claim loop waits for it.
 */
export function withStatementTimeout(db: Database, timeoutMs: number): Database {
  return {
    kind: db.kind,
    description: db.description,
    query: (text, params, options) =>
      db.query(text, params, options?.timeoutMs === undefined ? { ...options, timeoutMs: timeoutMs + sentKb(text, params) } : options),
    script: (statements, options) =>
      db.script(
        statements,
        options?.timeoutMs === undefined ? { ...options, timeoutMs: timeoutMs + sentKb(statements.join(';'), undefined) } : options,
      ),
    // The LISTEN connection is made again as fast as a statement gives up (ListenOptions.timeoutMs).
    listen: (channel, onPayload, options) =>
      db.listen(channel, onPayload, options?.timeoutMs === undefined ? { ...options, timeoutMs } : options),
    ...(db.holdLock ? { holdLock: db.holdLock.bind(db) } : {}),
    ...(db.soleHolder ? { soleHolder: db.soleHolder } : {}),
    close: (options) => db.close(options),
  };
}

/** Roughly the kilobytes a statement sends (its text and its text parameters, a character a byte). */
function sentKb(text: string, params: readonly unknown[] | undefined): number {
  let chars = text.length;
  for (const p of params ?? []) if (typeof p === 'string') chars += p.length;
  return Math.floor(chars / 1024);
}

/** Options for {@link openDatabase}. */
export interface OpenDatabaseOptions {
  /** `postgres://…` for Postgres; absent means embedded PGlite. */
  url?: string | undefined;
  /**
   * Where `url` came from, as messages about it name it — `DATABASE_URL`, `--database-url`,
   * `createEngine's database option` — so that a wrong one is fixed where it was set. Default:
   * `DATABASE_URL` when `url` is absent (it is read from there), else `openDatabase's url option`.
   */
  urlSource?: string | undefined;
  /** Data directory for PGlite; `memory://` keeps it in memory (tests). Default `.rmapp/pgdata`. */
  dataDir?: string | undefined;
  /** Pool size for Postgres. */
  maxConnections?: number | undefined;
  /**
   * Open the embedded store only if it exists: where there is none, a `NO_STORE` error names its path
   * (persistence/store-directory.ts) instead of a new, empty store being made. For what only reads runs
   * (the CLI's `runs list`, `runs show`…): a store made there holds none of them. No effect on Postgres.
   */
  existingOnly?: boolean | undefined;
}

/**
 * Opens the store: Postgres when `url` (or `DATABASE_URL`) is set, otherwise PGlite under `.rmapp/`.
 *
 * @example
 * const db = await openDatabase(); // DATABASE_URL, else PGlite under .rmapp/
 * const other = await openDatabase({ url: process.env.REPORTS_DB, urlSource: 'REPORTS_DB' });
 */
export async function openDatabase(options: OpenDatabaseOptions = {}): Promise<Database> {
  const url = options.url ?? process.env.DATABASE_URL;
  const source = options.urlSource ?? (options.url === undefined ? 'DATABASE_URL' : "openDatabase's url option");
  if (url) return openPostgres(url, options.maxConnections ?? 10, source);
  // An empty RMAPP_DATA_DIR (`RMAPP_DATA_DIR=` in a compose file) is unset, as an empty DATABASE_URL is:
  // taken as a path, it put a store into the current directory.
  const dataDir = options.dataDir || process.env.RMAPP_DATA_DIR || '.rmapp/pgdata';
  // `~/rmstore` from a .env file is not this user's home: refused, not made as a folder named `~`.
  checkDataDirSetting(dataDir, options.dataDir ? 'dataDir' : 'RMAPP_DATA_DIR');
  return openPglite(dataDir, options.existingOnly === true);
}
