/**
 * What of a comment GitHub shows as the author's own words, for telling whether it asks the bot for
 * something: HTML comments, the inside of elements GitHub links no mention in, the attributes of every
 * tag, the text of Markdown links and images, and quoted lines are blanked (line breaks kept). Close to
 * CommonMark and GitHub's mention filter (which skips text under `pre`, `code`, `a`, `style` and
 * `script`), not exact; where the two disagree this errs towards the text GitHub renders. Linear in the
 * text's length — comments are attacker-controlled and parsed on the webhook's request path: every
 * search is a lookup in positions found by one pass, never a scan from each candidate.
 */

/** Elements whose content is shown, not said (`blockquote`: someone else's words). */
const SHOWN = ['pre', 'code', 'a', 'style', 'script', 'blockquote'] as const;
/** Of those, the ones that open an HTML block when they start a line: left open, they run to the text's end. */
const BLOCK = new Set(['pre', 'style', 'script', 'blockquote']);
/** Longest open tag looked at: a longer one is taken as text. */
const MAX_TAG = 2_000;

const blank = (s: string) => s.replace(/[^\n]/g, ' ');

/** Sorted positions, and the first one at or after `from` (binary search). */
function firstAtOrAfter(sorted: number[], from: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((sorted[mid] as number) < from) lo = mid + 1;
    else hi = mid;
  }
  return lo < sorted.length ? (sorted[lo] as number) : -1;
}

/** The end (after `>`) of the open tag at `at`, quotes respected, within one paragraph; -1 when it is no tag. */
function openTagEnd(text: string, at: number): number {
  let quote = '';
  const stop = Math.min(text.length, at + MAX_TAG);
  for (let i = at + 1; i < stop; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '>') return i + 1;
    else if (c === '<') return -1;
    if (c === '\n' && text[i + 1] === '\n') return -1;
  }
  return -1;
}

/** Blanks HTML comments, shown elements and tag attributes. */
export function withoutHiddenHtml(text: string): string {
  const lower = text.toLowerCase();
  // One pass for the positions every later search looks up.
  const closes = new Map<string, number[]>(SHOWN.map((n) => [n, []]));
  const commentEnds: number[] = [];
  const paragraphEnds: number[] = [];
  for (const m of lower.matchAll(/<\/(pre|code|a|style|script|blockquote)\s*>|-->|\n[ \t]*\n/g)) {
    if (m[1]) closes.get(m[1])?.push(m.index + m[0].length);
    else if (m[0] === '-->') commentEnds.push(m.index + 3);
    else paragraphEnds.push(m.index);
  }
  const startsLine = (at: number) => /(^|\n)[ ]{0,3}$/.test(lower.slice(Math.max(0, at - 4), at));
  const paragraphEnd = (from: number) => {
    const end = firstAtOrAfter(paragraphEnds, from);
    return end < 0 ? text.length : end;
  };
  const parts: string[] = [];
  let copied = 0;
  const hide = (from: number, to: number) => {
    parts.push(text.slice(copied, from), blank(text.slice(from, to)));
    copied = to;
  };
  const opener = /<!--|<(\/?)([a-z][a-z0-9-]*)/g;
  for (let m = opener.exec(lower); m; m = opener.exec(lower)) {
    const at = m.index;
    if (at < copied) continue;
    if (m[0] === '<!--') {
      // `<!-->` and `<!--->` are whole (empty) comments.
      const empty = /^<!---?>/.exec(lower.slice(at, at + 5));
      const close = empty ? at + empty[0].length : firstAtOrAfter(commentEnds, at + 4);
      // Left open: an HTML block to the text's end when it starts a line; in a line, literal text.
      const end = close >= 0 ? close : startsLine(at) ? text.length : -1;
      if (end >= 0) hide(at, end);
      opener.lastIndex = Math.max(at + 4, copied);
      continue;
    }
    const name = m[2] as string;
    let tagEnd = openTagEnd(lower, at);
    if (tagEnd < 0) {
      // `if x <a then y`: no tag, text — except a block element's opening at the start of a line,
      // which begins an HTML block with or without its `>` (CommonMark's first kind).
      if (m[1] || !BLOCK.has(name) || !startsLine(at) || !/^[\s>]|^$/.test(lower.slice(at + 1 + name.length, at + 2 + name.length)))
        continue;
      tagEnd = at + 1 + name.length;
    }
    if (m[1] || !(SHOWN as readonly string[]).includes(name)) {
      // Any other tag, or a closing one: its attributes (`<img alt="…">`) are not words on screen.
      hide(at, tagEnd);
      opener.lastIndex = tagEnd;
      continue;
    }
    const close = firstAtOrAfter(closes.get(name) as number[], tagEnd);
    const end = close >= 0 ? close : BLOCK.has(name) && startsLine(at) ? text.length : paragraphEnd(tagEnd);
    hide(at, end);
    opener.lastIndex = end;
  }
  parts.push(text.slice(copied));
  return parts.join('');
}

/**
 * The text of Markdown links and images blanked, `[text](url)` and `[text][ref]` (GitHub links no
 * mention inside a link, and an image's text is not shown), with link reference definitions. One pass:
 * brackets are paired on a stack that a blank line empties.
 */
export function withoutLinks(text: string): string {
  const out = text.split('');
  const open: number[] = [];
  // Positions of `)`, `]` and line breaks, looked up rather than searched for from each bracket.
  const at: Record<string, number[]> = { ')': [], ']': [], '\n': [] };
  for (let i = 0; i < text.length; i++) at[text[i] as string]?.push(i);
  const hide = (from: number, to: number) => {
    for (let i = from; i < to; i++) if (out[i] !== '\n') out[i] = ' ';
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\n' && text[i + 1] === '\n') open.length = 0;
    else if (c === '[') open.push(i);
    else if (c === ']' && open.length) {
      const from = open.pop() as number;
      const next = text[i + 1];
      if (next === '(' || next === '[') {
        const end = firstAtOrAfter(at[next === '(' ? ')' : ']'] as number[], i + 2);
        const line = firstAtOrAfter(at['\n'] as number[], i + 2);
        if (end >= 0 && (line < 0 || end < line)) {
          hide(from, end + 1);
          open.length = 0;
          i = end;
        }
      } else if (next === ':' && /(^|\n)[ ]{0,3}$/.test(text.slice(Math.max(0, from - 4), from))) {
        // A link reference definition: `[ref]: url "title"` shows nothing.
        const line = firstAtOrAfter(at['\n'] as number[], i);
        hide(from, line < 0 ? text.length : line);
      }
    }
  }
  return out.join('');
}

/**
 * Quoted lines blanked: a line that is a block quote (`>`, also inside list items) and the lines that
 * continue its paragraph without a `>` (CommonMark's lazy continuation: GitHub shows them in the quote).
 */
export function withoutQuotes(text: string): string {
  let quoting = false;
  return text
    .split('\n')
    .map((line) => {
      if (line.trim() === '') {
        quoting = false;
        return line;
      }
      if (/^[ \t]*(?:(?:[-+*]|\d{1,9}[.)])[ \t]+)*>/.test(line)) quoting = true;
      return quoting ? '' : line;
    })
    .join('\n');
}
