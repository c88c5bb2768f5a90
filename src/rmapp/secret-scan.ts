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
      } else this.mode = this.inHunk && (first === '-' || first === ' ' || first === '\\') ? 'skip' : 'header';
    }
    if (this.mode === 'added') {
      this.added += complete ? `${text}\n` : text;
      if (this.added.length > this.carried + WINDOW_CHARS) this.check(false);
    } else if (this.mode === 'header' && this.head.length < MAX_HEADER_CHARS)
      this.head += text.slice(0, MAX_HEADER_CHARS - this.head.length);
    if (!complete) return;
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
    } else if (line.startsWith('@@')) this.inHunk = true;
  }

  /** Records `header` (and the label) when `text` holds a secret. */
  private look(text: string, header: string): void {
    const hit = this.find(text);
    if (!hit) return;
    this.found = header;
    this.what = typeof hit === 'string' ? hit : null;
  }

  private check(fileEnded: boolean): void {
    if (this.found === null && this.added) this.look(this.added, this.header);
    this.added = fileEnded ? '' : overlapOf(this.added);
    this.carried = this.added.length;
  }
}
