/**
 * One database interface over two drivers: node-postgres (`pg`) for a real Postgres (`DATABASE_URL`)
 * and PGlite, Postgres compiled to WASM, as the embedded default. Why node-postgres and not
 * postgres.js: docs/database-driver.md (a terminated backend could crash the process, wedge a
 * connection or hand an old error to the next statement).
 *
 * One idiom for every query: parameterized SQL through {@link Queryable.query}, one small module per
 * operation or table group (`claims.ts`, `commits.ts`, `runs.ts`, `inbox.ts`, …), raw rows mapped to
 * the schema's types in one place (`rows.ts`). Drizzle keeps the schema (`schema.ts`) and generates the
 * migrations; it runs no query. Why not Drizzle's query builder: the hot path needs what it cannot
 * say — the group commit's one statement over `jsonb_to_recordset`, its runs updated in id order,
 * named prepared statements (the commit statement costs ~0.5 ms to plan) — so it was hand-written
 * SQL already, and the two reads that used the builder made two idioms for one table. Loading
 * drizzle-orm's runtime also cost every process 150–300 ms at start-up (measured importing
 * `drizzle-orm/pg-core` and both drivers on this machine), which the CLI no longer pays.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { accessSync, constants, mkdirSync, readdirSync, realpathSync, type Dirent } from 'node:fs';
import { join, resolve } from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import type * as Pg from 'pg';
import { pg } from './pg-driver.ts';
import { configError } from './config-error.ts';
import { MASK } from './mask-marker.ts';
import { lockDataDir } from './data-dir-lock.ts';
import { checkStoreDirectory, fileInTheWay } from './store-directory.ts';
import { checkDataDirSetting } from './data-dir-setting.ts';
import { lowDiskSpace } from './disk-space.ts';
import { BackendTerminations, backendStartSql, staleBackendsTerminationSql, TERMINATE_TIMEOUT_MS } from './backend-terminations.ts';

/** A transaction-scoped query function: every statement runs on the transaction's connection. */
export interface Queryable {
  query<T = Record<string, unknown>>(text: string, params?: readonly unknown[], options?: QueryOptions): Promise<T[]>;
}

/** Per-statement options of {@link Queryable.query}; a wrapper or PGlite may ignore them. */
export interface QueryOptions {
  /**
   * The longest the statement may take, from the call to its answer: the wait for a pooled connection
   * (a free slot, or a new connection's handshake) counts. Past it, it fails with `QUERY_TIMEOUT`
   * (transient), its connection's socket is destroyed, not given back to the pool, and its backend is
   * terminated: a connection whose server stopped answering (a network partition) would otherwise hold
   * a pool slot for as long as TCP takes to notice, and a backend blocked on a lock would outlive its
   * client. Only the answer used to count: in a partition that also swallowed new connections, a
   * statement waited out the pool's connect timeout (30 s) first — longer than a worker's lease — and
   * the connections the partition left half-made held the pool that long after it healed. For reads a
   * caller gives up on (`engine.waitFor`), and every statement of a worker ({@link withStatementTimeout}).
   * `Infinity` or `NaN`: none.
   */
  timeoutMs?: number | undefined;
}

/** Options of {@link Database.listen}. */
export interface ListenOptions {
  /** Called when the LISTEN connection has been made again after it was lost (notifications may have been missed). */
  onReconnect?: () => void;
  /**
   * The longest a making of the LISTEN connection — its handshake — and each of its statements may take
   * while this listen is listening, before it is given up and tried again after a backoff no longer
   * than this either. The connection is shared: the shortest of its listens' counts. Without it, 30 s
   * for the handshake and 5 s for a statement. {@link withStatementTimeout} gives its statements'
   * deadline: in a partition that swallows new connections, a handshake sent into it is never answered,
   * even after the heal, and a worker heard no wake-up until its connect timeout gave up on it — up to
   * 30 s after the heal (test/listen-reconnect-heal.test.ts). `Infinity` or `NaN`: none of its own.
   */
  timeoutMs?: number | undefined;
}

/** The connection that holds a {@link Database.holdLock} lock this store could not take again, as `pg_stat_activity` names it. */
export interface LockHolder {
  /** Its backend's process id on the server. */
  pid: number;
  applicationName: string | null;
  /** The client's address as the server sees it; null for a Unix socket. */
  clientAddr: string | null;
}

/** The store's connection, whatever the driver. */
export interface Database extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /** Where the data lives, with any password removed: safe to log. */
  readonly description: string;
  /**
   * Runs parameterless statements as one transaction in one round trip and returns the rows of the
   * last statement that returns rows. It is one simple-protocol message, so Postgres runs it as an implicit transaction
   * block: all or nothing, and under READ COMMITTED each statement takes a new snapshot (a lock taken
   * by one statement is held to the end and the next statement sees everything committed before it
   * was granted). One message, so one connection and no transaction left open if it is lost midway
   * (docs/database-driver.md). Values must be inlined with {@link sqlLiteral}. `options.timeoutMs`
   * bounds it as it bounds {@link Queryable.query}.
   */
  script<T = Record<string, unknown>>(statements: readonly string[], options?: QueryOptions): Promise<T[]>;
  /**
   * LISTEN on a channel (1 to 63 bytes: Postgres truncates longer names; refused with
   * `INVALID_CHANNEL`); resolves to a function that stops listening. Notifications sent while the
   * LISTEN connection is down are lost: `onReconnect` runs once it is made again (for a listen that
   * was listening when it was lost), so that the listener can look for what it missed (a worker claims)
   * instead of waiting for its next poll. Never called on PGlite, whose notifications cannot be lost.
   * `options.timeoutMs` bounds the making of the LISTEN connection again ({@link ListenOptions.timeoutMs}).
   */
  listen(channel: string, onPayload: (payload: string) => void, options?: ListenOptions): Promise<() => Promise<void>>;
  /**
   * Takes the session-level lock named `name` on Postgres's LISTEN connection: `held` false when another
   * connection holds it (a live process, or the lingering backend of one gone) — one this store made and
   * lost is terminated and the lock tried again (a few times). Held until `release` or
   * the store closes; taken again whenever that connection is made again, tried until it is held (the
   * backoff at most the listens' bound, {@link ListenOptions.timeoutMs}): a connection this store made
   * before and lost (a partition leaves its backend alive on the server, holding the lock, until TCP
   * keepalive notices) is terminated; `onLost` runs, once per loss, only when another connection — not
   * one of this store's — holds it, and is told which. A worker holds its chosen `workerId` so that a
   * second live process under the same id is told apart from a restart (worker.ts). Absent on PGlite
   * (one process).
   */
  holdLock?(name: string, onLost: (holder: LockHolder) => void): Promise<{ held: boolean; release(): Promise<void> }>;
  /**
   * True for an embedded store on disk (wrappers such as {@link withStatementTimeout} pass it on): this
   * process holds the store alone (data-dir-lock.ts), so a lease held by an owner that none of its
   * workers has been was a dead process's, and a worker takes it over at once (worker.ts) rather than
   * after the lease.
   */
  readonly soleHolder?: boolean;
  /**
   * Closes every connection once its statement in flight has answered. With `force`, at once: each
   * connection's socket is destroyed and a statement in flight fails — for a stop that gave up waiting
   * (a statement held on a lock, a server that stopped answering), which would otherwise keep the
   * process alive. A wrapper may ignore `force`.
   */
  close(options?: { force?: boolean }): Promise<void>;
}

/**
 * `db` with a default {@link QueryOptions.timeoutMs} on every statement and script that does not set one:
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

/** pg's error for a statement given to a connection already known dead: thrown before anything is sent. */
const NOT_QUERYABLE = /^Client has encountered a connection error and is not queryable$/;

/** What a statement (or a listen) gets once its database's close() has begun. */
function databaseClosed(description: string, how = ''): Error {
  return Object.assign(new Error(`The database ${description} was closed${how}; open it again to use it.`), {
    code: 'DATABASE_CLOSED',
  });
}

/**
 * Refuses a channel name Postgres would not keep as given: it truncates identifiers to 63 bytes, so a
 * longer channel was listened on under its first 63 bytes and its notifications (sent under the whole
 * name) never came, and two names alike in those bytes shared one channel. Empty and NUL are invalid.
 */
function checkChannel(channel: string): void {
  const bytes = typeof channel === 'string' ? Buffer.byteLength(channel, 'utf8') : 0;
  if (bytes === 0 || bytes > 63 || channel.includes('\0'))
    throw Object.assign(
      new RangeError(
        `listen: the channel ${JSON.stringify(channel)} is not a usable Postgres channel name: it must be 1 to 63 bytes of UTF-8 (this one is ${bytes}) without NUL; use a shorter name.`,
      ),
      { code: 'INVALID_CHANNEL' },
    );
}

/**
 * A statement given {@link QueryOptions.timeoutMs} that did not answer in time (`stage`: it had a
 * connection and got no answer, or got no connection at all); its connection was closed.
 */
function queryTimeout(description: string, ms: number, stage: 'no answer' | 'no connection'): Error {
  const what = stage === 'no answer' ? 'its connection was closed' : 'no connection to it could be made or freed in that time';
  return Object.assign(new Error(`Postgres at ${description} did not answer a statement within ${ms} ms; ${what}.`), {
    code: 'QUERY_TIMEOUT',
    category: 'transient',
  });
}

/**
 * Removes the password from a connection string so it can be printed, whatever its form: a URL, one
 * `URL` cannot parse or reads otherwise than its author meant (`postgres://app:2024/x@host`: host `app`,
 * port 2024 to `URL`, a password to the person who typed it), or libpq's key/value form. Read raw, so
 * that no escape (`%26`, a lone `%`) ends a mask early; it masks more than needed rather than less.
 * The password becomes {@link MASK}, the marker the service's masker writes (it wrote `***`).
 *
 * @example
 * redactUrl('postgres://app:hunter2@db:5432/prod'); // 'postgres://app:[REDACTED]@db:5432/prod'
 */
export function redactUrl(url: string): string {
  const hasScheme = /^[a-z][a-z0-9+.-]*:/i.test(url);
  // `host=h password='a b'` (libpq's key/value form): a value is quoted or runs to the next space.
  const text = hasScheme ? url : url.replace(/([^\s=]*pass[^\s=]*\s*=\s*)('(?:\\.|[^'\\])*'?|(?:\\.|\S)*)/gi, `$1${MASK}`);
  // Query parameters first, anywhere (`?password=s@x`: an `@` in a later value must not hide it). A value
  // ends only at `&`; a key is read decoded (pg reads `pass%77ord=` as `password=`).
  const params = text.replace(/([?&])([^=&?]*)=([^&]*)/g, (param: string, sep: string, key: string) =>
    SECRET_KEY.test(decodeLeniently(key)) ? `${sep}${key}=${MASK}` : param,
  );
  const prefix = /^(?:[a-z][a-z0-9+.-]*:)?(?:\/\/)?/i.exec(params)?.[0] ?? '';
  // The user information ends at the last `@` (a password may hold `?`, `#`, `/` and `@`).
  const at = params.lastIndexOf('@');
  if (at < prefix.length) return params;
  const userinfo = params.slice(prefix.length, at);
  const colon = userinfo.indexOf(':');
  // `postgres:secret@host`, with no `//`: all of it may be the secret.
  const user = colon >= 0 ? `${userinfo.slice(0, colon)}:${MASK}` : prefix.endsWith('//') ? userinfo : MASK;
  return prefix + user + params.slice(at);
}

/** A connection parameter that holds a secret: `password`, `sslpassword`, and the like. */
const SECRET_KEY = /pass/i;

/** `%XX` escapes and `+` decoded one by one: a malformed escape elsewhere does not stop the others. */
function decodeLeniently(text: string): string {
  return text.replace(/\+/g, ' ').replace(/%([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

/** Failures to reach or log in to the server, not of a statement: these get the hint of {@link connectionError}. */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  '28P01',
  '28000',
  '3D000',
  '57P03',
]);

/**
 * The driver's error with the server named (password masked) and the likely fix. Its `code` and `cause`
 * are the driver's, so it is classified as before (an unreachable server is `transient`: a worker waits
 * for it, README "Postgres and several workers").
 */
function connectionError(err: unknown, url: string, source: string): unknown {
  const setUp = setUpProblem(err, url, source);
  if (setUp) return setUp;
  const code = (err as { code?: unknown } | null)?.code;
  // A Unix socket that is not there (`?host=/some/dir`): the driver said only "connect ENOENT <path>".
  const noSocket = code === 'ENOENT' && (err as { syscall?: unknown }).syscall === 'connect';
  if (typeof code !== 'string' || !(CONNECTION_CODES.has(code) || noSocket)) return err;
  const where = redactUrl(url);
  const fix = noSocket
    ? `no server listens on that socket: is Postgres running, and is the host in ${source} its socket directory (e.g. host=/var/run/postgresql)? Or unset ${source} to use the embedded PGlite store`
    : code === '28P01' || code === '28000'
      ? `check the user and password in ${source}`
      : code === '3D000'
        ? `create the database (createdb) or name an existing one in ${source}`
        : code === '57P03'
          ? 'the server is starting up; try again in a moment'
          : `is Postgres running there? Start it (e.g. pg_ctlcluster <version> main start, or your service manager), fix the host and port in ${source}, or unset ${source} to use the embedded PGlite store`;
  return Object.assign(new Error(`Cannot use Postgres at ${where}: ${(err as Error).message} — ${fix}.`, { cause: err }), { code });
}

/** The connection string's parameters that name a file the driver reads at each connect. */
const SSL_FILE_PARAMS = ['sslcert', 'sslkey', 'sslrootcert'] as const;

/**
 * A connection that fails because of the connection string itself, not an outage: the URL cannot be
 * parsed, it asks for SSL the server does not offer, or it names an SSL file that cannot be read. These
 * carry no SQLSTATE, and were classified transient, so `startWorker({ retry })` and `rmapp worker`
 * retried them for ever with a bare "Invalid URL" or "ENOENT". They fail as `DATABASE_CONFIG` (category
 * `validation`) naming what to fix; the driver's error stays the `cause`.
 */
function setUpProblem(err: unknown, url: string, source: string): Error | null {
  const e = err as { code?: unknown; message?: unknown; path?: unknown } | null;
  const message = typeof e?.message === 'string' ? e.message : '';
  let fix: string | null = null;
  if (e?.code === 'ERR_INVALID_URL') {
    fix =
      'it is not a valid URL: check the port (1–65535), the brackets around an IPv6 host, and percent-encode reserved characters in the user and password (@ as %40, : as %3A, / as %2F, # as %23, ? as %3F)';
  } else if (/does not support SSL/i.test(message)) {
    // The driver's message says already that the server takes no SSL: the fix alone follows it (it was said twice).
    fix = `stop asking for SSL (sslmode=… or ssl=… in ${source} — node-postgres reads ssl=false as a request for SSL — or PGSSLMODE in the environment), or enable ssl on the server`;
  } else if (typeof e?.code === 'string' && /^E[A-Z]+$/.test(e.code)) {
    // pg reads the last value of a parameter given twice. EISDIR carries no path: every SSL file
    // parameter set is a suspect.
    const params = sslFileParams(url);
    const named = SSL_FILE_PARAMS.filter((p) => {
      const value = params.getAll(p).at(-1);
      return value !== undefined && (e.path === undefined ? e.code === 'EISDIR' : e.path === value);
    });
    if (named.length > 0)
      fix = `${named.join(' or ')} names a file rmapp cannot read (${e.code}): fix the path in ${source}, or make the file readable by this process`;
  }
  if (!fix) return null;
  return Object.assign(new Error(`Cannot use Postgres at ${redactUrl(url)}: ${message} — ${fix}.`, { cause: err }), {
    code: 'DATABASE_CONFIG',
    category: 'validation',
  });
}

/**
 * A password holding an unencoded "/", "?" or "#" (`postgres://app:2024/s3cret@db/prod`): `URL` ends the
 * host at that character, so the password becomes the host and port, and the rest the database name —
 * which the server then quotes back in its error (`database "s3cret@db/prod" does not exist`), beyond
 * what {@link redactUrl} masks, retried for ever. Recognised as: no "@" before the host part ends, and an
 * "@" after it before any "=" (an "@" in a query value such as `application_name=w@h` is fine).
 */
function userinfoCutShort(url: string): boolean {
  const start = url.indexOf('//');
  if (start < 0) return false;
  const rest = url.slice(start + 2);
  const end = rest.search(/[/?#]/);
  if (end < 0 || rest.slice(0, end).includes('@')) return false;
  const after = rest.slice(end);
  const at = after.indexOf('@');
  return at >= 0 && !after.slice(0, at).includes('=');
}

/**
 * A "%" that starts no escape (`postgres://u:100%zz@h/db`) and an escaped query value: pg-connection-string
 * then gives up decoding and hands every query value over as written, so `options=-c%20x%3D1` reached
 * the server encoded and was refused. A lone "%" alone is taken as it is (pg accepts such a password).
 */
function queryLeftEncoded(url: string): boolean {
  if (!/%(?![0-9a-fA-F]{2})/.test(url)) return false;
  const q = url.indexOf('?');
  return q >= 0 && /%[0-9a-fA-F]{2}|\+/.test(url.slice(q + 1).split('#')[0] ?? '');
}

/** The `sslmode` values node-postgres's connection strings take (pg-connection-string). */
const SSL_MODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify'];

/**
 * The connection string as the driver is given it: `sslmode=prefer`, `require` and `verify-ca` written
 * as `verify-full`, which is what node-postgres makes of them today (pg-connection-string 2.x) — it
 * says so in a nine-line "SECURITY WARNING" on stderr at the first connect, before any one-line error of
 * rmapp's, in every command run against a cloud URL ending `?sslmode=require`. Nothing changes for the
 * connection; with `uselibpqcompat=true` (libpq's meanings) the string is left as written. Messages
 * keep showing the URL as the user wrote it.
 */
export function driverConnectionString(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const hash = url.indexOf('#', q);
  const query = url.slice(q + 1, hash < 0 ? undefined : hash);
  if (sslFileParams(url).getAll('uselibpqcompat').at(-1) === 'true') return url;
  const parts = query.split('&').map((part) => {
    const [key, value] = part.split('=', 2);
    return key === 'sslmode' && (value === 'prefer' || value === 'require' || value === 'verify-ca') ? 'sslmode=verify-full' : part;
  });
  return `${url.slice(0, q + 1)}${parts.join('&')}${hash < 0 ? '' : url.slice(hash)}`;
}

/** The query parameters of a connection string, read as pg-connection-string reads them (none if it cannot be parsed). */
function sslFileParams(url: string): URLSearchParams {
  const q = url.indexOf('?');
  return new URLSearchParams(q < 0 ? '' : url.slice(q + 1).split('#')[0]);
}

/**
 * The longest a statement waits for a connection (pg-pool counts a wait for a free one in the pool too,
 * and the LISTEN client its connect): a server that accepts TCP and never answers otherwise holds it,
 * and whatever waits for it, for ever (pg sets no limit by default). It fails as a transient error and
 * is tried again, as a refused connection is. 30 s: far beyond a healthy connect or pool wait here.
 */
const CONNECT_TIMEOUT_MS = 30_000;

function openPostgres(url: string, max: number, source: string): Database {
  if (!/^postgres(ql)?:\/\//.test(url)) {
    throw configError(
      `${source} is not a Postgres connection string: got "${redactUrl(url)}". Use postgres://USER@HOST:5432/DATABASE (USER:PASSWORD@ when the server asks for a password), or unset it to use the embedded PGlite store.`,
    );
  }
  if (queryLeftEncoded(url)) {
    throw configError(
      `Cannot use Postgres at ${redactUrl(url)}: the URL holds a "%" that does not start an escape (%XX), so the driver would read its query values (after "?") still percent-encoded — write that "%" as %25 in ${source}.`,
    );
  }
  // The driver parses the string (and reads its SSL files) at each connect; a mistake in it is found
  // here, once, with what to fix, instead of at the first statement.
  if (userinfoCutShort(url)) {
    throw configError(
      `Cannot use Postgres at ${redactUrl(url)}: an "@" comes after the host, so the URL's user or password holds a "/", "?" or "#" — percent-encode them (/ as %2F, ? as %3F, # as %23) in ${source}.`,
    );
  }
  // The driver takes any other value as SSL with full verification: `sslmode=bogus` was then answered
  // "the server does not accept SSL connections", never that the value itself is wrong.
  // The driver keeps a parameter's last value; `uselibpqcompat=true` reads them as libpq does, without
  // `no-verify` (the driver then verifies fully, as for an unknown value).
  const params = sslFileParams(url);
  const sslmode = params.getAll('sslmode').at(-1);
  const modes = params.getAll('uselibpqcompat').at(-1) === 'true' ? SSL_MODES.filter((m) => m !== 'no-verify') : SSL_MODES;
  if (sslmode !== undefined && !modes.includes(sslmode)) {
    throw configError(
      `Cannot use Postgres at ${redactUrl(url)}: sslmode=${JSON.stringify(sslmode.slice(0, 40))} is not an SSL mode${modes === SSL_MODES ? '' : ' with uselibpqcompat=true'} — use one of ${modes.join(', ')} in ${source}.`,
    );
  }
  const driverUrl = driverConnectionString(url);
  let probe: Pg.Client;
  try {
    probe = new pg.Client({ connectionString: driverUrl });
  } catch (err) {
    // Parsing only: whatever fails here is the string's (or its SSL files'), never an outage.
    throw (
      setUpProblem(err, url, source) ??
      Object.assign(configError(`Cannot use Postgres at ${redactUrl(url)}: ${(err as Error).message}.`), { cause: err })
    );
  }
  // The port (`:port`, `?port=`, PGPORT) is read at connect time: pg-pool then throws inside its connect,
  // keeps the broken client, and its end() never resolves — a worker that could not be stopped.
  const port = (probe as unknown as { port: unknown }).port;
  if (!(Number.isInteger(port) && (port as number) >= 1 && (port as number) <= 65535)) {
    throw configError(
      `Cannot use Postgres at ${redactUrl(url)}: the port is not a number from 1 to 65535 (from the URL's :port or ?port=, or PGPORT) — fix it in ${source}.`,
    );
  }
  // The pool's connections, for a forced close, from the moment each starts connecting (pg-pool lists
  // none publicly, and its 'connect' event comes only once a connection is made).
  const clients = new Set<Pg.Client>();
  // When each connection still being made started (pg-pool makes it at once): one that has not finished
  // its handshake after a whole statement deadline went into a partition (its startup message, or the
  // server's answer, was lost) and is dropped with the silent ones (`dropSilent`).
  const connectingSince = new Map<Pg.Client, number>();
  class TrackedClient extends pg.Client {
    constructor(config?: string | Pg.ClientConfig) {
      super(config);
      addPlannerOptions(this);
      // A connection lost while no statement of the pool's listens (one removed after a timed-out read and
      // ending, or connecting through a network that went silent) must not throw an uncaught 'error'
      // event; a statement running on it gets the error itself.
      this.on('error', () => {});
      clients.add(this);
      connectingSince.set(this, performance.now());
      this.once('connect', () => connectingSince.delete(this));
      this.once('end', () => {
        clients.delete(this);
        connectingSince.delete(this);
      });
    }
  }
  const pool = new pg.Pool({
    connectionString: driverUrl,
    max,
    idleTimeoutMillis: 60_000,
    // Idle connections do not keep the process alive (a script that used the engine as a client, a
    // waitFor that reopened the database after a stop): what runs keeps it alive, not the pool.
    allowExitOnIdle: true,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    application_name: 'rmapp',
    Client: TrackedClient,
  });
  // When each connection last answered (given back to the pool), and which are in use: after a statement
  // that got no answer, the idle ones that have not answered since it was sent are dropped too (below).
  const lastAnswered = new WeakMap<Pg.Client, number>();
  const inUse = new Set<Pg.Client>();
  pool.on('acquire', (client) => inUse.add(client));
  pool.on('release', (_err, client) => {
    inUse.delete(client);
    lastAnswered.set(client, performance.now());
  });
  pool.on('remove', (client) => inUse.delete(client));
  // A pooled connection whose backend dies while idle (a restart, pg_terminate_backend) is dropped by
  // the pool, which then emits 'error'; with no listener Node would throw it. The next statement gets
  // a new connection; a statement that was running on it fails with the error, to its caller.
  pool.on('error', () => {});
  // Statements in flight: a close waits for them before it ends the pool. pg-pool's end() leaves a
  // statement still waiting for a connection unanswered until its connect timeout (30 s), so the pool
  // is ended only once they are done; a forced close fails them at once.
  const inFlight = new Set<Promise<unknown>>();
  // How each statement in flight is failed by a forced close. Not a race against one promise that a
  // forced close rejects: a promise that never settles keeps a reaction per race, so every statement
  // an engine ever sent stayed in memory (~560 B each: a worker grew without bound, and at concurrency 1
  // every scavenge copied what a few hundred statements had left, test/database-memory.test.ts).
  const failers = new Set<(err: Error) => void>();
  let failForced: (err: Error) => void = () => {};
  const forced = new Promise<never>((_, reject) => (failForced = reject));
  forced.catch(() => {});
  let ending: Promise<void> | null = null;
  const description = redactUrl(url);
  const closedError = (how: string) => databaseClosed(description, how);
  const tracked = <T>(work: () => Promise<T>): Promise<T> => {
    if (ending) return Promise.reject(closedError(''));
    const running = work();
    inFlight.add(running);
    return new Promise<T>((resolve, reject) => {
      failers.add(reject);
      const settled = () => {
        inFlight.delete(running);
        failers.delete(reject);
      };
      running.then(
        (value) => {
          settled();
          resolve(value);
        },
        (err: unknown) => {
          settled();
          reject(err);
        },
      );
    });
  };
  /**
   * The deadline timers of the statements in flight: a forced close clears them, so that a statement it
   * failed while it waited for a connection keeps no timer — and the process — alive until its deadline.
   */
  const deadlines = new Set<NodeJS.Timeout>();
  /**
   * The connections the terminations make (bounded by their own timeout): a close that gives up the
   * pool's half-made connections, or a forced close that destroys the pool's, leaves these be, or a
   * backend blocked on a lock would outlive it.
   */
  const terminators = new WeakSet<Pg.Client>();
  /**
   * The terminations of timed-out statements' backends, over one connection at a time (a close waits for
   * the one under way: left behind, it kept its connection, and the process, alive past the close — up to
   * its bound in a partition, where its handshake is never answered — and the backend it was for could
   * still be running when the caller was told the store was closed, test/close-in-partition.test.ts).
   * Each on a connection of its own, they piled up in a partition (test/backend-terminations.test.ts).
   */
  const terminations = new BackendTerminations(() => {
    const client = new TrackedClient({
      connectionString: driverUrl,
      application_name: 'rmapp',
      connectionTimeoutMillis: TERMINATE_TIMEOUT_MS,
    });
    terminators.add(client);
    return client;
  }, destroyConnection);
  /**
   * The statement each connection runs now (timed or not), and when it was sent (`performance.now()`):
   * what a forced close terminates on the server, and how old its backend is at least.
   */
  const running = new Map<Pg.Client, { text: string; sentAt: number }>();
  /**
   * Every statement, on a connection of its own from the pool, known in `running` while it runs so that
   * a forced close terminates its backend: one blocked on a lock, or busy, does not notice its client left
   * (a migration cut off by a stop went on waiting on the server and applied itself once the lock was
   * released, long after its process had exited). A connection pg already knows is dead — its backend
   * died just before the pool handed it out — fails the statement before anything is sent: it goes to
   * another one (pg-pool's own `query` never met this; a storm of terminated backends did,
   * test/driver-faults.test.ts). `using` is told the connection the statement runs on (undefined once it
   * is given back). With `abandoned` (a statement with a deadline), a connection being made for it that
   * another statement's deadline dropped as silent is made again, until its own deadline; once
   * `abandoned()` — the deadline passed while it waited for a connection — the connection it gets at last
   * goes back to the pool unused.
   */
  const onConnection = async (
    config: Pg.QueryConfig,
    hooks: { using?: (client: Pg.PoolClient | undefined) => void; abandoned?: () => boolean } = {},
  ): Promise<Pg.QueryResult> => {
    let unqueryable = 0;
    for (;;) {
      let client: Pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        if (hooks.abandoned && !hooks.abandoned() && (err as { code?: unknown } | null)?.code === SILENT_CONNECTION) continue;
        throw err;
      }
      if (hooks.abandoned?.()) {
        client.release();
        throw new Error('The statement was given up before a connection was free.');
      }
      hooks.using?.(client);
      running.set(client, { text: config.text, sentAt: performance.now() });
      try {
        const result = await client.query(config);
        running.delete(client);
        hooks.using?.(undefined);
        client.release();
        return result;
      } catch (err) {
        running.delete(client);
        hooks.using?.(undefined);
        client.release(err as Error);
        if (unqueryable++ < 2 && !hooks.abandoned?.() && NOT_QUERYABLE.test((err as Error | null)?.message ?? '')) continue;
        throw err;
      }
    }
  };
  /**
   * After a statement sent at `sentAt` got no answer within `timeout`: the pool's other connections that
   * cannot have answered since may have gone silent with it (a partition silences every open connection,
   * and every connection being made through it). Each would hold the next statement that gets it for a
   * whole deadline, one after the other, and a half-made one holds a pool slot until pg-pool's connect
   * timeout (30 s) — also after the partition healed. Dropped now, they are made anew, a few milliseconds
   * each: idle ones not answered since `sentAt`, and ones whose handshake has lasted half the deadline or
   * more (a handshake takes milliseconds; the one made for this very statement started just after it).
   */
  const dropSilent = (sentAt: number, timeout: number, except: Pg.Client | undefined): void => {
    const now = performance.now();
    for (const other of clients) {
      if (other === except || inUse.has(other)) continue;
      const answered = lastAnswered.get(other);
      const connecting = connectingSince.get(other);
      if ((answered !== undefined && answered < sentAt) || (connecting !== undefined && now - connecting >= timeout / 2))
        destroyConnection(other, silentConnection());
    }
  };
  /**
   * A statement with a deadline `timeout` ms from now, for all of it: the wait for a pooled connection
   * (a free slot, a new connection's handshake) and the answer. Past it the statement fails with
   * `QUERY_TIMEOUT`; the socket of the connection it runs on is destroyed (pg-pool then drops the
   * connection), its backend is terminated, so that every timed-out statement does not leave a backend
   * behind while the pool opens new ones, and the connections that went silent with it are dropped
   * (`dropSilent`). A statement given up while it waited for a connection gives that connection back
   * unused when it comes.
   *
   * A statement cut off this way was applied whole or not at all (one statement, or one script, is one
   * transaction), and its caller cannot tell which: an engine's commit is sent again as a write in doubt
   * (state_machine/committer.ts). pg's own `query_timeout` was used before: it starts only once a
   * connection is in hand.
   */
  const timedQuery = async (config: Pg.QueryConfig, timeout: number): Promise<Pg.QueryResult> => {
    const sentAt = performance.now();
    let expired = false;
    let on: Pg.PoolClient | undefined;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        deadlines.delete(timer as NodeJS.Timeout);
        expired = true;
        const client = on;
        if (client) {
          const pid = (client as unknown as { processID?: unknown }).processID;
          // Over a connection of the terminations' own: a pooled one may have gone silent (a partition
          // silences every open one) or have just been dropped (below).
          const sent = running.get(client);
          if (typeof pid === 'number' && sent) terminations.request(pid, sent.text, sent.sentAt);
          destroyConnection(client);
        }
        dropSilent(sentAt, timeout, client);
        reject(queryTimeout(description, timeout, client ? 'no answer' : 'no connection'));
      }, timeout);
      deadlines.add(timer);
    });
    const work = onConnection(config, { using: (c) => (on = c), abandoned: () => expired });
    try {
      return await Promise.race([work, deadline]);
    } finally {
      clearTimeout(timer);
      deadlines.delete(timer as NodeJS.Timeout);
    }
  };
  /** Runs `config` with a deadline of `ms` when it is a finite number (a Node timer holds at most 2^31-1 ms). */
  const run = (config: Pg.QueryConfig, ms: number | undefined): Promise<Pg.QueryResult> => {
    const timeout = ms !== undefined && Number.isFinite(ms) ? Math.min(2 ** 31 - 1, Math.max(1, Math.ceil(ms))) : null;
    return timeout !== null ? timedQuery(config, timeout) : onConnection(config);
  };
  const query = <T>(text: string, params: readonly unknown[] = [], options: QueryOptions = {}): Promise<T[]> =>
    tracked(async () => {
      // Parameterized statements are prepared once per connection: the commit CTE costs ~0.5 ms to plan.
      const named = params.length > 0 ? { text, values: params as unknown[], name: statementName(text) } : { text };
      try {
        // pg-pool throws synchronously when the connection string cannot be used (an SSL file gone since).
        return (await run(named, options.timeoutMs)).rows as T[];
      } catch (err) {
        if ((err as { code?: unknown }).code === 'QUERY_TIMEOUT') throw err;
        throw connectionError(err, url, source);
      }
    });
  const listener = new Listener(url, driverUrl);
  return {
    kind: 'postgres',
    description,
    query,
    script<T>(statements: readonly string[], options: QueryOptions = {}) {
      return tracked(async () => {
        // No parameters: one simple-protocol Query message. Several statements give one result each.
        let result: Pg.QueryResult | Pg.QueryResult[];
        try {
          result = (await run({ text: joinScript(statements) }, options.timeoutMs)) as unknown as Pg.QueryResult | Pg.QueryResult[];
        } catch (err) {
          if ((err as { code?: unknown }).code === 'QUERY_TIMEOUT') throw err;
          throw connectionError(err, url, source);
        }
        const results = Array.isArray(result) ? result : [result];
        return (results.filter((r) => r.fields.length > 0).at(-1)?.rows ?? []) as T[];
      });
    },
    // A listen once close() has begun would be dead: the listener is closing.
    listen: (channel, onPayload, options) => (ending ? Promise.reject(closedError('')) : listener.listen(channel, onPayload, options)),
    holdLock: (name, onLost) => (ending ? Promise.reject(closedError('')) : listener.holdLock(name, onLost)),
    close(options) {
      // A forced close may follow a close that waits (pool.end() may be called once): it fails what that
      // one waits for, and both resolve when the pool has ended.
      // A backend does not notice its client left: a statement blocked on a lock, or busy, would run to
      // its end and commit after its caller was told the store was closed (a worker's claim would lease
      // runs to a worker that is gone). Each one still running is terminated (over the terminations' connection).
      let terminated: Promise<unknown> = Promise.resolve();
      if (options?.force) {
        const err = closedError(' by force while this statement ran');
        const runningNow = [...running].flatMap(([client, { text, sentAt }]) => {
          const pid = (client as unknown as { processID?: unknown }).processID;
          return typeof pid === 'number' ? [{ pid, text, sentAt }] : [];
        });
        running.clear();
        for (const timer of deadlines) clearTimeout(timer);
        deadlines.clear();
        failForced(err);
        for (const fail of failers) fail(err);
        failers.clear();
        for (const client of clients) if (!terminators.has(client)) destroyConnection(client);
        listener.destroy();
        for (const { pid, text, sentAt } of runningNow) terminations.request(pid, text, sentAt);
        terminated = terminations.close({ force: true });
      }
      ending ??= (async () => {
        await Promise.race([Promise.allSettled([...inFlight]), forced.catch(() => {})]);
        await Promise.race([terminations.close(), forced.catch(() => {})]);
        await listener.close();
        // No statement waits for a connection now: a connection still being made is one a statement
        // given up at its deadline asked for, through a partition (its startup message, or the answer,
        // lost). pg-pool's end() waited for each until its connect timeout, 30 s after every statement
        // had failed (test/close-in-partition.test.ts). Given up after end() has begun, so that the
        // pool makes no new one for the next statement given up in its queue.
        const ended = pool.end();
        for (const client of connectingSince.keys())
          if (!terminators.has(client)) destroyConnection(client, closedError(' while this connection was being made'));
        await ended;
      })();
      // Forced: its connections are destroyed; a pool.end() that never resolves (a client pg-pool kept
      // after its connect threw) must not hold the stop.
      if (options?.force) {
        const done = Promise.all([ending, terminated]).then(() => {});
        return Promise.race([done, new Promise<void>((resolve) => setTimeout(resolve, 1_000).unref())]);
      }
      return ending;
    },
  };
}

/**
 * Planner settings of every connection (Postgres: startup options, {@link addPlannerOptions}; PGlite:
 * a `SET` once). No sequential scan where an index can serve: the hot statements are prepared (named,
 * and PL/pgSQL's inside `rmapp_commit_runs`), and Postgres keeps a prepared statement's generic plan
 * once it has planned it: a plan made while `rmapp_runs` was a page or two (a new database: a worker's
 * first minute, every benchmark) scans the table sequentially for the connection's life, until
 * autovacuum's ANALYZE invalidates it. Measured at concurrency 1 on a fresh database
 * (bench/cpu-per-workflow.ts, 1,000 workflows): 3,901 sequential scans of rmapp_runs reading 1.75 M
 * rows, Postgres CPU 4.83 ms per workflow; with the setting 8 scans (the migrations'), 3.63 ms. Every
 * query rmapp makes has an index path (bench/README.md, "scale": the EXPLAINs); a query with none still
 * runs, its sequential scan costed 10^10 higher — and with that cost Postgres up to 16 JIT-compiles
 * the query on every execution (~50–300 ms with LLVM inlining): migration 0011's trigger query on its
 * one-row table took 46 ms per inserted run, a 5,000-row insert 244 ms → 178 s. So JIT is off too;
 * rmapp's short queries never gain from it.
 */
const PLANNER_SETTINGS = ['enable_seqscan=off', 'jit=off'];

/**
 * Adds {@link PLANNER_SETTINGS} to a client's startup options, after the connection string's own
 * `options` (or `PGOPTIONS`), which they would otherwise replace: set as the backend starts, so no
 * statement of its own runs on a new connection. A `SET` sent from pg-pool's `onConnect` did, and a
 * backend terminated during it failed the statement waiting for the connection with an error carrying
 * no SQLSTATE (test/driver-faults.test.ts, the storm of terminations). Not by rewriting the URL: a
 * password with a lone "%" (`100%zz`, which pg takes as it is) makes pg-connection-string leave every
 * query value encoded, and the backend refused the options (`-c enable_seqscan%3Doff requires a value`).
 * pg reads the options from `connectionParameters` when it connects (pg 8, `Client.getStartupConf`);
 * test/database-errors.test.ts checks the settings reach the backend.
 */
function addPlannerOptions(client: Pg.Client): void {
  const params = (client as unknown as { connectionParameters?: { options?: string } }).connectionParameters;
  if (!params) return;
  const option = PLANNER_SETTINGS.map((setting) => `-c ${setting}`).join(' ');
  // Durability first, so that the connection string's own choice (an operator's, knowingly) comes after it and wins.
  params.options = [DURABILITY_SETTING, params.options, option].filter(Boolean).join(' ');
}

/**
 * Every commit is flushed to disk before Postgres answers it, whatever the server's default: with
 * `synchronous_commit = off` (a server, database or role setting made for throughput) a crash of
 * Postgres loses commits it had acknowledged — a signal answered `queued` was never applied, a run
 * whose `go` was lost waited for ever, a step's recorded start or result could vanish after its work.
 * `on` is the most durable value (with a synchronous standby it waits for the standby's flush too);
 * `options=-c synchronous_commit=…` in the connection string still chooses otherwise.
 */
const DURABILITY_SETTING = '-c synchronous_commit=on';

/** A stable name per statement text, so each connection prepares a statement once. */
const statementNames = new Map<string, string>();
function statementName(text: string): string {
  let name = statementNames.get(text);
  if (!name) {
    name = `rmapp_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    statementNames.set(text, name);
  }
  return name;
}

/**
 * How often the LISTEN connection is asked `select 1`, and how long it has to answer: a connection that
 * went silent (a partition that kept its socket open) delivers no notification and would answer no
 * UNLISTEN or goodbye until TCP gives up (~15 minutes), holding a stop that long. Unanswered, it is
 * dropped and made again. One statement every 10 s per listening process.
 */
const LISTEN_PING_MS = 10_000;
const LISTEN_ANSWER_MS = 5_000;

/**
 * Lost LISTEN connections whose backends are remembered per server (to terminate one that still holds a
 * lock), at most: each is forgotten once a statement finds it gone, so the bound is only against a link
 * that drops every connection before it says anything. The sixteen newest were kept before, gone or
 * not: a link that dropped sixteen connections in a row, each right after its LISTEN, pushed out the
 * backend still holding the worker's lock, which was then reported as another process under its id and
 * never taken back (test/h9-lock-retake-flapping.test.ts). All are terminated by one statement.
 */
const FORMER_BACKENDS = 1_000;

/**
 * The former LISTEN backends of this process, by connection string ({@link Listener}'s `formerBackends`),
 * in the process's global symbol registry so that every copy of the package loaded in it shares them.
 */
const formerListenBackends: Map<string, FormerBackend[]> = ((globalThis as Record<symbol, unknown>)[
  Symbol.for('rmapp.formerListenBackends')
] ??= new Map()) as Map<string, FormerBackend[]>;

/**
 * A LISTEN connection's backend, known by its process id and its start as the server recorded it
 * (backend-terminations.ts `backendStartSql`): the pair names that one backend, on that server, for good.
 */
interface FormerBackend {
  pid: number;
  started: string;
}

/** The class (first int4 key) of the session locks {@link Database.holdLock} takes: "rmwk". */
const LOCK_CLASS = 0x726d776b;

/**
 * SQL for the second keys of the {@link Database.holdLock} locks some connection to this database holds
 * now (Postgres lists a two-key advisory lock in `pg_locks` with its keys as `classid` and `objid`), to
 * compare with {@link sessionLockKeySql}. Read once per statement in a materialized CTE: `pg_locks`
 * reads the whole lock table each time it is evaluated.
 */
export function heldSessionLocksSql(): string {
  return `select k.objid from pg_locks k where k.locktype = 'advisory' and k.granted and k.objsubid = 2
    and k.database = (select oid from pg_database where datname = current_database()) and k.classid = ${LOCK_CLASS}::oid`;
}

/** The `objid` under which `pg_locks` lists the {@link Database.holdLock} lock named by SQL text expression `name` (hashtext, read as an unsigned oid). */
export function sessionLockKeySql(name: string): string {
  return `oid((hashtext(${name})::bigint + 4294967296) % 4294967296)`;
}

/** A lock of {@link Database.holdLock}: whether it is held, and its taking on each connection. */
interface HeldLock {
  name: string;
  onLost: (holder: LockHolder) => void;
  held: boolean;
  /**
   * Its first taking ({@link Listener.holdLock}) has answered: only then is it taken again on a new
   * connection. One made for that very taking would take it twice — a session lock is counted, and one
   * unlock left it held (test/worker-id-in-use.test.ts).
   */
  settled: boolean;
  taken: WeakMap<Pg.Client, Promise<boolean>>;
}

/**
 * LISTEN on one dedicated connection, reconnected with backoff when it is lost (a restart, a
 * terminated backend, a connection that stopped answering) and listening again on every channel.
 * Notifications sent while it is down are lost: once it is made again, the `onReconnect` of every
 * listener that was listening when it was lost runs, so that it looks for what it missed (a worker used
 * to wait for its next poll, `pollMs`).
 */
class Listener {
  private client: Pg.Client | null = null;
  private connecting: Promise<void> | null = null;
  /** The client of the connection being made, for a forced close. */
  private connectingClient: Pg.Client | null = null;
  private readonly channels = new Map<string, Set<(payload: string) => void>>();
  /**
   * The current connection's LISTEN per channel, sent or done: the first `listen` connects and listens
   * in one go, and a second `listen` of a channel whose LISTEN is in flight waits for that one.
   */
  private listening = new Map<string, Promise<unknown>>();
  private retryTimer: NodeJS.Timeout | null = null;
  private failures = 0;
  private closed = false;
  private pingTimer: NodeJS.Timeout | null = null;
  /**
   * Each listen's `onReconnect`, and whether its listen has succeeded: only a hook that was listening
   * when a connection was lost can have missed anything (one added while the connection was down, or
   * after every channel was given up, is not told when the next connection is made).
   */
  private readonly reconnectHooks = new Map<() => void, { listening: boolean }>();

  /** Each listen's {@link ListenOptions.timeoutMs}, while it listens (or is being sent). */
  private readonly deadlines = new Map<object, number>();

  /** The session locks taken on this connection ({@link Database.holdLock}), one per hold. */
  private readonly locks = new Set<HeldLock>();

  /** The backend of the connection in use: its process id and its start (backend-terminations.ts `backendStartSql`). */
  private backend: FormerBackend | null = null;

  /**
   * The backends of the last LISTEN connections to this server that this process lost or closed, newest
   * last: after a partition one may still hold the session locks (the server has not noticed its client
   * left), and is terminated when a lock is taken again ({@link retake}). Shared by every store of the
   * process on the same URL: a worker whose start was cut off after its locks were granted starts
   * again on a new store (engine.ts `startWorker` with `retry`), whose listener knew none of them, and
   * it took its own old backend for another live process under its id.
   */
  private get formerBackends(): FormerBackend[] {
    let list = formerListenBackends.get(this.driverUrl);
    if (!list) formerListenBackends.set(this.driverUrl, (list = []));
    return list;
  }

  /** Remembers the backend of the connection in use as a former one (it was lost, or is being closed). */
  private forgetBackend(): void {
    if (this.backend) {
      const list = this.formerBackends;
      list.push(this.backend);
      if (list.length > FORMER_BACKENDS) list.shift();
    }
    this.backend = null;
  }

  /** The last statement sent on each LISTEN connection: the next one waits for it. */
  private readonly asked = new WeakMap<Pg.Client, Promise<unknown>>();

  /** `url` as written, for messages; `driverUrl` as the driver is given it ({@link driverConnectionString}). */
  constructor(
    private readonly url: string,
    private readonly driverUrl: string = url,
  ) {}

  /**
   * A statement on the LISTEN connection, which must answer within {@link LISTEN_ANSWER_MS}; unanswered,
   * the connection is destroyed (and made again while someone listens). One at a time per connection:
   * listens of new channels at once, a hook that listens, the ping and an UNLISTEN would otherwise be
   * queued inside pg's client, which pg 8 deprecates (a warning on the operator's stderr) and pg 9
   * removes. A statement behind one that timed out finds its connection destroyed and fails at once.
   */
  private ask(client: Pg.Client, text: string): Promise<Pg.QueryResult> {
    // The chain itself never rejects: each caller sees the failure of its own statement.
    const next = (this.asked.get(client) ?? Promise.resolve()).then(() => this.askNow(client, text));
    this.asked.set(
      client,
      next.catch(() => {}),
    );
    return next;
  }

  /**
   * The bound of a making of the connection, of each of its statements and of the backoff between two
   * makings: the shortest {@link ListenOptions.timeoutMs} of the listens, or `fallback`.
   */
  private bound(fallback: number): number {
    return Math.min(fallback, ...this.deadlines.values());
  }

  private async askNow(client: Pg.Client, text: string): Promise<Pg.QueryResult> {
    try {
      return await client.query({ text, query_timeout: this.bound(LISTEN_ANSWER_MS) } as unknown as Pg.QueryConfig);
    } catch (err) {
      if ((err as Error | null)?.message === 'Query read timeout') destroyConnection(client);
      throw err;
    }
  }

  async listen(channel: string, onPayload: (payload: string) => void, options: ListenOptions = {}): Promise<() => Promise<void>> {
    checkChannel(channel);
    let set = this.channels.get(channel);
    if (!set) this.channels.set(channel, (set = new Set()));
    set.add(onPayload);
    // A fresh function per listen: the same callback given twice is removed once per unlisten.
    const { onReconnect } = options;
    const hook = onReconnect && (() => onReconnect());
    const state = { listening: false };
    if (hook) this.reconnectHooks.set(hook, state);
    const deadline = {};
    const timeoutMs = options.timeoutMs;
    if (timeoutMs !== undefined && Number.isFinite(timeoutMs)) this.deadlines.set(deadline, Math.max(1, Math.ceil(timeoutMs)));
    try {
      await this.connect();
      // The connection made above listened on every channel already (a LISTEN sent twice cost a start-up a round trip).
      const { client, listening } = this;
      if (client) {
        let sent = listening.get(channel);
        if (!sent) {
          const query = this.ask(client, `LISTEN ${pg.escapeIdentifier(channel)}`);
          listening.set(channel, (sent = query));
          query.catch(() => listening.get(channel) === query && listening.delete(channel));
        }
        await sent;
      }
      state.listening = true;
    } catch (err) {
      set.delete(onPayload);
      if (hook) this.reconnectHooks.delete(hook);
      this.deadlines.delete(deadline);
      if (set.size === 0) this.channels.delete(channel);
      // A close ended the connection under it: pg's "Connection terminated" or "not queryable" says less.
      throw this.closed ? databaseClosed(redactUrl(this.url), ' while this listen was sent') : err;
    }
    return async () => {
      set.delete(onPayload);
      if (hook) this.reconnectHooks.delete(hook);
      this.deadlines.delete(deadline);
      if (set.size > 0 || this.channels.get(channel) !== set) return;
      this.channels.delete(channel);
      this.listening.delete(channel);
      if (this.client) await this.ask(this.client, `UNLISTEN ${pg.escapeIdentifier(channel)}`).catch(() => {});
    };
  }

  /** See {@link Database.holdLock}: on this connection, as the LISTENs are. */
  async holdLock(name: string, onLost: (holder: LockHolder) => void): Promise<{ held: boolean; release(): Promise<void> }> {
    // Held already through this store (another engine of this process): Postgres would grant it again
    // to the same connection, so it is refused here — a second holder is what the lock is there to see.
    if ([...this.locks].some((l) => l.name === name)) return { held: false, release: async () => {} };
    const lock: HeldLock = { name, onLost, held: false, settled: false, taken: new WeakMap() };
    this.locks.add(lock);
    const release = async () => {
      if (!this.locks.delete(lock)) return;
      const client = this.client;
      if (client && lock.held)
        await this.ask(client, `select pg_advisory_unlock(${LOCK_CLASS}, hashtext(${pg.escapeLiteral(name)}))`).catch(() => {});
    };
    try {
      await this.connect();
      const client = this.client;
      if (!client) throw databaseClosed(redactUrl(this.url), ' while this lock was taken');
      lock.held = await this.take(client, lock);
      // Refused by a backend of this listener's that a partition left behind (a worker's start that was
      // cut off after its lock was granted, and is tried again): terminated, and the lock tried again —
      // a few times, as it exits in milliseconds; held by another connection, it stays refused.
      for (let tries = 0; !lock.held && tries < 5 && this.client === client && this.locks.has(lock); tries++) {
        const { held, holder } = await this.tryTake(client, lock);
        if (held) lock.held = true;
        else if (holder && !(await this.terminateIfFormer(client, holder.pid))) break;
        else await sleep(50 * 2 ** tries, undefined, { ref: false });
      }
      if (lock.held) lock.taken.set(client, Promise.resolve(true));
      lock.settled = true;
      return { held: lock.held, release };
    } catch (err) {
      this.locks.delete(lock);
      throw err;
    }
  }

  /** Takes `lock` on `client`, once per connection. */
  private take(client: Pg.Client, lock: HeldLock): Promise<boolean> {
    let taken = lock.taken.get(client);
    if (!taken) {
      // Two int4 keys: a key space apart from the bigint keys of the migrations and admissions.
      taken = this.ask(client, `select pg_try_advisory_lock(${LOCK_CLASS}, hashtext(${pg.escapeLiteral(lock.name)})) as held`).then(
        (r) => (r.rows[0] as { held?: unknown } | undefined)?.held === true,
      );
      lock.taken.set(client, taken);
    }
    return taken;
  }

  /**
   * Takes `lock` again on `client`, a new connection made after the one it was held on was lost, until it
   * holds it, `client` is lost too (the next connection takes it again), the lock is released or the
   * store closes. Taken once, a refusal used to be final: after a partition the old connection's backend
   * still held the lock — the server does not know its client is gone until TCP keepalive tells it,
   * minutes later — so the lock was lost for the rest of the process (and its holder's liveness with
   * it: claims.ts reads the owner's lock), and a worker reported another process under its id that
   * did not exist. Now each refusal looks at the holder (one statement with the try): one of this
   * listener's former backends is terminated (known by its id and its start, never another backend
   * under the same id: backend-terminations.ts `staleBackendsTerminationSql`) and the lock tried again; another connection is reported once through `onLost`
   * (when the lock was held before), and the lock is still tried again, so that this store holds it
   * again once that connection lets go. Between tries: 100 ms doubling, at most the listens' bound.
   */
  private async retake(client: Pg.Client, lock: HeldLock, wasHeld: boolean): Promise<void> {
    let reported = false;
    for (let tries = 0; this.client === client && this.locks.has(lock) && !this.closed; tries++) {
      try {
        const { held, holder } = await this.tryTake(client, lock);
        if (held) {
          lock.taken.set(client, Promise.resolve(true));
          // Released meanwhile (the lock was taken by the statement): given back at once.
          if (!this.locks.has(lock) || this.client !== client) {
            await this.ask(client, `select pg_advisory_unlock(${LOCK_CLASS}, hashtext(${pg.escapeLiteral(lock.name)}))`).catch(() => {});
            return;
          }
          lock.held = true;
          return;
        }
        lock.held = false;
        if (holder && !(await this.terminateIfFormer(client, holder.pid)) && wasHeld && !reported) {
          if (this.locks.has(lock) && !this.closed) {
            reported = true;
            lock.onLost(holder);
          }
        }
      } catch {
        // The connection failed: its loss makes the next one, which takes the lock again.
      }
      await sleep(Math.min(this.bound(5_000), 100 * 2 ** Math.min(tries, 6)), undefined, { ref: false });
    }
  }

  /**
   * Tries `lock` on `client` once, fresh (not the taking cached per connection): held, or refused with
   * the connection holding it (null when none is listed: it was released in between).
   */
  private async tryTake(client: Pg.Client, lock: HeldLock): Promise<{ held: boolean; holder: LockHolder | null }> {
    const name = pg.escapeLiteral(lock.name);
    const { rows } = await this.ask(
      client,
      `select t.held, h.pid, h.application_name, h.client_addr
         from (select pg_try_advisory_lock(${LOCK_CLASS}, hashtext(${name})) as held) t
         left join lateral (
           select l.pid, a.application_name, host(a.client_addr) as client_addr
             from pg_locks l left join pg_stat_activity a on a.pid = l.pid
            where not t.held and l.locktype = 'advisory' and l.granted and l.objsubid = 2
              and l.classid = ${LOCK_CLASS}::oid and l.objid = ${sessionLockKeySql(name)}
              and l.database = (select oid from pg_database where datname = current_database())
              and l.pid <> pg_backend_pid()
            limit 1) h on true`,
    );
    const row = rows[0] as { held?: unknown; pid?: unknown; application_name?: unknown; client_addr?: unknown } | undefined;
    if (row?.held === true) return { held: true, holder: null };
    if (typeof row?.pid !== 'number') return { held: false, holder: null };
    return {
      held: false,
      holder: {
        pid: row.pid,
        applicationName: typeof row.application_name === 'string' ? row.application_name : null,
        clientAddr: typeof row.client_addr === 'string' ? row.client_addr : null,
      },
    };
  }

  /** Terminates backend `pid` if it is one of this listener's former ones; true if it is (whether or not it was still there). */
  private async terminateIfFormer(client: Pg.Client, pid: number): Promise<boolean> {
    // An entry of another copy of the package in this process, of another shape, is not known well enough to terminate.
    const former = this.formerBackends.find((b) => b.pid === pid && typeof b.started === 'string');
    if (!former) return false;
    await this.terminateFormers(client, [former]);
    return true;
  }

  /**
   * Terminates `formers`, those of this process's former backends still there, in one statement; those
   * found gone are forgotten (an id and start name one backend for good: gone, it holds nothing).
   */
  private async terminateFormers(client: Pg.Client, formers: FormerBackend[]): Promise<void> {
    if (formers.length === 0) return;
    const { rows } = await this.ask(client, staleBackendsTerminationSql(formers));
    const gone = new Set(
      (rows as { pid?: unknown; started?: unknown; present?: unknown }[])
        .filter((r) => r.present === false)
        .map((r) => `${r.pid}/${r.started}`),
    );
    const list = this.formerBackends;
    for (let i = list.length - 1; i >= 0; i--) if (gone.has(`${list[i]?.pid}/${list[i]?.started}`)) list.splice(i, 1);
  }

  private connect(): Promise<void> {
    if (this.client) return Promise.resolve();
    // A listen after close() would open a connection nothing closes.
    if (this.closed) return Promise.reject(databaseClosed(redactUrl(this.url)));
    this.connecting ??= (async () => {
      const client = new pg.Client({
        connectionString: this.driverUrl,
        application_name: 'rmapp',
        connectionTimeoutMillis: this.bound(CONNECT_TIMEOUT_MS),
      });
      this.connectingClient = client;
      const lost = () => this.lost(client);
      client.on('error', lost);
      client.on('end', lost);
      client.on('notification', (m) => {
        for (const fn of this.channels.get(m.channel) ?? []) fn(m.payload ?? '');
      });
      const listening = new Map<string, Promise<unknown>>();
      let started: unknown = null;
      try {
        await client.connect();
        // What names this backend for a termination after it is lost (one statement, once per connection).
        // Before the LISTENs, so that a connection's last statement is its LISTEN, as an operator reading
        // pg_stat_activity (and test/ownership-faults.test.ts) looks for a worker listening by.
        started = ((await this.ask(client, backendStartSql())).rows[0] as { started?: unknown } | undefined)?.started ?? null;
        for (const channel of this.channels.keys()) {
          await this.ask(client, `LISTEN ${pg.escapeIdentifier(channel)}`);
          listening.set(channel, Promise.resolve());
        }
      } catch (err) {
        client.removeAllListeners();
        client.on('error', () => {});
        await client.end().catch(() => {});
        throw err;
      }
      this.client = client;
      this.listening = listening;
      this.failures = 0;
      const pid = (client as unknown as { processID?: unknown }).processID;
      this.backend = typeof pid === 'number' && typeof started === 'string' ? { pid, started } : null;
      // This process's former LISTEN backends, terminated first (a session lock none asks for again — the
      // owner of a start that was cut off and tried again under a new one — would linger with one until
      // the server's keepalive); then the locks held on the connection that was lost, taken again (see
      // retake). One statement at a time on this connection, in this order. Kept in the list: a backend
      // exits a moment after it is signalled, and a lock it still holds then is known as this process's;
      // forgotten once a statement finds it gone.
      const formers = this.formerBackends.filter((b) => b.pid !== this.backend?.pid && typeof b.started === 'string');
      void this.terminateFormers(client, formers).catch(() => {});
      for (const lock of this.locks) if (lock.settled) void this.retake(client, lock, lock.held);
      for (const [hook, state] of this.reconnectHooks) {
        if (!state.listening) continue;
        // Once the connection is in place, each hook still registered when its turn comes (a hook may
        // stop another listen); a hook's failure, thrown or rejected, must not reach the others or the process.
        void Promise.resolve()
          .then(() => (this.reconnectHooks.has(hook) && !this.closed ? hook() : undefined))
          .catch(() => {});
      }
      let asking = false;
      this.pingTimer = setInterval(() => {
        if (asking || this.client !== client) return;
        asking = true;
        this.ask(client, 'select 1')
          .catch(() => {})
          .finally(() => (asking = false));
      }, LISTEN_PING_MS);
      this.pingTimer.unref();
    })().finally(() => {
      this.connecting = null;
      this.connectingClient = null;
    });
    return this.connecting;
  }

  private lost(client: Pg.Client): void {
    if (this.client !== client) return;
    this.client = null;
    this.forgetBackend();
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
    client.removeAllListeners();
    client.on('error', () => {});
    void client.end().catch(() => {});
    this.retry();
  }

  private retry(): void {
    if (this.closed || this.retryTimer || this.channels.size === 0) return;
    const delay = Math.min(this.bound(5_000), 100 * 2 ** Math.min(this.failures, 6));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect().catch(() => {
        this.failures += 1;
        this.retry();
      });
    }, delay);
    this.retryTimer.unref();
  }

  /** Destroys the connection's socket, made or being made: a close waiting for it goes on. */
  destroy(): void {
    const client = this.client ?? this.connectingClient;
    if (client) destroyConnection(client);
  }

  async close(): Promise<void> {
    this.closed = true;
    // Its goodbye may never reach the server (a partition): its backend may linger, holding the locks.
    this.forgetBackend();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const client = this.client ?? this.connectingClient;
    // A connection being made is given up, not waited for: to a server that stopped answering it takes
    // its whole connect timeout (30 s).
    if (this.connectingClient) destroyConnection(this.connectingClient);
    await this.connecting?.catch(() => {});
    // After the connection being made is done: it arms its own.
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
    this.client = null;
    if (client) {
      client.removeAllListeners();
      client.on('error', () => {});
      // A server that stopped answering never says goodbye: the socket is destroyed after a while.
      let timer: NodeJS.Timeout | undefined;
      const gaveUp = new Promise<void>((resolve) => (timer = setTimeout(resolve, LISTEN_ANSWER_MS)));
      await Promise.race([client.end().catch(() => {}), gaveUp]);
      clearTimeout(timer);
      destroyConnection(client);
    }
  }
}

/**
 * Destroys a pg connection's socket now. `Client.end()` does this itself only when a statement is in
 * flight; an idle connection to a server that stopped answering would wait for its goodbye for ever.
 * Statements in flight fail ("Connection terminated", or `reason`), and the pool drops the client; a
 * connection still being made fails its connect with `reason`.
 */
function destroyConnection(client: Pg.Client, reason?: Error): void {
  (client as unknown as { connection?: { stream?: { destroy(err?: Error): void } } }).connection?.stream?.destroy(reason);
}

/** The code of the error a connection dropped as silent ({@link openPostgres}'s `dropSilent`) fails with. */
const SILENT_CONNECTION = 'SILENT_CONNECTION';

function silentConnection(): Error {
  return Object.assign(new Error('The connection was dropped: it went silent with a statement that timed out.'), {
    code: SILENT_CONNECTION,
  });
}

/**
 * initdb's output (a tarball of a new data directory, ~40 MB), taken from the first in-memory store this
 * process opens before any statement reaches it: every later in-memory store starts from it in ~0.6 s
 * instead of running initdb again (2.2–4 s on the 2-core machine). Tests open one per test (the testing
 * kit, `openDatabase({ dataDir: 'memory://' })`); the first open pays ~0.2 s more for the copy.
 */
let memoryTemplate: Blob | null = null;

/**
 * Postgres's settings for an embedded store: 16 MB of shared buffers instead of initdb's 128 MB, which
 * Postgres zeroes at every start. PGlite's files are in this process's memory (`memory://`) or in the
 * operating system's file cache, so a larger cache mostly holds a second copy. Measured 2026-12-06
 * (scratch scripts, alternating): an open of an in-memory store from {@link memoryTemplate} 1,320 ms
 * of CPU with 128 MB and 881 ms with 16 MB (tests open one per test); `rmapp runs list` on an on-disk
 * store 2.5 → 2.1 s of CPU and 365 → 240 MB RSS; a worker on an on-disk store, 1,500 six-step
 * workflows at concurrency 20, 241–270 wf/s with 128 MB and 211–314 with 16 MB (noise; RSS 60 MB less).
 */
function embeddedStartParams(PGlite: typeof import('@electric-sql/pglite').PGlite): string[] {
  return [...PGlite.defaultStartParams, '-c', 'shared_buffers=16MB'];
}

/** A new in-memory PGlite instance, ready: from {@link memoryTemplate}, or by initdb (and the copy taken). */
async function openMemoryPglite(PGlite: typeof import('@electric-sql/pglite').PGlite, dataDir: string): Promise<PGlite> {
  const template = memoryTemplate;
  const startParams = embeddedStartParams(PGlite);
  if (template) {
    const pg = new PGlite({ dataDir, loadDataDir: template, startParams });
    try {
      await pg.waitReady;
      return pg;
    } catch {
      // A copy that does not start is dropped: this store and the next run initdb.
      if (memoryTemplate === template) memoryTemplate = null;
      void pg.close().catch(() => {});
    }
  }
  const pg = new PGlite({ dataDir, startParams });
  await pg.waitReady;
  // A copy failing costs only the speed-up: the next in-memory store runs initdb and tries again.
  memoryTemplate ??= await pg.dumpDataDir('none').catch(() => null);
  return pg;
}

/** The first file or directory under `dir` this process cannot write (a bounded walk), or null. */
function firstUnwritable(dir: string, budget = { entries: 20_000 }): string | null {
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    return dir;
  }
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return null;
  }
  for (const e of entries) {
    if (--budget.entries < 0) return null;
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      const found = firstUnwritable(path, budget);
      if (found) return found;
    } else if (e.isFile()) {
      try {
        accessSync(path, constants.W_OK);
      } catch {
        return path;
      }
    }
  }
  return null;
}

/** What PGlite threw, readable: it may throw an object that is not an Error. */
function describeFailure(err: unknown): string {
  if (err instanceof Error) return err.message;
  try {
    return typeof err === 'object' && err !== null ? JSON.stringify(err) : String(err);
  } catch {
    return String(err);
  }
}

async function openPglite(dataDir: string, existingOnly: boolean): Promise<Database> {
  // Loaded only for the embedded store: a worker on Postgres saves ~74 ms of CPU and 5 MB at start-up.
  const { PGlite } = await import('@electric-sql/pglite');
  let pg: PGlite;
  let unlock = () => {};
  if (dataDir.startsWith('memory://')) {
    pg = await openMemoryPglite(PGlite, dataDir);
  } else {
    // Before anything is written there, the lock included: a directory of the user's files is left as it was.
    checkStoreDirectory(resolve(dataDir), existingOnly);
    try {
      mkdirSync(resolve(dataDir), { recursive: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' || code === 'ENOTDIR') throw fileInTheWay(resolve(dataDir), err);
      const why = code === 'EACCES' ? 'no permission' : (err as Error).message;
      const message = `The embedded database's directory ${resolve(dataDir)} cannot be created (${why}): set dataDir (RMAPP_DATA_DIR for the CLI) to a directory this process may write.`;
      // No permission, or a read-only file system, is the set-up's (not retried); another failure may pass.
      if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') throw configError(message, err);
      throw new Error(message, { cause: err });
    }
    // The real path: one directory reached through a symlink is still one store (one lock).
    const dir = realpathSync(resolve(dataDir));
    try {
      accessSync(dir, constants.W_OK);
    } catch (err) {
      // PGlite's failure then read as a damaged store, and advised restoring a backup.
      throw configError(
        `The embedded database's directory ${dir} is not writable by this process (${(err as NodeJS.ErrnoException).code}): give it write access (chown or chmod), or set dataDir (RMAPP_DATA_DIR for the CLI) to a directory it may write.`,
        err,
      );
    }
    unlock = await lockDataDir(dir);
    pg = new PGlite({ dataDir: dir, startParams: embeddedStartParams(PGlite) });
  }
  try {
    await pg.waitReady;
    await pg.exec(PLANNER_SETTINGS.map((setting) => `set ${setting.replace('=', ' = ')};`).join(' '));
  } catch (err) {
    unlock();
    if (dataDir.startsWith('memory://')) throw err;
    // A file inside the store this process cannot write (another user opened it once, as root say):
    // PGlite aborts, and "may be damaged, restore it from a backup" was advice that loses data.
    const unwritable = firstUnwritable(resolve(dataDir));
    if (unwritable) {
      throw configError(
        `The embedded database in ${resolve(dataDir)} could not be opened: ${unwritable} is not writable by this process (another user may have opened the store). Give this user the whole directory (chown -R), or run rmapp as its owner.`,
        err,
      );
    }
    const free = lowDiskSpace(resolve(dataDir));
    if (free !== null) {
      throw configError(
        `The embedded database in ${resolve(dataDir)} could not be opened (${describeFailure(err)}), and the disk it is on has only ${free} free: free space there (or give the volume more) and start again before anything else — a store that ran out of space is left intact. If it still fails with space free, it may be damaged: restore it from a backup, or set dataDir (RMAPP_DATA_DIR for the CLI) to a new directory.`,
        err,
      );
    }
    // PGlite's own "PGlite failed to initialize properly" names neither the directory nor what to do. Not
    // retried (`DATABASE_CONFIG`): a store PGlite cannot start from (a PG_VERSION of another Postgres, one
    // damaged) stays so, and `rmapp worker` loaded PGlite again every few seconds for ever (an outside tester).
    throw configError(
      `The embedded database in ${resolve(dataDir)} could not be opened (${describeFailure(err)}): it may be damaged, or not a PGlite data directory. Restore it from a backup, or set dataDir (RMAPP_DATA_DIR for the CLI) to a new directory.`,
      err,
    );
  }
  let closing: Promise<void> | undefined;
  const description = `pglite:${dataDir}`;
  // PGlite answers a statement sent during or after its close with a TypeError from its internals.
  const open = () => {
    if (closing) throw databaseClosed(description);
  };
  return {
    kind: 'pglite',
    description,
    ...(dataDir.startsWith('memory://') ? {} : { soleHolder: true }),
    async query<T>(text: string, params: readonly unknown[] = []): Promise<T[]> {
      open();
      return (await pg.query<T>(text, params as unknown[])).rows;
    },
    async script<T>(statements: readonly string[]) {
      open();
      const results = await pg.exec(joinScript(statements));
      return (results.filter((r) => r.fields.length > 0).at(-1)?.rows ?? []) as T[];
    },
    async listen(channel, onPayload) {
      checkChannel(channel);
      open();
      const unsub = await pg.listen(channel, onPayload);
      return () => unsub();
    },
    close: () => {
      closing ??= (async () => {
        try {
          await pg.close();
        } finally {
          unlock();
        }
      })();
      return closing;
    },
  };
}

/** Joins statements into one simple-protocol message. */
function joinScript(statements: readonly string[]): string {
  return statements
    .map((s) => s.trim().replace(/;+$/, ''))
    .filter(Boolean)
    .join(';\n');
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
