/**
 * One masking function for everything that leaves the process: GitHub comments and replies, the
 * JSON API (and so the dashboard and artifacts), logs, the CLI, the Stately inspector stream. It
 * masks the configured secret values (and the forms they travel in: base64, URL-encoded, hex, git's
 * `x-access-token` header, a cut-off head or tail at a string's edge), anything shaped like a GitHub
 * token, a common vendor key or a private key, credentials in URLs (and `user:password@host` written
 * without a scheme, as proxy settings take it), query strings and authorization
 * headers, and — in objects — secret-named keys. Masking is the second line: the sandbox keeps the
 * secrets away from untrusted code in the first place (README, "Sandbox and threat model").
 *
 * Every pattern is linear in the text (bounded quantifiers, private keys found by `indexOf`): masking
 * runs on agent output and plans, which an attacker shapes.
 */

import { MASK } from '../persistence/mask-marker.ts';
import { mintedSecrets, type MintedSecrets } from './minted-secrets.ts';

/** The marker a masked secret becomes: one for the service and the store (persistence/mask-marker.ts). */
export { MASK };

/**
 * The mark text cut in its middle carries (state_machine/clipped-text.ts: a step's error, an agent's
 * transcript): its two sides are edges.
 */
export { leftOutMark } from '../state_machine/clipped-text.ts';
const LEFT_OUT_TEXT = ' characters left out …\n';
/** Splits around each mark, keeping it (the odd pieces). */
const LEFT_OUT = /(\n… \d{1,15} characters left out …\n)/;

const PATTERNS: RegExp[] = [
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

// eslint-disable-next-line no-control-regex -- an ANSI escape starts with ESC: matching it is the point
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/y;
const ALNUM = /[A-Za-z0-9]/;

/**
 * How many objects deep a value is copied before the rest becomes "[…]": past what the engine stores
 * (it refuses a run's input, context or event nested more than 256 levels: durable-check.ts), with room
 * for the answer around it, so a run answered by the API is the run the database holds. A bound all
 * the same: logs may carry any object graph, and the copy recurses.
 */
const MAX_MASKED_DEPTH = 512;
// eslint-disable-next-line no-control-regex -- an ANSI escape starts with ESC: matching it is the point
const ANSI_ALL = /\x1b\[[0-9;?]*[A-Za-z]/g;

/** The text's letters and digits, lower-cased, ANSI codes left out, and where each stands in `text`. */
function skeletonOf(text: string): { sk: string; pos: number[] } {
  let sk = '';
  const pos: number[] = [];
  for (let i = 0; i < text.length; i += 1) {
    if (text.charCodeAt(i) === 0x1b) {
      ANSI.lastIndex = i;
      if (ANSI.exec(text)) {
        i = ANSI.lastIndex - 1;
        continue;
      }
    }
    const c = text[i] as string;
    if (ALNUM.test(c)) {
      sk += c.toLowerCase();
      pos.push(i);
    }
  }
  return { sk, pos };
}

/**
 * A secret disguised: spaced, wrapped, case-changed, interleaved with ANSI codes or zero-width
 * characters, or cut after 12 of its letters and digits. Compared on the text's letters and digits
 * only (lower-cased), the matching span of the original is masked. `skeletonsIn` gives the secrets'
 * skeletons whose first or last 12 may stand in the text's (all of them would do: the ranges masked
 * are the same, whatever their order).
 */
function maskSkeletons(text: string, skeletonsIn: (sk: string) => Iterable<string>): string {
  const { sk, pos } = skeletonOf(text);
  const skeletons = skeletonsIn(sk);
  const ranges: [number, number][] = [];
  for (const secret of skeletons) {
    const head = secret.slice(0, 12);
    for (let i = sk.indexOf(head); i >= 0; i = sk.indexOf(head, i + 1)) {
      let n = 12;
      while (n < secret.length && sk[i + n] === secret[n]) n += 1;
      ranges.push([pos[i] as number, pos[i + n - 1] as number]);
    }
    const tail = secret.slice(-12);
    for (let i = sk.indexOf(tail); i >= 0; i = sk.indexOf(tail, i + 1)) {
      let n = 12;
      while (n < secret.length && i - (n - 11) >= 0 && sk[i - (n - 11)] === secret[secret.length - 1 - n]) n += 1;
      ranges.push([pos[i - (n - 12)] as number, pos[i + 11] as number]);
    }
  }
  if (!ranges.length) return text;
  ranges.sort((a, b) => a[0] - b[0]);
  let out = '';
  let at = 0;
  for (const [from, to] of ranges) {
    if (to < at) continue;
    out += text.slice(at, Math.max(at, from)) + (from >= at ? MASK : '');
    at = to + 1;
  }
  return out + text.slice(at);
}

/**
 * The secret parts of a database connection string: its password, as written and decoded, and a
 * `password` or `sslpassword` parameter. The user, host and database are not secret and are what an
 * operator reads in the CLI's output (`rmapp migrate` printed `[REDACTED]` for a whole URL without a
 * password). A URL too malformed to parse (a port of 99999, an unencoded `#` in the password) gives
 * what stands between the user's `:` and the last `@`; a value without `://` is kept whole, since what
 * in it is secret cannot be told.
 */
export function connectionStringSecrets(value: string | null | undefined): string[] {
  if (!value) return [];
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    const start = value.indexOf('://');
    if (start < 0) return [value];
    const authority = value.slice(start + 3, Math.max(start + 3, value.lastIndexOf('@')));
    const colon = authority.indexOf(':');
    const password = colon < 0 ? '' : authority.slice(colon + 1);
    return password ? [password, decodeOrKeep(password)] : [];
  }
  const out: string[] = [];
  if (url.password) out.push(url.password, decodeOrKeep(url.password));
  for (const key of ['password', 'sslpassword']) for (const v of url.searchParams.getAll(key)) if (v) out.push(v);
  return out;
}

/** `text` percent-decoded, or as it is when it is no valid escape sequence. */
export function decodeOrKeep(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * Masks each `cores` string found in `text` once whitespace and escaped line breaks (`\n`, `\r`, `\t`
 * as two characters, as in JSON) are left out, and the `\` of an escaped `/`: base64 wrapped in lines of any width, indented (YAML),
 * with CR, CRLF or trailing spaces, or inside a JSON string. What is masked is the stretch of the
 * original text the core spans, breaks included (a text without breaks is searched as it is). One
 * pass to build the joined text, one search per core `coresIn` gives for it — those it holds, longest
 * first (all cores would do: only the cores found make spans): linear.
 */
function maskAcrossBreaks(text: string, coresIn: (joined: string) => readonly string[]): string {
  // The joined text in pieces, and where each piece starts in it and in `text`.
  const pieces: string[] = [];
  const joinedAt: number[] = [];
  const textAt: number[] = [];
  let length = 0;
  let from = 0;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    // Space, tab, LF and CR; a backslash before n, r or t.
    // The `\` of a `\/` goes alone: JSON may escape a `/` (PHP's `json_encode`, some loggers), and base64 holds them.
    const next = text[i + 1] ?? '';
    const skip = c === 32 || c === 9 || c === 10 || c === 13 ? 1 : c === 92 ? (/[nrt]/.test(next) ? 2 : next === '/' ? 1 : 0) : 0;
    if (!skip) continue;
    if (i > from) {
      pieces.push(text.slice(from, i));
      joinedAt.push(length);
      textAt.push(from);
      length += i - from;
    }
    from = i + skip;
    i += skip - 1;
  }
  if (from < text.length) {
    pieces.push(text.slice(from));
    joinedAt.push(length);
    textAt.push(from);
  }
  const joined = pieces.join('');
  const cores = coresIn(joined);
  /** Where the joined text's character `k` stands in `text`. */
  const original = (k: number): number => {
    let lo = 0;
    let hi = joinedAt.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((joinedAt[mid] as number) <= k) lo = mid;
      else hi = mid - 1;
    }
    return (textAt[lo] as number) + k - (joinedAt[lo] as number);
  };
  const spans: [number, number][] = [];
  for (const core of cores) {
    for (let k = joined.indexOf(core); k >= 0; k = joined.indexOf(core, k + core.length)) {
      spans.push([original(k), original(k + core.length - 1) + 1]);
    }
  }
  if (spans.length === 0) return text;
  spans.sort((a, b) => a[0] - b[0]);
  let out = '';
  let at = 0;
  for (const [start, end] of spans) {
    if (end <= at) continue;
    out += text.slice(at, Math.max(at, start)) + (start >= at ? MASK : '');
    at = end;
  }
  return out + text.slice(at);
}

/**
 * The base64 characters that depend only on `bytes`, wherever in a longer text they stand: for each of
 * the three alignments, the encoded groups made of the secret's bytes alone (the group it shares with
 * what comes before or after differs with that text, and is left). Also in the URL-safe alphabet.
 * Cores under 8 characters (6 bytes) are left out: short strings would mask unrelated text, so a
 * secret under 8 bytes is masked in base64 only where it starts a 3-byte group of the encoded text.
 */
export function base64Cores(bytes: Buffer): string[] {
  const out: string[] = [];
  for (let k = 0; k < 3; k += 1) {
    const full = Buffer.concat([Buffer.alloc(k), bytes]).toString('base64');
    const core = full.slice(k === 0 ? 0 : 4, Math.floor((k + bytes.length) / 3) * 4);
    if (core.length >= 8) out.push(core, core.replaceAll('+', '-').replaceAll('/', '_'));
  }
  return out;
}

/** A whole base64 group (four letters of either alphabet), and one that may end a text: padded, or cut short unpadded. */
const BASE64_GROUP = /^[A-Za-z0-9+/_-]{4}$/;
const BASE64_LAST_GROUP = /^[A-Za-z0-9+/_-]{2}(?:[A-Za-z0-9+/_-]{0,2}|[A-Za-z0-9+/_-]=|==)/;

/**
 * Whether the base64 `core` found at `at` in `joined` encodes one of `secrets` whole: a core is only the
 * groups made of a secret's bytes alone ({@link base64Cores}), so for a secret of 8 to 11 bytes two of
 * its three cores encode 6 of its bytes, and they were found in base64 that held no secret at all —
 * `dXNlcjpwYXNzd29yZA==` (`user:password`) held a core of `password1`, and refused a commit as holding
 * the service's database password. The group before and after it, decoded with it, must hold the
 * secret. `secrets` undefined: a hex core, a secret's whole hex.
 */
function encodesSecret(joined: string, core: string, at: number, secrets: readonly Buffer[] | undefined): boolean {
  if (!secrets) return true;
  const before = at >= 4 ? joined.slice(at - 4, at) : '';
  const after = BASE64_LAST_GROUP.exec(joined.slice(at + core.length, at + core.length + 4))?.[0] ?? '';
  const decoded = Buffer.from(`${BASE64_GROUP.test(before) ? before : ''}${core}${after}`, 'base64');
  return secrets.some((secret) => decoded.includes(secret));
}

export interface Masker {
  /** The text with every secret masked. */
  text(text: string): string;
  /** A deep copy of a JSON-like value with every string (and key) masked and secret-named keys' values replaced. */
  value<T>(value: T): T;
  /**
   * True when the text holds one of the configured secret values, whole, in a form this masker knows
   * (base64 or hex, wrapped or spaced; URL-encoded; re-cased or spaced out). Not the patterns
   * (anything shaped like a token or a URL password): a repository's test fixture may hold those.
   */
  holdsSecret(text: string): boolean;
}

/**
 * Secrets of fewer characters than this, or of a word's or a number's shape ({@link isWeakSecret}), are
 * weak: ordinary text spells them.
 */
export const WEAK_SECRET_CHARS = 8;

/** Letters only, of one word's length (`postgres`, `changeme`), or digits only, of a number's (`12345678`). */
const WORD_OR_NUMBER = /^(?:[A-Za-z]{1,11}|[0-9]{1,11})$/;

/**
 * Whether a secret is weak: under {@link WEAK_SECRET_CHARS} characters, or letters only or digits only
 * and under 12 (a word: `postgres`, `Password`; a number: `12345678`). Ordinary text holds such a value
 * inside its words — `PGPASSWORD=exampl` made every `example.com` `[REDACTED].com` — so the masker
 * masks a weak secret (as written and URL-encoded) only as a whole token: where the characters on
 * each side of it that touch a letter or digit of it are not letters or digits, an escape that stands
 * for another character counting as none (`%3D`, `\n`, `\u0022`, an ANSI colour code) (`exampl` in
 * `PGPASSWORD=exampl`, `postgres://app:exampl@db`, `"exampl"` or `exampl_x`, not in `example.com`); a
 * strong one is masked wherever it stands. Its base64 and hex forms are masked as for any secret (no
 * prose spells them). A weak service credential refuses no commit either (service-secret-sources.ts
 * `refusesCommits`).
 *
 * @example
 * isWeakSecret('exampl'); // true: masked in `pw=exampl`, not in `example.com`
 * isWeakSecret('postgres'); // true: a word
 * isWeakSecret('hunter22'); // false: masked anywhere
 */
export function isWeakSecret(value: string): boolean {
  return value.length < WEAK_SECRET_CHARS || WORD_OR_NUMBER.test(value);
}

const ALNUM_EDGE = /^[A-Za-z0-9]$/;
/**
 * Where a weak secret's token may start: after no letter, digit or combining mark (of any script, as
 * {@link TOKEN_END}), or right after an escape that ends
 * in one — a percent-escape (`%3Dexampl` in a URL inside a URL), a JSON escape (`\nexampl`,
 * `\u0022exampl`) or an ANSI colour code (`ESC[0mexampl`) — which stand for a character that is none.
 */
const TOKEN_START = String.raw`(?:(?<![\p{L}\p{N}\p{M}])|(?<=%[0-9A-Fa-f]{2}|\\[nrtbf]|\\u[0-9A-Fa-f]{4}|\\x[0-9A-Fa-f]{2}|\x1b\[[0-9;?]{0,20}[A-Za-z]))`;
/**
 * Where a weak secret's token may end: before no letter, digit or combining mark of any script. ASCII
 * only, `Kaffee` was masked in `Kaffeeöl` and `e` + U+0301 (a decomposed `é`) was cut in two: ordinary
 * prose garbled. The regular expression is built with the `u` flag for `\p{…}`.
 */
const TOKEN_END = String.raw`(?![\p{L}\p{N}\p{M}])`;
/** Escaped for a `u`-flag regular expression, where `\-` outside a class is a syntax error (a `-` there is literal). */
const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** Where any of `weak` stands as a whole token ({@link isWeakSecret}), or null when there is none. */
function wholeTokens(weak: readonly string[]): RegExp | null {
  if (!weak.length) return null;
  const each = [...weak]
    .sort((a, b) => b.length - a.length)
    .map(
      (w) =>
        `${ALNUM_EDGE.test(w[0] as string) ? TOKEN_START : ''}${escapeRegExp(w)}${ALNUM_EDGE.test(w[w.length - 1] as string) ? TOKEN_END : ''}`,
    );
  return new RegExp(each.join('|'), 'gu');
}

/** The forms of a list of secrets the masker searches for, built once per list. */
interface SecretForms {
  /** Found anywhere, longest first. */
  values: string[];
  /** Weak secrets, found as whole tokens. */
  weak: RegExp | null;
  /** Base64 and hex cores, found across line breaks, longest first. */
  cores: string[];
  /** The secrets each base64 core encodes a part of (a hex core is a secret's whole hex: none). */
  coreSecrets: Map<string, Buffer[]>;
  /** Letters and digits of secrets of 12 or more of them. */
  skeletons: string[];
  /** Secrets of 12 characters or more, whose cut-off pieces at a text's edge are masked. */
  edges: string[];
}

/** `c` as a JSON `\u` escape (four hex digits), in lower- or upper-case hex. */
const jsonEscape = (c: string, upper = false): string => {
  const hex = (c.charCodeAt(0) as number).toString(16).padStart(4, '0');
  return `\\u${upper ? hex.toUpperCase() : hex}`;
};

/**
 * A secret as JSON text escapes it, where that differs from the secret: JSON.stringify's (`\"`, `\\`,
 * control characters), with every non-ASCII character as `\u00e4` (Python's `json.dumps`, PHP's
 * `json_encode`), with `&`, `<`, `>` as `\u0026` (Go's `encoding/json`), as .NET's `System.Text.Json`
 * writes it (`"`, `&`, `'`, `+`, `<`, `>`, a backtick and non-ASCII as upper-case `\u0022`), and each with
 * `/` as `\/` (PHP). Output that was already JSON — a test printing its configuration, a transcript's
 * JSON lines, a `config.json` to commit — held a password with a `"` or an `ä` in clear (only base64
 * forms were looked for `\/`-escaped). None for a secret of letters, digits and `-_.~:@=` alone.
 */
function jsonForms(secret: string): string[] {
  const json = JSON.stringify(secret).slice(1, -1);
  const forms = [
    json,
    json.replace(/[\u0080-\uffff]/g, (c) => jsonEscape(c)),
    json.replace(/[&<>]/g, (c) => jsonEscape(c)),
    json.replace(/\\"/g, '"').replace(/[\u0080-\uffff]|["&'+<>`]/g, (c) => jsonEscape(c, true)),
  ];
  return [...new Set([...forms, ...forms.map((f) => f.replaceAll('/', '\\/'))])].filter((f) => f !== secret);
}

/**
 * One secret's forms, each list in the order the masker has always taken them: among forms of one
 * length, the earlier secret's and then the earlier form is masked first, which decides how two
 * overlapping forms are masked.
 */
interface OneSecretForms {
  /** Found anywhere. */
  values: string[];
  /** Found as whole tokens (a weak secret's plain, URL-encoded and JSON forms). */
  weak: string[];
  /** Base64 cores, then hex: found across line breaks. */
  cores: string[];
  /** The base64 cores alone (holdsSecret decodes around them). */
  base64: string[];
  /** Its letters and digits, lower-cased, when 12 or more. */
  skeleton: string | null;
  /** Whether its cut-off pieces at a text's edge are masked (12 characters or more). */
  edge: boolean;
}

/** The forms of one secret of 6 characters or more. */
function formsOf(s: string): OneSecretForms {
  const values: string[] = [];
  const weak: string[] = [];
  const plain = isWeakSecret(s) ? weak : values;
  plain.push(s);
  // Base64 with its padding, and without (the longest form is masked first), and URL-encoded (a query).
  for (const b64 of [Buffer.from(s).toString('base64'), Buffer.from(`x-access-token:${s}`).toString('base64')]) {
    for (const form of [b64, b64.replace(/=+$/, '')]) values.push(form, encodeURIComponent(form));
  }
  // Base64 of text that holds the secret anywhere (`echo "K=$K" | base64`, `env | base64`): found by
  // maskAcrossBreaks, whole or broken across lines.
  const base64 = base64Cores(Buffer.from(s));
  const cores = [...base64];
  plain.push(encodeURIComponent(s));
  // As JSON text escapes it (a weak secret's forms as whole tokens too).
  plain.push(...jsonForms(s));
  // Hex, whole or wrapped and spaced as dumps print it (`xxd -p`'s 60-column lines, `xxd -g1 -p`,
  // `od`-style pairs): found across breaks like base64 (hex of text holding the secret holds the
  // secret's hex at a byte boundary, so no alignment variants are needed).
  for (const hex of [Buffer.from(s).toString('hex'), Buffer.from(s).toString('hex').toUpperCase()]) {
    values.push(hex);
    cores.push(hex);
  }
  const skeleton = s.replace(/[^A-Za-z0-9]/g, '').toLowerCase();
  // A PEM key also travels with escaped newlines (JSON, env files).
  if (s.includes('\n')) values.push(s.replaceAll('\n', '\\n'));
  return { values, weak, cores, base64, skeleton: skeleton.length >= 12 ? skeleton : null, edge: s.length >= 12 };
}

/** What the masker searches for, for `secrets` (shorter than 6 characters are left out). */
function secretForms(secrets: readonly (string | null | undefined)[]): SecretForms {
  const values = new Set<string>();
  const weak = new Set<string>();
  const edges: string[] = [];
  const skeletons = new Set<string>();
  const cores = new Set<string>();
  const coreSecrets = new Map<string, Buffer[]>();
  for (const s of new Set(secrets)) {
    if (!s || s.length < 6) continue;
    const forms = formsOf(s);
    for (const v of forms.values) values.add(v);
    for (const w of forms.weak) weak.add(w);
    for (const core of forms.base64) coreSecrets.set(core, [...(coreSecrets.get(core) ?? []), Buffer.from(s)]);
    for (const core of forms.cores) cores.add(core);
    if (forms.skeleton) skeletons.add(forms.skeleton);
    if (forms.edge) edges.push(s);
  }
  return {
    values: [...values].sort((a, b) => b.length - a.length),
    weak: wholeTokens([...weak]),
    cores: [...cores].sort((a, b) => b.length - a.length),
    coreSecrets,
    skeletons: [...skeletons],
    edges,
  };
}

/** A form an index holds, and where it is filed. */
interface IndexedForm {
  readonly text: string;
  /**
   * The ranks of the secrets (and forms) it is a form of, ascending, one per time it was added: the
   * least orders it among forms of its length as the list of secrets did.
   */
  readonly ranks: number[];
  /** The hash of the piece of the index's `q` characters it is filed under, and where that piece stands in it. */
  readonly hash: number;
  readonly at: number;
}

/** Longest first, then in the order of the secrets: the order the masker searches forms in. */
const longestFirst = (a: IndexedForm, b: IndexedForm): number =>
  b.text.length - a.text.length || (a.ranks[0] as number) - (b.ranks[0] as number);

/** Up to this many forms, an index is searched form by form (`includes`), as before it existed. */
const SMALL_INDEX = 64;
const GRAM_BASE = 31;
/**
 * The bits of a hash kept as a key: a small integer, which V8 keeps unboxed — a Map keyed by full
 * 32-bit hashes boxed each, and indexing 1,000 tokens took 7× the old masker's rebuild.
 */
const KEY = 0x3fffffff;

/** `rank` put into the ascending `ranks`. */
function insertRank(ranks: number[], rank: number): void {
  let i = ranks.length;
  while (i > 0 && (ranks[i - 1] as number) > rank) i -= 1;
  ranks.splice(i, 0, rank);
}

/** The first of the ascending `ranks` above `after`, or Infinity. */
function rankAfter(ranks: readonly number[] | undefined, after: number): number {
  if (!ranks) return Infinity;
  let lo = 0;
  let hi = ranks.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((ranks[mid] as number) > after) hi = mid;
    else lo = mid + 1;
  }
  return ranks[lo] ?? Infinity;
}

/**
 * Whether a form may newly stand in a text once another form there became {@link MASK}: such an
 * occurrence overlaps the mark, so the form holds the mark's first or last character or lies inside
 * it. Those are searched in every text; the rest only where the unmasked text holds them.
 */
const nearMask = (form: string): boolean =>
  form.includes(MASK[0] as string) || form.includes(MASK[MASK.length - 1] as string) || MASK.includes(form);

/**
 * The rolling hashes of each `q` characters of `text`, in order (`out[i]` for `text.slice(i, i + q)`):
 * polynomial in {@link GRAM_BASE} modulo 2^32, so the next is the last with one character out and one
 * in; kept to their low 30 bits ({@link KEY}).
 */
function gramHashes(text: string, q: number, top: number): Int32Array {
  const n = text.length - q + 1;
  const out = new Int32Array(Math.max(0, n));
  if (n <= 0) return out;
  let h = 0;
  for (let j = 0; j < q; j += 1) h = (Math.imul(h, GRAM_BASE) + text.charCodeAt(j)) | 0;
  out[0] = h & KEY;
  for (let i = 1; i < n; i += 1) {
    h = (Math.imul(h - Math.imul(text.charCodeAt(i - 1), top), GRAM_BASE) + text.charCodeAt(i + q - 1)) | 0;
    out[i] = h & KEY;
  }
  return out;
}

/** {@link GRAM_BASE} to the power `q - 1`, modulo 2^32: what the character leaving a window of `q` weighed. */
function topWeight(q: number): number {
  let top = 1;
  for (let i = 1; i < q; i += 1) top = Math.imul(top, GRAM_BASE);
  return top;
}

const EDGE_TOP = topWeight(8);
/** The hash of `text`'s 8 characters from `at`, as {@link gramHashes} makes it. */
function edgeHash(text: string, at: number): number {
  let h = 0;
  for (let j = at; j < at + 8; j += 1) h = (Math.imul(h, GRAM_BASE) + text.charCodeAt(j)) | 0;
  return h & KEY;
}

/**
 * Which of many strings (each of `q` characters or more) a text holds, at a cost that does not grow
 * with how many there are: each string is filed under the hash of one of its pieces of `q` characters
 * (the one fewest others are filed under, from its middle on: every `x-access-token:` Basic form
 * starts alike), and the text is read once, a rolling hash of each `q` characters tested against a bit
 * per filed hash, the strings filed under it compared where the bit is set. Searching each string
 * with `includes` cost ~1 ms a log line with 1,000 minted tokens (bench/README.md, "thirty-sixth
 * session"). Adding or removing a string costs its own length, not the index's size.
 */
class FormIndex {
  private readonly forms = new Map<string, IndexedForm>();
  private readonly byHash = new Map<number, IndexedForm[]>();
  /** The forms searched in every text ({@link nearMask}): only the values' index reads them. */
  readonly nearMask = new Set<IndexedForm>();
  private bits = new Int32Array(32);
  private bitsLog = 10;
  /** Hashes removed whose bits are still set: a false hit each, until the bits are rebuilt. */
  private stale = 0;
  private readonly top: number;

  constructor(private readonly q: number) {
    this.top = topWeight(q);
  }

  get size(): number {
    return this.forms.size;
  }

  add(text: string, rank: number): void {
    const known = this.forms.get(text);
    if (known) return insertRank(known.ranks, rank);
    const hashes = gramHashes(text, this.q, this.top);
    // From the middle on (then from the start): forms share heads (`ghs_`, an `x-access-token:` Basic
    // form's first 20 characters) and tails (`%3D`) more than middles.
    const places = hashes.length;
    const middle = (places - 1) >> 1;
    let at = middle;
    let fewest = Infinity;
    for (let k = 0; k < places && fewest > 0; k += 1) {
      const o = (middle + k) % places;
      const n = this.byHash.get(hashes[o] as number)?.length ?? 0;
      if (n < fewest) [fewest, at] = [n, o];
    }
    const form: IndexedForm = { text, ranks: [rank], hash: hashes[at] as number, at };
    this.forms.set(text, form);
    const filed = this.byHash.get(form.hash);
    if (filed) filed.push(form);
    else {
      this.byHash.set(form.hash, [form]);
      if (this.byHash.size > this.bits.length) this.rebuildBits();
      else this.mark(form.hash);
    }
    if (nearMask(text)) this.nearMask.add(form);
  }

  remove(text: string, rank: number): void {
    const form = this.forms.get(text);
    if (!form) return;
    const i = form.ranks.indexOf(rank);
    if (i >= 0) form.ranks.splice(i, 1);
    if (form.ranks.length) return;
    this.forms.delete(text);
    this.nearMask.delete(form);
    const filed = this.byHash.get(form.hash) as IndexedForm[];
    filed.splice(filed.indexOf(form), 1);
    if (filed.length) return;
    this.byHash.delete(form.hash);
    this.stale += 1;
    if (this.stale > this.byHash.size + 64) this.rebuildBits();
  }

  /** The forms `text` holds, in no particular order. */
  found(text: string): IndexedForm[] {
    if (this.forms.size <= SMALL_INDEX) {
      const out: IndexedForm[] = [];
      for (const form of this.forms.values()) if (text.includes(form.text)) out.push(form);
      return out;
    }
    const { q, bits, byHash, top } = this;
    const n = text.length;
    if (n < q) return [];
    const shift = 32 - this.bitsLog;
    let h = 0;
    for (let j = 0; j < q; j += 1) h = (Math.imul(h, GRAM_BASE) + text.charCodeAt(j)) | 0;
    let out: Set<IndexedForm> | undefined;
    for (let i = 0; ; i += 1) {
      const key = h & KEY;
      const b = Math.imul(key, 0x9e3779b1) >>> shift;
      if ((bits[b >>> 5] as number) & (1 << (b & 31))) {
        const filed = byHash.get(key);
        if (filed)
          for (const form of filed) {
            const start = i - form.at;
            if (start >= 0 && !out?.has(form) && text.startsWith(form.text, start)) (out ??= new Set()).add(form);
          }
      }
      if (i + q >= n) break;
      h = (Math.imul(h - Math.imul(text.charCodeAt(i), top), GRAM_BASE) + text.charCodeAt(i + q)) | 0;
    }
    return out ? [...out] : [];
  }

  private mark(hash: number): void {
    const b = Math.imul(hash, 0x9e3779b1) >>> (32 - this.bitsLog);
    this.bits[b >>> 5] = (this.bits[b >>> 5] as number) | (1 << (b & 31));
  }

  /** About 32 bits per filed hash (a false hit at one position in 32 or fewer), all set anew. */
  private rebuildBits(): void {
    this.bitsLog = Math.max(10, Math.ceil(Math.log2(this.byHash.size * 32)));
    this.bits = new Int32Array(2 ** this.bitsLog / 32);
    this.stale = 0;
    for (const hash of this.byHash.keys()) this.mark(hash);
  }
}

/**
 * Every form of the secrets a masker knows, filed so that a text is searched for all of them at a
 * cost near-independent of how many there are, and a secret is added or removed at the cost of its
 * own forms (an App's installation tokens come and go one by one: bench/README.md, "thirty-sixth
 * session"). A secret's rank is its place in the list of secrets (the configured ones, then the
 * minted ones in the order they were minted); a form's rank is the secret's times 64 plus the form's
 * place among its forms (fewer than 64: {@link formsOf}).
 */
class SecretIndex {
  readonly values = new FormIndex(6);
  readonly weak = new FormIndex(6);
  readonly cores = new FormIndex(8);
  /** The first and last 12 characters of each skeleton, filed by the secret's rank. */
  readonly skeletonEnds = new FormIndex(12);
  readonly skeletonOf = new Map<number, string>();
  /**
   * The hash of each piece of 8 characters of each secret of 12 or more ({@link gramHashes}), and the
   * ranks of the secrets that hold it (ascending, once per place). A hash two pieces share only makes
   * a secret tried that leaves the text as it is.
   */
  readonly edgeGrams = new Map<number, number[]>();
  readonly edgeOf = new Map<number, string>();

  add(secret: string, rank: number, forms: OneSecretForms): void {
    forms.values.forEach((v, i) => this.values.add(v, rank * 64 + i));
    forms.weak.forEach((w, i) => this.weak.add(w, rank * 64 + i));
    forms.cores.forEach((c, i) => this.cores.add(c, rank * 64 + i));
    if (forms.skeleton) {
      this.skeletonEnds.add(forms.skeleton.slice(0, 12), rank);
      this.skeletonEnds.add(forms.skeleton.slice(-12), rank);
      this.skeletonOf.set(rank, forms.skeleton);
    }
    if (forms.edge) {
      this.edgeOf.set(rank, secret);
      for (const gram of gramHashes(secret, 8, EDGE_TOP)) {
        const ranks = this.edgeGrams.get(gram);
        if (ranks) insertRank(ranks, rank);
        else this.edgeGrams.set(gram, [rank]);
      }
    }
  }

  remove(secret: string, rank: number, forms: OneSecretForms): void {
    forms.values.forEach((v, i) => this.values.remove(v, rank * 64 + i));
    forms.weak.forEach((w, i) => this.weak.remove(w, rank * 64 + i));
    forms.cores.forEach((c, i) => this.cores.remove(c, rank * 64 + i));
    if (forms.skeleton) {
      this.skeletonEnds.remove(forms.skeleton.slice(0, 12), rank);
      this.skeletonEnds.remove(forms.skeleton.slice(-12), rank);
      this.skeletonOf.delete(rank);
    }
    if (forms.edge) {
      this.edgeOf.delete(rank);
      for (const gram of gramHashes(secret, 8, EDGE_TOP)) {
        const ranks = this.edgeGrams.get(gram) as number[];
        ranks.splice(ranks.indexOf(rank), 1);
        if (!ranks.length) this.edgeGrams.delete(gram);
      }
    }
  }
}

/**
 * A masker for these secret values, and for the secrets the process mints as it runs (`minted`: by
 * default the process's list, minted-secrets.ts `mintedSecrets` — an App's installation tokens, masked
 * in every form while they can be valid; null for none). Shorter than 6 characters are ignored
 * (masking `main` would garble every message; the README says so); a weak secret is masked only as a
 * whole token ({@link isWeakSecret}). {@link Masker.holdsSecret} reads the configured secrets only:
 * the commit check knows the token it pushes with (workspace.ts `secretCheck`).
 */
export function createMasker(
  secrets: readonly (string | null | undefined)[] = [],
  options: { minted?: MintedSecrets | null } = {},
): Masker {
  const configured = secretForms(secrets);
  const minted = options.minted === undefined ? mintedSecrets : options.minted;
  const index = new SecretIndex();
  const configuredSet = new Set<string>();
  for (const s of new Set(secrets)) {
    if (!s || s.length < 6) continue;
    index.add(s, configuredSet.size, formsOf(s));
    configuredSet.add(s);
  }
  /** A minted secret's rank comes after every configured one's: the version it was added at, plus this. */
  const mintedBase = configuredSet.size;
  /** The minted secrets the index holds (not those configured too, nor under 6 characters): the version each was added at, and its forms. */
  const held = new Map<string, { added: number; forms: OneSecretForms }>();
  let mintedVersion = 0;
  /**
   * The index brought up to the minted list, by its changes since the last look (or, when it no longer
   * keeps them, by the whole list): each secret added or removed at the cost of its own forms. A
   * secret whose forms cannot be made (a lone surrogate: `encodeURIComponent` throws) throws here,
   * before anything changed, each time the masker is used while it is on the list. (The masker
   * before the index threw once, then kept its old forms until the list changed again: tokens minted
   * with it went unmasked.)
   */
  const current = (): SecretIndex => {
    if (!minted) return index;
    const version = minted.version();
    if (version === mintedVersion) return index;
    // Where each secret the changes touch ends up: the version it was added at, or undefined (gone).
    const ends = new Map<string, number | undefined>();
    const delta = minted.changesSince(mintedVersion);
    let reached: number;
    if (delta) {
      for (const c of delta.changes) ends.set(c.secret, c.added ? c.version : undefined);
      reached = delta.version;
    } else {
      const all = minted.entries();
      const now = new Map(all.entries);
      for (const secret of held.keys()) if (!now.has(secret)) ends.set(secret, undefined);
      for (const [secret, added] of all.entries) ends.set(secret, added);
      reached = all.version;
    }
    const adding: [string, number, OneSecretForms][] = [];
    for (const [secret, added] of ends)
      if (added !== undefined && held.get(secret)?.added !== added && secret.length >= 6 && !configuredSet.has(secret))
        adding.push([secret, added, formsOf(secret)]);
    for (const [secret, added] of ends) {
      const had = held.get(secret);
      if (had && had.added !== added) {
        index.remove(secret, mintedBase + had.added, had.forms);
        held.delete(secret);
      }
    }
    for (const [secret, added, forms] of adding) {
      index.add(secret, mintedBase + added, forms);
      held.set(secret, { added, forms });
    }
    mintedVersion = reached;
    return index;
  };
  const { values: sorted, cores: coreList, coreSecrets, skeletons: skeletonList } = configured;
  /** Whole-token expressions for the weak forms a text holds, by those forms: most texts hold none, and build none. */
  const weakTokens = new Map<string, RegExp>();
  const maskValues = (input: string, f: SecretIndex): string => {
    let out = input;
    const values = f.values.found(input);
    // A form is searched where the text held it, or where masking another may have made it ({@link nearMask}).
    for (const form of f.values.nearMask) if (!values.includes(form)) values.push(form);
    for (const { text: v } of values.sort(longestFirst)) if (out.includes(v)) out = out.split(v).join(MASK);
    if (!f.weak.size) return out;
    const weak = f.weak.found(out);
    if (!weak.length) return out;
    const forms = weak.sort(longestFirst).map((form) => form.text);
    const key = JSON.stringify(forms);
    let tokens = weakTokens.get(key);
    if (!tokens) {
      if (weakTokens.size >= 256) weakTokens.clear();
      tokens = wholeTokens(forms) as RegExp;
      weakTokens.set(key, tokens);
    }
    return out.replace(tokens, MASK);
  };
  const text = (input: string): string => {
    const f = current();
    const { edgeGrams, edgeOf } = f;
    let out = maskValues(input, f);
    if (f.cores.size)
      out = maskAcrossBreaks(out, (joined) =>
        f.cores
          .found(joined)
          .sort(longestFirst)
          .map((form) => form.text),
      );
    // Output kept by its end (or start) may cut a secret: a piece of 8+ characters at the edge goes too.
    // So may text kept by its head and tail (a transcript entry, `clip` in agents/transcript.ts): the
    // edges around each "characters left out" mark count as edges too.
    // The longest cut piece (8 characters or more, short of the whole secret) found by where the
    // piece's first or last 8 characters stand in the secret, not by trying every length: with a
    // private key configured, trying every length cost ~70 µs per string masked (pass 3 of the
    // seventeenth session: 200,000 strings 14.9 s). Only the secrets holding the piece's first or last
    // 8 characters are tried, in the secrets' order: a secret holding neither leaves the piece as it is.
    const edgesMasked = (piece: string): string => {
      if (piece.length < 8) return piece;
      // The piece stays 8 characters or more: a masked end leaves MASK (10) in it.
      for (let after = -1; ;) {
        const rank = Math.min(
          rankAfter(edgeGrams.get(edgeHash(piece, 0)), after),
          rankAfter(edgeGrams.get(edgeHash(piece, piece.length - 8)), after),
        );
        if (rank === Infinity) return piece;
        after = rank;
        const s = edgeOf.get(rank) as string;
        const head = piece.slice(0, 8);
        for (let p = s.indexOf(head, 1); p >= 1; p = s.indexOf(head, p + 1)) {
          if (piece.startsWith(s.slice(p))) {
            piece = MASK + piece.slice(s.length - p);
            break;
          }
        }
        if (piece.length < 8) continue;
        const tail = piece.slice(-8);
        for (let q = s.lastIndexOf(tail, s.length - 9); q >= 0; q = q === 0 ? -1 : s.lastIndexOf(tail, q - 1)) {
          if (piece.endsWith(s.slice(0, q + 8))) {
            piece = piece.slice(0, piece.length - (q + 8)) + MASK;
            break;
          }
        }
      }
    };
    if (edgeOf.size)
      out = out.includes(LEFT_OUT_TEXT)
        ? out
            .split(LEFT_OUT)
            .map((piece, i) => (i % 2 ? piece : edgesMasked(piece)))
            .join('')
        : edgesMasked(out);
    if (f.skeletonOf.size)
      out = maskSkeletons(out, (sk) => {
        const skeletons = new Set<string>();
        for (const end of f.skeletonEnds.found(sk)) for (const rank of end.ranks) skeletons.add(f.skeletonOf.get(rank) as string);
        return skeletons;
      });
    out = maskPem(out);
    for (const p of PATTERNS)
      out = out.replace(p, (match: string, keep?: unknown) =>
        typeof keep === 'string' && match.startsWith(keep) ? `${keep}${MASK}` : MASK,
      );
    return out
      .replace(QUERY_SECRET, `$1${MASK}`)
      .replace(URL_PASSWORD, `$1:${MASK}@`)
      .replace(SCHEMELESS_CREDENTIAL, (match: string, user: string) => (isAddressScheme(user) ? match : `${user}:${MASK}@`));
  };
  // `path`: the objects being walked (a cycle is cut; an object met twice elsewhere is copied twice).
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
  // A secret's skeleton whole, not its first or last 12 letters and digits as masking takes them
  // (a cut-off edge): those of a PEM key are its BEGIN and END lines, which any text may hold.
  // Searches only (no masked copy, no positions): it reads whole commits, ~150 ms a MiB the masking way.
  const holdsSecret = (input: string): boolean => {
    if (sorted.some((v) => input.includes(v))) return true;
    if (configured.weak) {
      configured.weak.lastIndex = 0;
      if (configured.weak.test(input)) return true;
    }
    if (coreList.length > 0) {
      // As maskAcrossBreaks joins the text: without blanks, line breaks, their `\n` escapes and the `\` of `\/`.
      const joined = input.replace(/[ \t\r\n]+|\\[nrt]|\\(?=\/)/g, '');
      for (const c of coreList)
        for (let at = joined.indexOf(c); at >= 0; at = joined.indexOf(c, at + 1))
          if (encodesSecret(joined, c, at, coreSecrets.get(c))) return true;
    }
    if (!skeletonList.length) return false;
    const sk = input
      .replace(ANSI_ALL, '')
      .replace(/[^A-Za-z0-9]+/g, '')
      .toLowerCase();
    return skeletonList.some((s) => sk.includes(s));
  };
  return { text, value: <T>(value: T) => walk(value, new Set()) as T, holdsSecret };
}
