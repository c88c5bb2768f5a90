/**
 * Finds a configured secret in what a commit adds, before it is made: the agent holds its own API key
 * (and the tests whatever `sandbox.env` passes them), and a prompt-injected agent can write it into a
 * file — `env | base64 > notes.txt` — which the service would commit and push, readable by anyone who
 * can read the branch, with no network at all. The masker knows each secret's forms (whole, base64 or
 * hex, wrapped or spaced; src/rmapp/masking.ts `holdsSecret`); a program that wants to leak what it
 * holds can still disguise it beyond them (README, "Sandbox and threat model").
 */
import { StringDecoder } from 'node:string_decoder';
import { createMasker } from './masking.ts';

/**
 * What a commit check looks for: a text's finding — a label naming what of the secrets it holds
 * (`the value of NPM_TOKEN (sandbox.env)`), or just `true` — or null/false when it holds none.
 */
export type SecretFinder = (text: string) => string | boolean | null;

/**
 * A {@link SecretFinder} over labelled secrets (config.ts `sandboxSecretSources`): the label of the
 * first source whose secret `text` holds, in any form the masker knows. One masker over all of them
 * reads each text first, so a commit holding none costs what it did with a single list.
 */
export function secretFinder(sources: readonly { label: string; secrets: readonly string[] }[]): SecretFinder {
  const any = createMasker(sources.flatMap((s) => s.secrets));
  const each = sources.map((s) => ({ label: s.label, holds: createMasker(s.secrets).holdsSecret }));
  return (text) => (any.holdsSecret(text) ? (each.find((s) => s.holds(text))?.label ?? true) : null);
}

/** Added text checked at once; the end of each window is checked again with the next one. */
const WINDOW_CHARS = 1024 * 1024;
/**
 * What a window keeps of the one before, so a secret's form cut by the window's edge is seen whole:
 * the end holding this many letters and digits — more than the longest form of a secret (a 4,096-bit
 * private key's base64 is ~3.2 K of them) — whatever stands between them (the masker's forms skip
 * whitespace and, spelled out, anything but letters and digits: a secret spaced by 600 blanks per
 * character once straddled a window kept by its raw length).
 */
const OVERLAP_ALNUM = 16 * 1024;
/** But never more than this much raw text, however little of it is letters and digits. */
const OVERLAP_MAX_CHARS = 4 * WINDOW_CHARS;

/** The end of `text` holding {@link OVERLAP_ALNUM} letters and digits (at most {@link OVERLAP_MAX_CHARS}). */
function overlapOf(text: string): string {
  let count = 0;
  const stop = Math.max(0, text.length - OVERLAP_MAX_CHARS);
  for (let i = text.length - 1; i >= stop; i -= 1) {
    const c = text.charCodeAt(i) | 0x20; // lower-cases ASCII letters
    if (((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39)) && ++count >= OVERLAP_ALNUM) return text.slice(i);
  }
  return text.slice(stop);
}

/** What a run of characters other than letters and digits is shortened to when carried (secret-scan.ts `squeeze`). */
const SQUEEZED_RUN = 128;
/** Such a run, long enough to shorten. */
const LONG_RUN_CHARS = 256;

/**
 * Where the runs of at least {@link LONG_RUN_CHARS} characters other than letters and digits stand in
 * `text` from `from` on (start, end; a run cut by `from` is shortened all the same), read once: a regular expression `[^A-Za-z0-9]{256,}` tried again at every
 * character of each shorter run, quadratic in the runs a squeezed text is made of (a 32 MB file of
 * letters 300 blanks apart took 11 s instead of 0.8 s).
 */
function longRuns(text: string, from: number): [number, number][] {
  const runs: [number, number][] = [];
  let start = -1;
  for (let i = from; i <= text.length; i += 1) {
    const c = i < text.length ? text.charCodeAt(i) : 0x30; // the end ends a run
    const alnum = (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a);
    if (!alnum && start < 0) start = i;
    else if (alnum && start >= 0) {
      if (i - start >= LONG_RUN_CHARS) runs.push([start, i]);
      start = -1;
    }
  }
  return runs;
}

/** Where the added lines of a hunk start in the window: their offset there and their line in the new file. */
type Segment = { offset: number; line: number };

/** A header line longer than this (a file name) is cut: what follows is never a secret's only copy. */
const MAX_HEADER_CHARS = 64 * 1024;

/**
 * Reads `git diff --text -U0` output chunk by chunk and remembers the first file whose added lines, or
 * whose name, hold a secret. Memory is bounded whatever the diff: an added line goes into the window
 * as it arrives, even one with no line break for megabytes (joining each chunk to a growing partial
 * line was quadratic: a 32 MB line took 5 s), removed lines are skipped, header lines are cut at
 * {@link MAX_HEADER_CHARS}.
 */
export class AddedSecretScanner {
  /** The `diff --git` line of the first file found holding a secret, or null. */
  found: string | null = null;
  /** What was found there, as the finder labels it (null for a plain `holdsSecret`). */
  what: string | null = null;
  /**
   * The lines of the new file the secret was found on (the first and the last: a base64 form wrapped
   * over several), or null when it was found in the file's name. A line is what ends at a line break,
   * in a binary file too (`git diff --text`).
   */
  lines: { first: number; last: number } | null = null;
  /** Where the added lines of each hunk in `added` start: their offset there and their line in the new file. */
  private segments: { offset: number; line: number }[] = [];
  /** The new file's line of the next added line (the hunk header's `+c`), and whether a hunk just began. */
  private nextLine = 1;
  private hunkStarts = false;
  private readonly decoder = new StringDecoder('utf8');
  /** What the current line is: not known yet (its first character not read), added, skipped, or a header. */
  private mode: 'start' | 'added' | 'skip' | 'header' = 'start';
  private head = '';
  private header = '';
  private inHunk = false;
  private added = '';
  /** The length of `added` kept from the last window: the next is checked once a window more has come. */
  private carried = 0;

  constructor(private readonly find: SecretFinder) {}

  /** Feed the next chunk of the diff. */
  write(chunk: Buffer): void {
    if (this.found !== null) return;
    const text = this.decoder.write(chunk);
    for (let from = 0; from < text.length && this.found === null;) {
      const nl = text.indexOf('\n', from);
      this.piece(text.slice(from, nl === -1 ? text.length : nl), nl !== -1);
      if (nl === -1) break;
      from = nl + 1;
    }
  }

  /** The diff ended: check what is left. */
  end(): string | null {
    const rest = this.decoder.end();
    if (rest) this.piece(rest, false);
    if (this.mode !== 'start') this.piece('', true);
    this.check(true);
    return this.found;
  }

  /** A piece of the current line; `complete` when the line ends with it. */
  private piece(text: string, complete: boolean): void {
    if (this.mode === 'start' && text !== '') {
      const first = text[0];
      // In a hunk, `+` starts an added line (even one whose text starts with `++ `), `-` a removed one;
      // anything else (`diff --git`, `@@`, `index`, `+++ b/…` before the first hunk) is a header.
      if (this.inHunk && first === '+') {
        this.mode = 'added';
        text = text.slice(1);
        if (this.hunkStarts) this.segments.push({ offset: this.added.length, line: this.nextLine });
        this.hunkStarts = false;
      } else this.mode = this.inHunk && (first === '-' || first === ' ' || first === '\\') ? 'skip' : 'header';
    }
    if (this.mode === 'added') {
      this.added += complete ? `${text}\n` : text;
      if (this.added.length > this.carried + WINDOW_CHARS) this.check(false);
    } else if (this.mode === 'header' && this.head.length < MAX_HEADER_CHARS)
      this.head += text.slice(0, MAX_HEADER_CHARS - this.head.length);
    if (!complete) return;
    if (this.mode === 'added') this.nextLine += 1;
    if (this.mode === 'header' || this.mode === 'start') this.headerLine(this.head);
    this.mode = 'start';
    this.head = '';
  }

  private headerLine(line: string): void {
    if (line.startsWith('diff --git ')) {
      this.check(true);
      this.header = line;
      this.inHunk = false;
      // A file's name may be the secret (or hold it).
      this.look(line, line);
    } else if (line.startsWith('@@')) {
      this.inHunk = true;
      // `@@ -a,b +c,d @@`: the hunk's added lines are the new file's c, c+1, …
      this.nextLine = Number(/^@@+ -\d+(?:,\d+)? \+(\d+)/.exec(line)?.[1] ?? 1);
      this.hunkStarts = true;
    }
  }

  /** Records `header` (and the label) when `text` holds a secret; `added`: `text` is the added lines, whose lines are found too. */
  private look(text: string, header: string, added = false): void {
    const hit = this.find(text);
    if (!hit) return;
    this.found = header;
    this.what = typeof hit === 'string' ? hit : null;
    if (added) this.lines = this.linesOf(text);
  }

  /**
   * The first and last line of the new file that the first secret in `text` (the added lines) spans: where
   * the shortest run of whole lines from the start that holds one ends, then where the shortest run
   * ending there starts. Both by halving (holding a secret only grows with the text): ~40 checks of the
   * window, on a hit only.
   */
  private linesOf(text: string): { first: number; last: number } {
    const ends: number[] = [];
    for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) ends.push(i + 1);
    if (ends.at(-1) !== text.length) ends.push(text.length);
    const starts = [0, ...ends.slice(0, -1)];
    let lo = 0;
    let hi = ends.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.find(text.slice(0, ends[mid]))) hi = mid;
      else lo = mid + 1;
    }
    const last = lo;
    const end = ends[last] as number;
    lo = 0;
    hi = last;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.find(text.slice(starts[mid], end))) lo = mid;
      else hi = mid - 1;
    }
    const lineAt = (offset: number): number => {
      const seg = this.segments.findLast((s) => s.offset <= offset) ?? { offset: 0, line: 1 };
      let line = seg.line;
      for (let i = text.indexOf('\n', seg.offset); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) line += 1;
      return line;
    };
    return { first: lineAt(starts[lo] as number), last: lineAt(starts[last] as number) };
  }

  private check(fileEnded: boolean): void {
    if (this.found === null && this.added) this.look(this.added, this.header, true);
    const kept = fileEnded ? '' : overlapOf(this.added);
    const cut = this.added.length - kept.length;
    if (fileEnded) this.segments = [];
    else if (cut > 0) {
      // What is kept starts at `cut`: the segment it starts in begins there now, at the line it reached.
      const first = this.segments.findLast((s) => s.offset <= cut);
      let line = first?.line ?? 1;
      if (first) for (let i = this.added.indexOf('\n', first.offset); i >= 0 && i < cut; i = this.added.indexOf('\n', i + 1)) line += 1;
      this.segments = [
        ...(first ? [{ offset: 0, line }] : []),
        ...this.segments.filter((s) => s.offset > cut).map((s) => ({ offset: s.offset - cut, line: s.line })),
      ];
    }
    this.added = kept;
    // What was carried before is squeezed already: from a run's length before its end.
    if (!fileEnded) this.squeeze(Math.max(0, this.carried - cut - LONG_RUN_CHARS));
    this.carried = this.added.length;
  }

  /**
   * Shortens each long run of characters other than letters and digits in what is carried to the next
   * window ({@link SQUEEZED_RUN}: its two ends kept), so that the carried text holds the 16 K letters
   * and digits of {@link OVERLAP_ALNUM} however far apart they stand: a token spaced 150,000 blanks per
   * character straddled windows by more than the {@link OVERLAP_MAX_CHARS} carried, and was pushed. No
   * form of a secret needs such a run (its letters and digits skip it; base64 and hex across breaks skip
   * blanks; a whole value holds none). The lines the run's middle held are kept in a segment after it.
   * Runs are looked for from `scanFrom` on: what was carried before is squeezed already.
   */
  private squeeze(scanFrom: number): void {
    const text = this.added;
    const runs = longRuns(text, scanFrom);
    if (!runs.length) return;
    const segments = this.segments;
    // The new file's line at an offset of `text`, asked in increasing order (as linesOf reads segments).
    let next = 0;
    let pos = 0;
    let line = 1;
    // The next line break at or after `pos` (-1: none left), so that each is looked for once.
    let nl = text.indexOf('\n');
    const lineAt = (offset: number): number => {
      for (; next < segments.length && (segments[next] as Segment).offset <= offset; next += 1)
        ({ offset: pos, line } = segments[next] as Segment);
      if (nl >= 0 && nl < pos) nl = text.indexOf('\n', pos);
      for (; nl >= 0 && nl < offset; nl = text.indexOf('\n', nl + 1)) line += 1;
      pos = offset;
      return line;
    };
    const kept: Segment[] = [];
    let out = '';
    let from = 0;
    let removed = 0;
    // The segments before `to` (in order, each read once), but those in a run's dropped middle.
    let at = 0;
    const keep = (to: number): void => {
      for (; at < segments.length && (segments[at] as Segment).offset < to; at += 1) {
        const s = segments[at] as Segment;
        if (s.offset >= from) kept.push({ offset: s.offset - removed, line: s.line });
      }
    };
    for (const [start, end] of runs) {
      const dropFrom = start + SQUEEZED_RUN / 2;
      const dropTo = end - SQUEEZED_RUN / 2;
      keep(dropFrom);
      out += text.slice(from, dropFrom);
      const after = lineAt(dropTo);
      removed += dropTo - dropFrom;
      kept.push({ offset: dropTo - removed, line: after });
      from = dropTo;
    }
    keep(Infinity);
    this.added = out + text.slice(from);
    this.segments = kept;
  }
}
