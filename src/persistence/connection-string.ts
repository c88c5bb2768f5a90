/**
 * A Postgres connection string read as node-postgres reads it: its password masked for messages, its
 * mistakes found before the first connect (a password cut short by an unencoded "/", a query left
 * percent-encoded, an unknown `sslmode`), and a driver's failure to use it given the fix.
 */
import { MASK } from './mask-marker.ts';

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
export function connectionError(err: unknown, url: string, source: string): unknown {
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
export function setUpProblem(err: unknown, url: string, source: string): Error | null {
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
export function userinfoCutShort(url: string): boolean {
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
export function queryLeftEncoded(url: string): boolean {
  if (!/%(?![0-9a-fA-F]{2})/.test(url)) return false;
  const q = url.indexOf('?');
  return q >= 0 && /%[0-9a-fA-F]{2}|\+/.test(url.slice(q + 1).split('#')[0] ?? '');
}

/** The `sslmode` values node-postgres's connection strings take (pg-connection-string). */
export const SSL_MODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify'];

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
export function sslFileParams(url: string): URLSearchParams {
  const q = url.indexOf('?');
  return new URLSearchParams(q < 0 ? '' : url.slice(q + 1).split('#')[0]);
}
