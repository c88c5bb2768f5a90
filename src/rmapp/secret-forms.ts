/**
 * The forms a secret travels in, which the masker (masking.ts) searches for: as written, URL-encoded,
 * JSON-escaped, base64 (of the secret, of git's `x-access-token:` header; whole, or the groups made of
 * its bytes alone) and hex — and which secrets are weak, masked only as whole tokens.
 */
import { isAlnum, shownText } from './shown-text.ts';

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
export function wholeTokens(weak: readonly string[]): RegExp | null {
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
export interface SecretForms {
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
export function jsonForms(secret: string): string[] {
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
export interface OneSecretForms {
  /** Found anywhere. */
  values: string[];
  /** Found as whole tokens (a weak secret's plain, URL-encoded and JSON forms). */
  weak: string[];
  /** Base64 cores, then hex: found across line breaks. */
  cores: string[];
  /** The base64 cores alone (holdsSecret decodes around them). */
  base64: string[];
  /**
   * Its letters and digits, lower-cased, when 12 or more: as written, and read as the masker reads a
   * text (shown-text.ts) where that differs — a secret holding what reads as an escape (`%1a`, `\n`) is
   * found written whole (the escape read) and spaced out (not read).
   */
  skeletons: string[];
  /**
   * A strong secret's shown form (shown-text.ts: lower-cased, invisible characters left out), when it
   * has no skeleton and the form has 8 characters or more: found re-cased or with controls inside, which
   * a skeleton finds for a longer secret. None for a weak secret, masked only as a whole token.
   */
  shown: string | null;
  /** Whether its cut-off pieces at a text's edge are masked (12 characters or more). */
  edge: boolean;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * `text` with each lone UTF-16 surrogate as U+FFFD: what `String.prototype.toWellFormed` (not in this
 * project's `lib`) makes of it, and what it becomes once written as UTF-8 (a log file, a pipe, `Buffer.from`)
 * or put in a URL (`URL`, `URLSearchParams`).
 */
export function wellFormed(text: string): string {
  return text.replace(LONE_SURROGATE, '\uFFFD');
}

/**
 * `text` URL-encoded as `encodeURIComponent` does, a lone surrogate as U+FFFD's `%EF%BF%BD` (as `URL`
 * and `URLSearchParams` write it): `encodeURIComponent` throws on one, and an installation token holding
 * one (GitHub's token endpoint, an emulator or a proxy answered `\ud800` in it) made every masker throw
 * on every line until the token expired — no log line, API answer or comment could be written.
 */
export function urlEncoded(text: string): string {
  return encodeURIComponent(wellFormed(text));
}

/** The forms of one secret of 6 characters or more. */
export function formsOf(s: string): OneSecretForms {
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
  plain.push(urlEncoded(s));
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
  const skeletons = [...new Set([skeleton, shownText(s, isAlnum, false).chars])].filter((k) => k.length >= 12);
  // A PEM key also travels with escaped newlines (JSON, env files).
  if (s.includes('\n')) values.push(s.replaceAll('\n', '\\n'));
  // A secret with a lone surrogate also travels with U+FFFD in its place, as written out and read back
  // as UTF-8 (its base64 and hex above are of those bytes already), and JSON-escaped so. Its skeleton
  // (letters and digits) is the same.
  const whole = wellFormed(s);
  if (whole !== s) {
    plain.push(whole, ...jsonForms(whole));
    // Its newlines escaped alone, as for the secret above: the JSON forms escape more (a `\\`) and miss it
    // (test/a2-surrogate-edge-masking.test.ts).
    if (whole.includes('\n')) values.push(whole.replaceAll('\n', '\\n'));
  }
  const shown = !skeletons.length && !isWeakSecret(s) ? shownText(s, () => true).chars : '';
  return {
    values,
    weak,
    cores,
    base64,
    skeletons,
    shown: shown.length >= 8 ? shown : null,
    edge: s.length >= 12,
  };
}

/** What the masker searches for, for `secrets` (shorter than 6 characters are left out). */
export function secretForms(secrets: readonly (string | null | undefined)[]): SecretForms {
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
    // As holdsSecret reads a text: its letters and digits as written, no escape read (masking.ts).
    const skeleton = forms.skeletons[0];
    if (skeleton && skeleton === s.replace(/[^A-Za-z0-9]/g, '').toLowerCase()) skeletons.add(skeleton);
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
