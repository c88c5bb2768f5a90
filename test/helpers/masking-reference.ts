/**
 * The reference for the masker's differential test (test/masking-many-secrets.test.ts) and the "before"
 * of bench/masking.ts: the search of src/rmapp/masking.ts as it was before the thirty-sixth session
 * (commit 103dfd5), unchanged; what that session did not change (the patterns and the masked copy,
 * secret-patterns.ts; a secret's JSON forms, weak tokens and base64 cores, secret-forms.ts) is imported.
 * It searches each form of each secret in turn — slow with many minted tokens, and plain to read: what
 * the masker now does through an index must give exactly its output.
 * Do not fix or extend it; a masking change that means to change the output changes the test instead.
 */

import { MASK } from '../../src/persistence/mask-marker.ts';
import { mintedSecrets, type MintedSecrets } from '../../src/rmapp/minted-secrets.ts';
import type { Masker } from '../../src/rmapp/masking.ts';
import { base64Cores, isWeakSecret, jsonForms, wholeTokens, type SecretForms } from '../../src/rmapp/secret-forms.ts';
import { maskedCopy, maskPatterns } from '../../src/rmapp/secret-patterns.ts';

/** The marker a masked secret becomes: one for the service and the store (persistence/mask-marker.ts). */
export { MASK };

/**
 * The mark text cut in its middle carries (state_machine/clipped-text.ts: a step's error, an agent's
 * transcript): its two sides are edges.
 */
export { leftOutMark } from '../../src/state_machine/clipped-text.ts';
const LEFT_OUT_TEXT = ' characters left out …\n';
/** Splits around each mark, keeping it (the odd pieces). */
const LEFT_OUT = /(\n… \d{1,15} characters left out …\n)/;

// eslint-disable-next-line no-control-regex -- an ANSI escape starts with ESC: matching it is the point
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/y;
const ALNUM = /[A-Za-z0-9]/;

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
 * only (lower-cased), the matching span of the original is masked.
 */
function maskSkeletons(text: string, skeletons: readonly string[]): string {
  const { sk, pos } = skeletonOf(text);
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
 * Masks each `cores` string found in `text` once whitespace and escaped line breaks (`\n`, `\r`, `\t`
 * as two characters, as in JSON) are left out, and the `\` of an escaped `/`: base64 wrapped in lines of any width, indented (YAML),
 * with CR, CRLF or trailing spaces, or inside a JSON string. What is masked is the stretch of the
 * original text the core spans, breaks included (a text without breaks is searched as it is). One
 * pass to build the joined text, one search per core: linear.
 */
function maskAcrossBreaks(text: string, cores: readonly string[]): string {
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
    const plain = isWeakSecret(s) ? weak : values;
    plain.add(s);
    // Base64 with its padding, and without (the longest form is masked first), and URL-encoded (a query).
    for (const b64 of [Buffer.from(s).toString('base64'), Buffer.from(`x-access-token:${s}`).toString('base64')]) {
      for (const form of [b64, b64.replace(/=+$/, '')]) {
        values.add(form);
        values.add(encodeURIComponent(form));
      }
    }
    // Base64 of text that holds the secret anywhere (`echo "K=$K" | base64`, `env | base64`): found by
    // maskAcrossBreaks, whole or broken across lines.
    for (const core of base64Cores(Buffer.from(s))) {
      cores.add(core);
      coreSecrets.set(core, [...(coreSecrets.get(core) ?? []), Buffer.from(s)]);
    }
    plain.add(encodeURIComponent(s));
    // As JSON text escapes it (a weak secret's forms as whole tokens too).
    for (const form of jsonForms(s)) plain.add(form);
    // Hex, whole or wrapped and spaced as dumps print it (`xxd -p`'s 60-column lines, `xxd -g1 -p`,
    // `od`-style pairs): found across breaks like base64 (hex of text holding the secret holds the
    // secret's hex at a byte boundary, so no alignment variants are needed).
    for (const hex of [Buffer.from(s).toString('hex'), Buffer.from(s).toString('hex').toUpperCase()]) {
      values.add(hex);
      cores.add(hex);
    }
    const skeleton = s.replace(/[^A-Za-z0-9]/g, '').toLowerCase();
    if (skeleton.length >= 12) skeletons.add(skeleton);
    // A PEM key also travels with escaped newlines (JSON, env files).
    if (s.includes('\n')) values.add(s.replaceAll('\n', '\\n'));
    if (s.length >= 12) edges.push(s);
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
  let mintedVersion = 0;
  let forms = configured;
  /** The forms of the configured secrets and of those minted now, rebuilt when the minted list changed. */
  const current = (): SecretForms => {
    if (!minted) return configured;
    const version = minted.version();
    if (version !== mintedVersion) {
      mintedVersion = version;
      const now = minted.secrets();
      forms = now.length ? secretForms([...secrets, ...now]) : configured;
    }
    return forms;
  };
  const { values: sorted, cores: coreList, coreSecrets, skeletons: skeletonList } = configured;
  const maskValues = (input: string, f: SecretForms): string => {
    let out = input;
    for (const v of f.values) if (out.includes(v)) out = out.split(v).join(MASK);
    return f.weak ? out.replace(f.weak, MASK) : out;
  };
  const text = (input: string): string => {
    const f = current();
    const { edges, skeletons } = f;
    let out = maskValues(input, f);
    if (f.cores.length) out = maskAcrossBreaks(out, f.cores);
    // Output kept by its end (or start) may cut a secret: a piece of 8+ characters at the edge goes too.
    // So may text kept by its head and tail (a transcript entry, `clip` in agents/transcript.ts): the
    // edges around each "characters left out" mark count as edges too.
    // The longest cut piece (8 characters or more, short of the whole secret) found by where the
    // piece's first or last 8 characters stand in the secret, not by trying every length: with a
    // private key configured, trying every length cost ~70 µs per string masked (pass 3 of the
    // seventeenth session: 200,000 strings 14.9 s).
    const edgesMasked = (piece: string): string => {
      if (piece.length < 8) return piece;
      for (const s of edges) {
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
      return piece;
    };
    if (edges.length)
      out = out.includes(LEFT_OUT_TEXT)
        ? out
            .split(LEFT_OUT)
            .map((piece, i) => (i % 2 ? piece : edgesMasked(piece)))
            .join('')
        : edgesMasked(out);
    if (skeletons.length) out = maskSkeletons(out, skeletons);
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
