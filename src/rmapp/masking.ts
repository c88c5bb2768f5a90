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
import { maskedCopy, maskPatterns } from './secret-patterns.ts';
import { formsOf, secretForms, wholeTokens, type OneSecretForms } from './secret-forms.ts';
import { edgeHash, longestFirst, rankAfter, SecretIndex, type SkeletonIndex } from './secret-index.ts';
import { isAlnum, mayDisguise, shownText } from './shown-text.ts';

export { base64Cores, isWeakSecret, WEAK_SECRET_CHARS } from './secret-forms.ts';
export { isAddressScheme, SCHEMELESS_CREDENTIAL, SECRET_QUERY_PARAMETERS } from './secret-patterns.ts';

/** The marker a masked secret becomes: one for the service and the store (persistence/mask-marker.ts). */
export { MASK };

/**
 * The mark text cut in its middle carries (state_machine/clipped-text.ts: a step's error, an agent's
 * transcript): its two sides are edges.
 */
export { leftOutMark } from '../state_machine/clipped-text.ts';
/**
 * Where text was cut, the mark of a cut value: a {@link leftOutMark}, an ellipsis after a value cut short
 * (state_machine/errors.ts quotes a caller's value cut at 200 characters, `"…ghp_1a2b3c4d…"`), as JSON
 * may escape it (`\u2026`), or three dots. A secret cut there left its first 8 to 11 characters in clear:
 * the skeletons find a cut head of 12 letters and digits or more, the edges only a text's two ends.
 */
const CUT_MARK = /\n… \d{1,15} characters left out …\n|…|\\u2026|\.\.\./;
const CUT_MARKS = new RegExp(CUT_MARK.source, 'g');

/**
 * `text` with `masked` applied to each piece between its cut marks (and its ends). Only pieces of 8
 * characters or more can change, and the others are copied as they are: 1 MiB of `…` split into
 * pieces took 1.7 s.
 */
function edgesAroundMarks(text: string, masked: (piece: string) => string): string {
  let out = '';
  let at = 0;
  CUT_MARKS.lastIndex = 0;
  for (let m = CUT_MARKS.exec(text); ; m = CUT_MARKS.exec(text)) {
    const end = m ? m.index : text.length;
    if (end - at >= 8) out += masked(text.slice(at, end)) + (m ? m[0] : '');
    else out += text.slice(at, m ? CUT_MARKS.lastIndex : end);
    if (!m) return out;
    at = CUT_MARKS.lastIndex;
  }
}

// eslint-disable-next-line no-control-regex -- an ANSI escape starts with ESC: matching it is the point
const ANSI_ALL = /\x1b\[[0-9;?]*[A-Za-z]/g;

/** `text` with each of `ranges` (first and last index, inclusive) masked, overlapping ones as one. */
function maskRanges(text: string, ranges: [number, number][]): string {
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
 * A secret disguised: spaced, wrapped, case-changed, interleaved with ANSI codes, zero-width or
 * control characters or their escapes (`\u0007`, `\x1b[31m`: shown-text.ts), or cut after 12 of its
 * letters and digits. Compared on the text's letters and digits only (lower-cased, escapes read as the
 * character they stand for), the matching span of the original is masked: from each place holding a
 * secret's first 12 as far as it matches on, and back from each place holding its last 12. Overlapping
 * spans are masked as one, so of the spans of several secrets from one place only the longest counts:
 * `skeletons.spans` gives that one (secret-index.ts `SkeletonIndex`; each secret's own, one per place,
 * masked the same).
 */
function maskSkeletons(text: string, skeletons: SkeletonIndex): string {
  if (!mayDisguise(text, false)) {
    // Nothing to read past: the letters and digits as written (mayDisguise).
    let sk = '';
    const pos: number[] = [];
    for (let i = 0; i < text.length; i += 1) {
      const code = text.charCodeAt(i) | 0x20;
      if ((code >= 0x61 && code <= 0x7a) || (code >= 0x30 && code <= 0x39 && text.charCodeAt(i) === code)) {
        sk += String.fromCharCode(code);
        pos.push(i);
      }
    }
    return maskRanges(
      text,
      skeletons.spans(sk).map(([from, to]): [number, number] => [pos[from] as number, pos[to] as number]),
    );
  }
  const shown = shownText(text, isAlnum, false);
  return maskRanges(
    text,
    skeletons.spans(shown.chars).map(([from, to]): [number, number] => [shown.from[from] as number, (shown.to[to] as number) - 1]),
  );
}

/**
 * A secret of fewer than 12 letters and digits (no skeleton) disguised by case or by invisible
 * characters and escapes inside it (shown-text.ts): its shown form found, whole, in the text's. Spaces
 * and punctuation count, unlike a skeleton's: `Summer2024!` is not masked in `Summer 2024`.
 */
function maskShown(text: string, forms: SecretIndex['shown']): string {
  // Nothing to read past (mayDisguise): the text itself, its ASCII letters lower-cased, one for one.
  const shown = mayDisguise(text, true)
    ? { plain: false, ...shownText(text, () => true) }
    : { plain: true, chars: /[A-Z]/.test(text) ? text.replace(/[A-Z]+/g, (m) => m.toLowerCase()) : text, from: null, to: null };
  // The marks already in the text: a span reaching into one is no secret of the text's own (`D]` of
  // `[REDACTED]` and the text after it spell one), and would leave the mark half in place.
  const marks: number[] = [];
  for (let at = text.indexOf(MASK); at >= 0; at = text.indexOf(MASK, at + MASK.length)) marks.push(at);
  const crossesMark = (from: number, to: number): boolean => {
    let lo = 0;
    let hi = marks.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((marks[mid] as number) + MASK.length <= from) lo = mid + 1;
      else hi = mid;
    }
    return lo < marks.length && (marks[lo] as number) <= to;
  };
  const ranges: [number, number][] = [];
  forms.each(shown.chars, (form, start) => {
    const range: [number, number] = shown.plain
      ? [start, start + form.text.length - 1]
      : [(shown.from as Int32Array)[start] as number, ((shown.to as Int32Array)[start + form.text.length - 1] as number) - 1];
    if (!crossesMark(...range)) ranges.push(range);
  });
  return maskRanges(text, ranges);
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
   * keeps them, by the whole list): each secret added or removed at the cost of its own forms. Every
   * secret's forms can be made: one holding a lone surrogate, which `encodeURIComponent` refuses, is
   * URL-encoded with U+FFFD in its place (secret-forms.ts `urlEncoded`). It threw here on every use
   * while such a token was listed, and every log line and API answer failed with it.
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
    // edges around each "characters left out" mark count as edges too, and so do those around any cut
    // mark ({@link CUT_MARK}: a value an error quotes cut at 200 characters and `…`).
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
    if (edgeOf.size) out = CUT_MARK.test(out) ? edgesAroundMarks(out, edgesMasked) : edgesMasked(out);
    if (f.skeletons.size) out = maskSkeletons(out, f.skeletons);
    if (f.shown.size) out = maskShown(out, f.shown);
    return maskPatterns(out);
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
  return { text, value: <T>(value: T) => maskedCopy(value, text), holdsSecret };
}
