/**
 * The secrets in the variables the sandbox is given (`sandbox.env`, `agent.env`): which names say
 * their value is one ({@link isSecretName}), and the credentials any value carries in a URL
 * ({@link urlCredentials}) — `MIRROR=https://<token>@mirror.example.com` or
 * `TEST_DB_URL=postgres://app:<password>@db/test` under a name that says nothing. The masker
 * (masking.ts) masks what {@link variableSecrets} gives by value, in every form it knows (base64, hex,
 * URL-encoded, wrapped): its URL pattern alone caught only `user:password@` written as a URL, never the
 * password a test printed on its own, a base64'd environment, or a token standing alone before `@`.
 * Kept out of config.ts so that the CLI's masker (cli/main.ts) can use it without loading the
 * configuration's schema.
 */
import { connectionStringSecrets, decodeOrKeep, isAddressScheme, SCHEMELESS_CREDENTIAL, SECRET_QUERY_PARAMETERS } from './masking.ts';

/** Parts of a variable's name that say it holds a secret, anywhere in a part (`ANTHROPIC_API_KEY`, `NPM_TOKEN`, `AWS_SECRET_ACCESS_KEY`, `PGPASSWORD`). */
const SECRET_WORD = /token|secret|passw|key|auth(?!ors?$|ority)|credential|cookie|session/;

/**
 * Short words of common names, as a whole part: `DB_PASS`, `SMTP_PWD`, `ADMIN_PW`, `GH_PAT`, `SENTRY_DSN`
 * (a URL whose user part is the key), `GPG_PASSPHRASE`, `GCP_CREDS`, `SSH_PRIVATE`, `ANDROID_SIGNING`,
 * `CLIENT_CERT` — a test that printed one had it quoted unmasked in the run's failure comment.
 */
const SECRET_PARTS = new Set(['pass', 'pwd', 'pw', 'pat', 'dsn', 'passphrase', 'passcode', 'creds', 'cred', 'private', 'signing', 'cert']);

/**
 * Last parts of names whose value is where a secret is, not the secret (`SSH_AUTH_SOCK`, `KEY_FILE`,
 * `POSTGRES_PASSWORD_FILE`, `SSL_CERT_DIR`): a path masked everywhere, and refusing every commit that
 * names it (a compose file's `/run/secrets/…`), broke a normal setup.
 */
const LOCATION_PARTS = new Set(['file', 'path', 'dir', 'sock', 'socket']);

/**
 * Whether a variable's name says it holds a secret. Its parts are split at `_`, `-`, `.` and a
 * camelCase hump (`dbPass`); `PWD` alone is the working directory, `PATH` and `PASSIVE_MODE` hold no
 * secret word, and `auth` in `GIT_AUTHOR_NAME` or `XAUTHORITY` is no part of one (in `HTTP_AUTHORIZATION` it is).
 *
 * @example
 * isSecretName('DB_PASS'); // true
 * isSecretName('SSH_AUTH_SOCK'); // false: where a secret is, not the secret
 */
export function isSecretName(name: string): boolean {
  const parts = name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
  if (parts.length === 1 && parts[0] === 'pwd') return false;
  if (LOCATION_PARTS.has(parts[parts.length - 1] ?? '')) return false;
  return parts.some((p) => SECRET_PARTS.has(p) || SECRET_WORD.test(p));
}

/** Where a URL starts: its scheme and `//` (bounded: linear on long text). */
const URL_START = /[a-z][a-z0-9+.-]{0,30}:\/\//gi;

/**
 * A URL's user part that is a login, not a key: lower-case letters (and `.`, `_`, `-`), at most 32 —
 * `git@`, `postgres@`, `guest:…@`. Anything else before the `@`, with a password after it or not, is
 * taken as a token: `https://ghp_…@github.com`, a Sentry DSN's 32 hex digits, GitHub's
 * `https://<token>:x-oauth-basic@github.com` (where the password is a constant), and a key of letters
 * only in mixed case (about one random 20-character key in 34 has no digit). Masking a login everywhere
 * (every "postgres" in every log line) would hide what an operator reads; a user with digits or
 * capitals is masked, which costs little.
 */
const LOGIN = /^[a-z][a-z._-]{0,31}$/;

/**
 * The credentials in the URLs of `text`: each password (as written and decoded, and a `password` or
 * `sslpassword` parameter: {@link connectionStringSecrets}), each user part that is not a login
 * ({@link LOGIN}), and the value of each query parameter the masker masks where it
 * stands (masking.ts `SECRET_QUERY_PARAMETERS`: `?token=…`, `?access_token=…`, as written and
 * decoded) — that pattern alone left the token readable when a test printed it on its own or
 * base64'd its environment. A value may hold several URLs, separated by blanks or run together
 * (`https://a:x@h1,https://b:y@h2`), or quoted: each is read from its scheme to the next. A password
 * that is the URL's own user (`postgres://postgres:postgres@…`) is left to the masker's URL pattern.
 *
 * A credential written without a scheme, as proxy settings take it (`alice:s3cr3t@10.0.0.1:8080`, or
 * `HTTPS_PROXY=user:pass@proxy:3128` inside a value), gives its password the same way (masking.ts
 * `SCHEMELESS_CREDENTIAL` says what counts: a host after the `@`, not `git@github.com:org/repo.git`, `a:b`
 * or `mailto:alice@example.com`): only `scheme://` was read, and a test that printed its proxy settings,
 * or the password alone, showed it in clear.
 *
 * @example
 * urlCredentials('https://ghp_abc123def456@github.com/o/r.git'); // ['ghp_abc123def456', 'ghp_abc123def456']
 * urlCredentials('postgres://app:s3cret@db/test'); // ['s3cret', 's3cret']
 * urlCredentials('https://pypi.example.com/simple/?token=t0k3n'); // ['t0k3n', 't0k3n']
 * urlCredentials('ssh://git@github.com/o/r.git'); // []
 * urlCredentials('HTTPS_PROXY=alice:s3cr3t@10.0.0.1:8080'); // ['s3cr3t', 's3cr3t']
 * urlCredentials('git@github.com:org/repo.git'); // []
 */
export function urlCredentials(text: string): string[] {
  const out: string[] = [];
  // Read twice: cut at blanks, quotes and angle brackets (a URL quoted in a JSON or shell-quoted value
  // ends at its quote), and cut at blanks only (an unencoded `'`, `"`, `<` or `>` in a password cut
  // it in two, and the masker's URL pattern stops at a quote: it was printed in the clear). A reading
  // that cuts a URL wrongly gives nothing, or a string that only that value holds.
  for (const word of new Set([...text.split(/[\s"'<>]+/), ...text.split(/\s+/)])) {
    const starts = [...word.matchAll(URL_START)].map((m) => m.index);
    for (const [i, start] of starts.entries()) {
      const url = word.slice(start, starts[i + 1] ?? word.length);
      const user = userPart(url);
      // A password that is its user (a CI database's postgres:postgres) is no secret from whoever reads
      // the user, which the URL shows; masked by value, it took `postgres` out of every scheme, role and
      // file name a test printed. The masker's URL pattern still hides it where it stands.
      const own = new Set([user, decodeOrKeep(user)]);
      out.push(...[...connectionStringSecrets(url), ...queryCredentials(url)].filter((s) => !own.has(s)));
      if (user && !LOGIN.test(decodeOrKeep(user))) out.push(user, decodeOrKeep(user));
    }
    for (const m of word.matchAll(SCHEMELESS_CREDENTIAL)) {
      const [, user = '', password = ''] = m;
      if (isAddressScheme(user)) continue;
      // As for a URL: a password that is its own user is masked where it stands only.
      const own = new Set([user, decodeOrKeep(user)]);
      out.push(...[password, decodeOrKeep(password)].filter((s) => !own.has(s)));
    }
  }
  return out;
}

const QUERY_NAMES = new Set(SECRET_QUERY_PARAMETERS);

/** The values of the secret parameters in a URL's query (before any `#`), as written and decoded. */
function queryCredentials(url: string): string[] {
  const start = url.indexOf('?');
  if (start < 0) return [];
  const out: string[] = [];
  for (const pair of (url.slice(start + 1).split('#')[0] ?? '').split('&')) {
    const eq = pair.indexOf('=');
    const value = eq < 0 ? '' : pair.slice(eq + 1);
    if (value && QUERY_NAMES.has(decodeOrKeep(pair.slice(0, eq)).toLowerCase())) out.push(value, decodeOrKeep(value));
  }
  return out;
}

/** The user part of a URL (as written), else ''. */
function userPart(url: string): string {
  try {
    return new URL(url).username;
  } catch {
    // Unparsable (a port of 99999): the authority runs to the first `/`, its user part to the last `@` in
    // it, then to the first `:` in that.
    const authority = url.slice(url.indexOf('://') + 3).split('/')[0] ?? '';
    const at = authority.lastIndexOf('@');
    return at < 0 ? '' : (authority.slice(0, at).split(':')[0] ?? '');
  }
}

/**
 * What the masker masks of the variables `names` as `env` holds them: the whole value of each whose
 * name says it is a secret, and the URL credentials of every value (config.ts `secretsOf`, the CLI's
 * masker), and what refuses a commit that adds one (config.ts `sandboxSecretsOf`): an agent told to
 * write its mirror's URL into a file must not have the token in it pushed. A password that is its
 * URL's own user (`postgres://postgres:postgres@localhost`) is not taken ({@link urlCredentials}): it
 * would refuse every change that names the database.
 *
 * @example
 * variableSecrets(['NPM_TOKEN', 'MIRROR'], { NPM_TOKEN: 'npm_x…', MIRROR: 'https://tok3n…@m.example' }); // ['npm_x…', 'tok3n…', 'tok3n…']
 */
export function variableSecrets(names: readonly string[], env: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  for (const name of names) {
    const value = env[name];
    if (!value) continue;
    if (isSecretName(name)) out.push(value);
    out.push(...urlCredentials(value));
  }
  return out;
}

/**
 * The variable names in lists as the environment gives them (`RMAPP_SANDBOX_ENV`: a JSON array, or
 * names separated by blanks or commas): every run of name characters.
 *
 * @example
 * variableNamesIn('MIRROR, TEST_DB_URL', '["ANTHROPIC_API_KEY"]'); // ['MIRROR', 'TEST_DB_URL', 'ANTHROPIC_API_KEY']
 */
export function variableNamesIn(...lists: (string | undefined)[]): string[] {
  return lists.flatMap((list) => list?.match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? []);
}

/**
 * `PGPASSWORD` of `env` as a secret of the service's (the password Postgres clients take when the
 * database URL has none), or undefined when it is unset or is the user it goes with — `PGUSER`, or the
 * user of `databaseUrl` — as a URL's password that is its own user is not taken ({@link urlCredentials}):
 * a CI's `PGUSER=postgres PGPASSWORD=postgres`, masked by value, would take `postgres` out of every
 * line the service writes.
 *
 * @example
 * pgPassword({ PGPASSWORD: 's3cret-pw' }, 'postgres://app@db/x'); // 's3cret-pw'
 * pgPassword({ PGPASSWORD: 'postgres' }, 'postgres://postgres@db/x'); // undefined
 */
export function pgPassword(env: NodeJS.ProcessEnv, databaseUrl?: string): string | undefined {
  const password = env.PGPASSWORD;
  if (!password) return undefined;
  let user: string | undefined;
  try {
    user = databaseUrl ? decodeOrKeep(new URL(databaseUrl).username) : undefined;
  } catch {
    user = undefined;
  }
  return password === env.PGUSER || password === user ? undefined : password;
}

/**
 * The body of a PEM block (the base64 between its BEGIN and END lines, joined), which a program can
 * print without those lines; the masker's letters-and-digits form of a secret (masking.ts, "skeleton")
 * then finds it wrapped at any width. Null for a value that is no PEM block.
 */
function pemBody(value: string): string | null {
  const m = /-----BEGIN [A-Z ]+-----([\s\S]*?)-----END [A-Z ]+-----/.exec(value);
  if (!m) return null;
  const body = (m[1] ?? '')
    .split('\n')
    .filter((line) => !line.includes(':'))
    .join('')
    .replace(/\s+/g, '');
  return body.length >= 64 ? body : null;
}

/**
 * A GitHub App's private key as secrets of the service's: as configured; as Octokit reads it, with each
 * `\n` written out in it taken for a line break (universal-github-app-jwt: a key kept on one line of an
 * environment file works); and the base64 body alone. Taken only as written, a key given as
 * `GITHUB_PRIVATE_KEY="-----BEGIN RSA PRIVATE KEY-----\nMIIE…"` refused no commit of the key as a PEM
 * file (its letters held an `n` for every escaped break), and the body alone, printed without its BEGIN
 * and END lines, was masked nowhere: not in the logs, the comments, nor a commit message quoting the
 * agent's summary. For the masker (config.ts `secretsOf`) and the commit check
 * (service-secret-sources.ts `serviceSecretSources`) alike.
 *
 * @example
 * privateKeySecrets('-----BEGIN RSA PRIVATE KEY-----\\nMIIE…\\n-----END RSA PRIVATE KEY-----'); // [as given, with line breaks, 'MIIE…']
 */
export function privateKeySecrets(key: unknown): string[] {
  if (typeof key !== 'string' || !key) return [];
  const read = key.replaceAll('\\n', '\n');
  const body = pemBody(read);
  return [...new Set([key, read, ...(body ? [body] : [])])];
}
