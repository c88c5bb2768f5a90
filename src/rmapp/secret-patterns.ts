/**
 * What the masker (masking.ts) masks by its shape, whatever secrets it knows: GitHub tokens, common
 * vendor keys, private keys, authorization headers, credentials in URLs and query strings, written
 * with or without a scheme — and, in objects, the values of secret-named keys. Every pattern is
 * linear in the text (bounded quantifiers, private keys found by `indexOf`): agent output and plans,
 * which an attacker shapes, go through it.
 */
import { MASK } from '../persistence/mask-marker.ts';

export const PATTERNS: RegExp[] = [
  // GitHub tokens: classic and fine-grained personal, OAuth, user-to-server, server-to-server, refresh.
  /\b(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{30,255})\b/g,
  // Common vendor keys an agent or a test may hold: Anthropic/OpenAI, npm, Slack, AWS access key ids, GitLab.
  /\beyJ[A-Za-z0-9_-]{8,2000}\.eyJ[A-Za-z0-9_-]{8,4000}\.[A-Za-z0-9_-]{8,2000}/g,
  /\b(aws_secret_access_key\s*[=:]\s*["']?)[A-Za-z0-9/+=]{30,60}/gi,
  /(_authToken\s*=\s*)\S{8,2000}/g,
  // curl's `-u user:password`; not a numeric `uid:gid`, which `docker run -u 1000:1000` (and `podman`,
  // `--user $(id -u):$(id -g)` expanded) takes: `-u 1000:[REDACTED]` garbled test output and plans.
  /(\s(?:-u|--user)\s+(?!\d{1,10}:\d{1,10}(?:[\s"']|$))[^\s:]{1,200}:)[^\s"']{1,500}/g,
  /\b(?:sk-ant-[A-Za-z0-9_-]{20,300}|sk-(?:proj-)?[A-Za-z0-9_-]{32,300}|npm_[A-Za-z0-9]{36}|xox[abposr]-[A-Za-z0-9-]{10,200}|AKIA[0-9A-Z]{16}|glpat-[A-Za-z0-9_-]{20,60})\b/g,
  // Authorization headers in any scheme, and a bare Bearer credential (with a digit: not prose).
  /\b(authorization:\s*(?:bearer|basic|token)\s+)[^\s"']{1,2000}/gi,
  /\bbearer\s+(?=[A-Za-z._~+/-]{0,400}\d)[A-Za-z0-9._~+/-]{20,2000}=*/gi,
  // git's `x-access-token:<token>` and credentials in query strings.
  /x-access-token:[^@\s"']{1,2000}/gi,
];
/**
 * Query-string parameters whose values are credentials, in any case: masked where they stand in any
 * text (`?token=…`), and by value when a variable the sandbox is given holds them in a URL
 * (secret-variables.ts `urlCredentials`), since a test may print the value alone or base64 its
 * environment.
 */
export const SECRET_QUERY_PARAMETERS: readonly string[] = [
  'access_token',
  'refresh_token',
  'client_secret',
  'token',
  'api_key',
  'apikey',
  'password',
  'sslpassword',
  'secret',
  'sig',
];
const QUERY_SECRET = new RegExp(`([?&](?:${SECRET_QUERY_PARAMETERS.join('|')})=)[^&\\s"'#]{1,2000}`, 'gi');
/**
 * `scheme://user:password@host` → `scheme://user:[REDACTED]@host` (bounded: linear on `a.a.a.…`). The
 * password runs to the last `@` of the authority, as URL parsers read it: one holding an unencoded `@`
 * (`http://alice:p@ssw0rd@proxy:8080`) kept all after its first `@` in clear.
 */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]{0,30}:\/\/[^\s:/@"']{1,256}):[^\s/"'?#]{1,256}@/gi;
/**
 * Where a credential written without a scheme may stand: a bracketed IPv6 address, an IPv4 one, a name
 * with a dot whose last label starts with a letter, or `localhost` — each with an optional port — or a
 * one-label name with a port (`proxy:3128`). Not `4.17.21` (a version), `sha256:0f1e…` (a digest) or
 * `noon`: what follows the `@` of `npm:lodash@4.17.21` or `node:20@sha256:…` is no host.
 */
const CREDENTIAL_HOST = String.raw`(?:(?:\[[0-9A-Fa-f:.]{2,45}\]|\d{1,3}(?:\.\d{1,3}){3}|(?:[A-Za-z0-9-]{1,63}\.){1,20}[A-Za-z][A-Za-z0-9-]{0,62}|localhost)(?::\d{1,5})?|[A-Za-z0-9-]{1,63}:\d{1,5})`;
/**
 * Where a {@link CREDENTIAL_HOST} ends: at anything that cannot go on a host name or a port — not only a
 * blank, a quote, `/`, `,`, `;`, `)` or `>`: a sentence's full stop (`… via alice:s3cr3t@proxy.example.com.`),
 * an error's colon (`alice:s3cr3t@proxy:3128: refused`), `]`, `}`, a backtick, or the `\` of an escaped
 * quote (`\"alice:s3cr3t@proxy:3128\"` in JSON inside a string) each left the password in clear. A `.`
 * or `:` followed by a letter or digit goes on the host (`4.17.21`, `sha256:0f1e…` are no host), and
 * what an `@` follows is no host but more of a password (`p@ss.word@proxy`).
 */
const HOST_END = String.raw`(?![A-Za-z0-9_@-]|[.:][A-Za-z0-9_-])`;
/**
 * A credential written without a scheme, as proxy settings take it: `user:password@host[:port]`
 * (`HTTPS_PROXY=alice:s3cr3t@10.0.0.1:8080`, `curl -x user:pass@proxy:3128`). It starts the text, or
 * follows a blank, a quote, `(`, `<`, `=` (`NAME=value`), `,` or `;` — not `//` (a URL's is read as a
 * URL); the host ({@link CREDENTIAL_HOST}) ends the text or is followed by anything that cannot go on
 * it ({@link HOST_END}). The password runs to the first `@` followed by a host (which ends there: two
 * credentials may stand in one value, comma-separated): an unencoded `@` in it
 * (`alice:p@ssw0rd@proxy:3128`, as people type proxy settings) left the whole credential unmasked, and
 * its password out of what the sandbox's variables give to mask and to refuse in commits. Groups: the user, the password. Not a credential: `git@github.com:org/repo.git`
 * (no password), `a:b` (no host), and an address in a scheme written without `//`
 * ({@link isAddressScheme}: `mailto:alice@example.com`). Masked where it stands by the masker, and its
 * password taken by value from the variables the sandbox is given (secret-variables.ts `urlCredentials`).
 * Bounded quantifiers: linear in the text.
 */
export const SCHEMELESS_CREDENTIAL = new RegExp(
  String.raw`(?<=^|[\s=,;"'(<])([^\s:/@=,;"'()<>\\]{1,256}):([^\s/"']{1,256}?)@(?=${CREDENTIAL_HOST}${HOST_END})`,
  'g',
);
/** Schemes written without `//` whose `scheme:name@host` is an address, not a login and a password. */
const ADDRESS_SCHEMES = new Set(['mailto', 'sip', 'sips', 'tel', 'xmpp', 'im', 'pres']);
/** Whether `user`, the part before the `:` of a {@link SCHEMELESS_CREDENTIAL} match, is an address scheme (`mailto`). */
export const isAddressScheme = (user: string): boolean => ADDRESS_SCHEMES.has(user.toLowerCase());
/** Keys whose values are secrets: `githubToken`, `webhook_secret`, `privateKey`, `apiKey` — not `maxTokens` or `secretary`. */
const SECRET_KEY = /(?:token|secret|password|passwd|private_?key|authorization|api_?key|credentials?)$/i;

/**
 * Masks private keys, with or without their END line, in one pass: each END line is searched for at
 * most once (a text of BEGIN lines without END is linear, not quadratic), the body read in place.
 */
function maskPem(text: string): string {
  if (!text.includes('PRIVATE KEY-----')) return text;
  const begin = /-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----/g;
  const endLine = /-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----/g;
  const body = /(?:[A-Za-z0-9+/=\s]|\\n|\\r)*/y;
  let out = '';
  let at = 0;
  // The next END line at or after the last search: -2 not searched yet, -1 none left in the text.
  let nextEnd = -2;
  let nextEndLength = 0;
  for (let m = begin.exec(text); m; m = begin.exec(text)) {
    out += text.slice(at, m.index) + MASK;
    const after = m.index + m[0].length;
    if (nextEnd !== -1 && nextEnd < after) {
      endLine.lastIndex = after;
      const e = endLine.exec(text);
      nextEnd = e ? e.index : -1;
      nextEndLength = e ? e[0].length : 0;
    }
    if (nextEnd >= after) at = nextEnd + nextEndLength;
    else {
      // No END line: the key's body (base64, escaped or real newlines) goes too.
      body.lastIndex = after;
      body.exec(text);
      at = body.lastIndex;
    }
    begin.lastIndex = at;
  }
  return out + text.slice(at);
}

/** `text` with every credential shaped like one ({@link PATTERNS}, private keys, URL and query credentials) masked. */
export function maskPatterns(text: string): string {
  let out = maskPem(text);
  for (const p of PATTERNS)
    out = out.replace(p, (match: string, keep?: unknown) => (typeof keep === 'string' && match.startsWith(keep) ? `${keep}${MASK}` : MASK));
  return out
    .replace(QUERY_SECRET, `$1${MASK}`)
    .replace(URL_PASSWORD, `$1:${MASK}@`)
    .replace(SCHEMELESS_CREDENTIAL, (match: string, user: string) => (isAddressScheme(user) ? match : `${user}:${MASK}@`));
}

/**
 * How many objects deep a value is copied before the rest becomes "[…]": past what the engine stores
 * (it refuses a run's input, context or event nested more than 256 levels: durable-check.ts), with room
 * for the answer around it, so a run answered by the API is the run the database holds. A bound all
 * the same: logs may carry any object graph, and the copy recurses.
 */
const MAX_MASKED_DEPTH = 512;

/**
 * A deep copy of a JSON-like value with every string (and key) passed through `text` and the values of
 * secret-named keys replaced; a cycle is cut, and an object met twice elsewhere is copied twice.
 */
export function maskedCopy<T>(value: T, text: (s: string) => string): T {
  // `path`: the objects being walked.
  const walk = (v: unknown, path: Set<object>): unknown => {
    if (typeof v === 'string') return text(v);
    if (!v || typeof v !== 'object' || v instanceof Date) return v;
    if (Buffer.isBuffer(v)) return text(v.toString('utf8'));
    if (path.has(v) || path.size > MAX_MASKED_DEPTH) return '[…]';
    path.add(v);
    try {
      // An Error's message and stack are not enumerable: kept as pino's error serializer shows them.
      if (v instanceof Error)
        return walk({ ...v, type: v.name, message: v.message, stack: v.stack, ...(v.cause !== undefined ? { cause: v.cause } : {}) }, path);
      if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return walk((v as { toJSON(): unknown }).toJSON(), path);
      if (Array.isArray(v)) return v.map((x) => walk(x, path));
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        const masked = SECRET_KEY.test(k) && x !== null && x !== undefined && x !== '' && typeof x !== 'boolean' ? MASK : walk(x, path);
        // Defined, not assigned: `out['__proto__'] = x` sets the copy's prototype, and the key a JSON body
        // (or a stored run) holds as data was gone from the answer.
        Object.defineProperty(out, text(k), { value: masked, enumerable: true, writable: true, configurable: true });
      }
      return out;
    } finally {
      path.delete(v);
    }
  };
  return walk(value, new Set()) as T;
}
