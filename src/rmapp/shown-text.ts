/**
 * A text as a reader sees it, for the masker (masking.ts) to find a secret in: the invisible characters
 * a pasted or printed secret may carry (controls such as BEL and CR, ANSI colour codes, zero-width and
 * bidirectional characters, a soft hyphen) left out, and the escapes the outputs write characters as
 * (`\u0007` in JSON, `\x07` in the CLI's terminal-safe text, `[U+202E]` as the CLI and the dashboard
 * show a bidirectional control, `%41` in a URL, `&#65;` in HTML) read as the character they stand for — each of those put letters or digits
 * between a secret's own, and the secret was printed readable (`Q7mZp3Rt\u00079XwL…`). ASCII letters
 * are lower-cased: the masker compares secrets regardless of case.
 *
 * One pass, each character looked at a bounded number of times: masking runs on 1 MiB texts an
 * attacker shapes.
 */

/** A text as {@link shownText} reads it: its characters, and the span of the text each stands for. */
export interface ShownText {
  /** The characters kept, lower-cased (ASCII letters). */
  readonly chars: string;
  /** Where in the text the character `k` of {@link chars} starts. */
  readonly from: Int32Array;
  /** Where in the text it ends (exclusive): an escape's end. */
  readonly to: Int32Array;
}

/**
 * What a reader sees nothing of, as ranges of codes (inclusive): controls, DEL and C1, soft hyphen, the
 * Arabic letter mark, the Mongolian vowel separator, zero-width and bidirectional characters, BOM. One
 * list for {@link isInvisible} and {@link mayDisguise}.
 */
const INVISIBLE_RANGES: readonly (readonly [number, number])[] = [
  [0x00, 0x1f],
  [0x7f, 0x9f],
  [0xad, 0xad],
  [0x61c, 0x61c],
  [0x180e, 0x180e],
  [0x200b, 0x200f],
  [0x202a, 0x202e],
  [0x2060, 0x2064],
  [0x2066, 0x2069],
  [0xfeff, 0xfeff],
];
const INVISIBLE = new Uint8Array(0x10000);
for (const [lo, hi] of INVISIBLE_RANGES) INVISIBLE.fill(1, lo, hi + 1);

/** Whether a reader sees nothing of `code` ({@link INVISIBLE_RANGES}). */
export function isInvisible(code: number): boolean {
  return code < 0x10000 && INVISIBLE[code] === 1;
}

/**
 * Whether anything in `text` could read otherwise than as written ({@link shownText}): an invisible
 * character, a backslash, a `[U+…]`, and with `web` a `%` or `&`. Most texts masked hold none (a log
 * line, an answer's strings), and then their shown form is the text itself, lower-cased: the masker
 * takes that without building one (a shown text per string made an answer of 5,000 strings 2–4× slower
 * to mask than before the shown forms).
 */
export function mayDisguise(text: string, web: boolean): boolean {
  return (web ? MAY_DISGUISE_WEB : MAY_DISGUISE).test(text);
}
const hex4 = (code: number): string => `\\u${code.toString(16).padStart(4, '0')}`;
const INVISIBLE_CLASS = INVISIBLE_RANGES.map(([lo, hi]) => (lo === hi ? hex4(lo) : `${hex4(lo)}-${hex4(hi)}`)).join('');
const MAY_DISGUISE = new RegExp(`[\\\\${INVISIBLE_CLASS}]|\\[U\\+`);
const MAY_DISGUISE_WEB = new RegExp(`[\\\\%&${INVISIBLE_CLASS}]|\\[U\\+`);

/**
 * The controls a backslash and a letter stand for: JSON's, and `\e` for ESC where a colour code follows
 * (`\e[31m`, as `printf` takes it). Not C's `\a` or `\v`: a backslash before a letter is as often a
 * Windows path's (`C:\apps`), and reading the letter as a control hid it from the skeletons.
 */
const LETTER_ESCAPES: Record<string, number> = { n: 10, r: 13, t: 9, b: 8, f: 12, e: 0x1b };
/** HTML's named references for the characters HTML escaping writes so. */
const NAMED: Record<string, number> = { amp: 38, lt: 60, gt: 62, quot: 34, apos: 39, nbsp: 0xa0 };

const HEX2 = /^[0-9A-Fa-f]{2}$/;
/** After the backslashes: `u{…}`, `uHHHH`, `xHH`, octal (`033`), a control's letter, or a quoted character. */
const BACKSLASH = /u\{([0-9A-Fa-f]{1,6})\}|u([0-9A-Fa-f]{4})|x([0-9A-Fa-f]{2})|([0-3][0-7]{2})|([nrtbf]|e(?=\[))|(["'/\\])/y;
/** HTML's numeric and named references. */
const ENTITY = /&(?:#(\d{1,7})|#[xX]([0-9A-Fa-f]{1,6})|(amp|lt|gt|quot|apos|nbsp));/y;
/** A character shown by its code, as the CLI and the dashboard show a bidirectional control (`[U+202E]`). */
const CODE_SHOWN = /\[U\+([0-9A-Fa-f]{4,6})\]/y;
/** The rest of an ANSI control sequence once its ESC is read: `[` (CSI), parameters, a final letter. */
const CSI = /\[[0-9;?]{0,32}[A-Za-z]/y;

/**
 * The character an escape at `i` stands for and where the escape ends, or null where none starts.
 * A run of backslashes before one counts as one: JSON of JSON doubles them (`\\u0007`).
 */
function escapeAt(text: string, i: number, web: boolean): [code: number, end: number] | null {
  const c = text.charCodeAt(i);
  if (c === 0x5c) {
    let j = i;
    while (text.charCodeAt(j) === 0x5c) j += 1;
    BACKSLASH.lastIndex = j;
    const m = BACKSLASH.exec(text);
    if (!m) return null;
    const end = BACKSLASH.lastIndex;
    const code =
      m[1] !== undefined
        ? parseInt(m[1], 16)
        : m[2] !== undefined
          ? parseInt(m[2], 16)
          : m[3] !== undefined
            ? parseInt(m[3], 16)
            : m[4] !== undefined
              ? parseInt(m[4], 8)
              : m[5] !== undefined
                ? (LETTER_ESCAPES[m[5]] as number)
                : (m[6] as string).charCodeAt(0);
    return code > 0x10ffff ? null : [code, end];
  }
  if (c === 0x5b) {
    CODE_SHOWN.lastIndex = i;
    const m = CODE_SHOWN.exec(text);
    const code = m ? parseInt(m[1] as string, 16) : -1;
    return m && code <= 0x10ffff ? [code, CODE_SHOWN.lastIndex] : null;
  }
  if (!web) return null;
  if (c === 0x25) {
    const hex = text.slice(i + 1, i + 3);
    return HEX2.test(hex) && parseInt(hex, 16) < 0x80 ? [parseInt(hex, 16), i + 3] : null;
  }
  if (c === 0x26) {
    ENTITY.lastIndex = i;
    const m = ENTITY.exec(text);
    if (!m) return null;
    const code = m[1] !== undefined ? parseInt(m[1], 10) : m[2] !== undefined ? parseInt(m[2], 16) : (NAMED[m[3] as string] as number);
    return code > 0x10ffff ? null : [code, ENTITY.lastIndex];
  }
  return null;
}

/** Whether a lower-cased code is a letter or digit (ASCII): what a skeleton keeps (masking.ts). */
export const isAlnum = (code: number): boolean => (code >= 0x61 && code <= 0x7a) || (code >= 0x30 && code <= 0x39);

/** Lower-cases an ASCII letter's code. */
const lower = (code: number): number => (code >= 0x41 && code <= 0x5a ? code + 32 : code);

/**
 * `text` as {@link ShownText} reads it, keeping what `keep` accepts of the characters seen (a lower-cased
 * code: the masker's skeletons keep letters and digits, its shown forms every visible character).
 * `web` false: `%41` and `&#65;` are not read (the skeletons: a password holding a `%` then two hex
 * digits, cut or re-cased, lost those digits and went unmasked), backslash escapes only.
 */
export function shownText(text: string, keep: (code: number) => boolean, web = true): ShownText {
  const n = text.length;
  const codes = new Uint16Array(n);
  const from = new Int32Array(n);
  const to = new Int32Array(n);
  let k = 0;
  // No allocation per character (a tuple, an array of units): masking runs this on every string of every
  // answer and log line, and per-character garbage made an API answer of 5,000 strings ~5× slower to mask.
  for (let i = 0; i < n;) {
    const c = text.charCodeAt(i);
    let code = c;
    let end = i + 1;
    if (c === 0x5c || c === 0x25 || c === 0x26 || c === 0x5b) {
      const escape = escapeAt(text, i, web);
      if (escape) [code, end] = escape;
      // A run of backslashes that starts no escape is read past whole, not once per backslash.
      else if (c === 0x5c) while (text.charCodeAt(end) === 0x5c) end += 1;
    }
    if (code === 0x1b) {
      CSI.lastIndex = end;
      if (CSI.exec(text)) end = CSI.lastIndex;
    }
    code = lower(code);
    if (!isInvisible(code) && keep(code)) {
      if (code > 0xffff) {
        // A code point beyond the BMP from `\u{…}` or `&#…;` is two units; each stands for the whole escape.
        codes[k] = 0xd800 + ((code - 0x10000) >> 10);
        from[k] = i;
        to[k] = end;
        k += 1;
        code = 0xdc00 + ((code - 0x10000) & 0x3ff);
      }
      codes[k] = code;
      from[k] = i;
      to[k] = end;
      k += 1;
    }
    i = end;
  }
  let chars = '';
  for (let at = 0; at < k; at += 8192) chars += String.fromCharCode(...codes.subarray(at, Math.min(k, at + 8192)));
  return { chars, from: from.subarray(0, k), to: to.subarray(0, k) };
}
