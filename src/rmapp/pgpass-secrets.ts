/**
 * The passwords of a Postgres password file (`PGPASSFILE`, else `~/.pgpass`; on Windows
 * `%APPDATA%\postgresql\pgpass.conf`), which libpq and node-postgres read when the connection string
 * and `PGPASSWORD` give none: the service's database password may be there and nowhere else the
 * masker looked, so a driver error or a test's output quoting it reached a log or a comment in clear.
 * Read as secrets of the service's own (config.ts `secretsOf`, service-secret-sources.ts
 * `serviceSecretSources`).
 */
import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * The file libpq reads: `PGPASSFILE`, else `.pgpass` in the home directory (`HOME`, else the account's),
 * or `%APPDATA%\postgresql\pgpass.conf` on Windows.
 */
export function pgpassPath(env: NodeJS.ProcessEnv, platform: NodeJS.Platform = process.platform): string | undefined {
  if (env.PGPASSFILE) return env.PGPASSFILE;
  if (platform === 'win32') return env.APPDATA ? join(env.APPDATA, 'postgresql', 'pgpass.conf') : undefined;
  const home = env.HOME || homedir();
  return home ? join(home, '.pgpass') : undefined;
}

/** Larger than this, a password file is not read (a real one holds a few lines). */
const MAX_PGPASS_BYTES = 1024 * 1024;

/** `field` with libpq's escapes undone (`\:` → `:`, `\\` → `\`, a `\` before any other character dropped). */
const unescape = (field: string): string => field.replace(/\\(.)/gs, '$1');

/**
 * The fields of a password file's line as libpq reads it: `host:port:database:user:password`, a `\`
 * escaping the next character (`\:`, `\\`), a `*` a wildcard (kept as written), the password running to
 * its first unescaped `:` (the rest ignored). A comment (`#` first on the line), a blank line, or one of
 * fewer than five fields gives null. `written`: the password as the file holds it, escapes and all.
 */
export function parsePgpassLine(
  line: string,
): { host: string; port: string; database: string; user: string; password: string; written: string } | null {
  const text = line.replace(/\r$/, '');
  if (text === '' || text.startsWith('#')) return null;
  const fields: string[] = [];
  let field = '';
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i] as string;
    if (c === '\\' && i + 1 < text.length) {
      field += c + (text[i + 1] as string);
      i += 1;
    } else if (c === ':') {
      fields.push(field);
      field = '';
      if (fields.length === 5) break;
    } else field += c;
  }
  if (fields.length < 5) fields.push(field);
  if (fields.length < 5) return null;
  const [host, port, database, user, password] = fields.map(unescape) as [string, string, string, string, string];
  return { host, port, database, user, password, written: fields[4] as string };
}

/**
 * The password of a password file's line as node-postgres reads it — the driver the service connects
 * with (persistence/pg-driver.ts), through the `pgpass` package: the rest of the line after its fourth
 * `:` not preceded by a `\`, colons and all, with only `\:` and `\\` unescaped. libpq's field
 * ({@link parsePgpassLine}) ends at the next `:`: a password holding an unescaped colon
 * (`db:5432:app:app:abc:Xy7#kLm9`) gave the masker `abc` (under 6 characters: nothing) while the
 * service logged in with `abc:Xy7#kLm9`. Null for a line of fewer than five fields or a comment.
 */
export function driverPgpassPassword(line: string): string | null {
  const text = line.replace(/\r$/, '');
  if (text.startsWith('#')) return null;
  let colons = 0;
  for (let i = 1; i < text.length; i += 1) {
    if (text[i] !== ':' || text[i - 1] === '\\') continue;
    colons += 1;
    if (colons === 4) return text.slice(i + 1).replace(/\\([:\\])/g, '$1') || null;
  }
  return null;
}

/**
 * Every password in the password file `env` names, for the masker: of every line, not only the line
 * the service's connection would match (the file's other passwords are secrets of the same operator), a
 * password that is its line's own user excepted (`*:*:*:postgres:postgres`, as secret-variables.ts
 * `pgPassword` leaves out a `PGPASSWORD` that is its user). A missing or unreadable file, one that is no
 * regular file (libpq reads no other) or one over a MiB gives none;
 * libpq ignores a file others may read (not `0600`), but the passwords in it are masked all the same:
 * masking costs nothing, and the file may be fixed while the service runs.
 *
 * @example
 * pgpassSecrets({ PGPASSFILE: '/run/secrets/pgpass' }); // ['s3cr3t:pw', …]
 */
export function pgpassSecrets(env: NodeJS.ProcessEnv = process.env): string[] {
  const path = pgpassPath(env);
  if (!path) return [];
  let text: string;
  try {
    // A regular file only, as libpq reads it: `PGPASSFILE=/dev/zero` or a FIFO would never end.
    const stat = statSync(path);
    if (!stat.isFile() || stat.size > MAX_PGPASS_BYTES) return [];
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const entry = parsePgpassLine(line);
    // As node-postgres reads it too, which the service connects with: to the end of the line.
    const driver = driverPgpassPassword(line);
    if (driver && entry && driver !== entry.user) out.add(driver);
    if (!entry?.password || entry.password === entry.user) continue;
    out.add(entry.password);
    // As written in the file too (`p\:ss`), should the file itself be quoted.
    out.add(entry.written);
  }
  return [...out];
}
