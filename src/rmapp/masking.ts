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
import { formsOf, secretForms, wholeTokens, type OneSecretForms } from './secret-forms.ts';
import { edgeHash, longestFirst, rankAfter, SecretIndex } from './secret-index.ts';

export { base64Cores, isWeakSecret, WEAK_SECRET_CHARS } from './secret-forms.ts';

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
