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
/** Longest open tag looked at (GitHub's comment limit): the scan stops at the next `<` outside quotes, so it stays linear. */
const MAX_TAG = 65_536;

const blank = (s: string) => s.replace(/[^\n]/g, ' ');
/** Longest link destination looked at for a definition's title. */
const MAX_DEST = 2_000;

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
  const otherEnds: Record<string, number[]> = { '?>': [], ']]>': [], '>': [] };
  for (const m of lower.matchAll(/<\/(pre|code|a|style|script|blockquote)\s*>|-->|\?>|\]\]>|>|\n[ \t]*\n/g)) {
    if (m[1]) closes.get(m[1])?.push(m.index + m[0].length);
    else if (m[0] === '-->') commentEnds.push(m.index + 3);
    else if (m[0] in otherEnds) (otherEnds[m[0]] as number[]).push(m.index + m[0].length);
    else paragraphEnds.push(m.index);
  }
  // A line that begins with a tag is an HTML block, handed to the HTML parser whole: a comment left open
  // in it runs to the end of the text there.
  const htmlLine = (at: number) => {
    const start = lower.lastIndexOf('\n', at - 1) + 1;
    return at - start < 200 && /^[ ]{0,3}<[a-z/!?]/.test(lower.slice(start, at + 2));
  };
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
  const opener = /<!--|<!\[cdata\[|<![a-z]|<\?|<(\/?)([a-z][a-z0-9-]*)/g;
  for (let m = opener.exec(lower); m; m = opener.exec(lower)) {
    const at = m.index;
    if (at < copied) continue;
    if (m[0] === '<!--') {
      // `<!-->` and `<!--->` are whole (empty) comments.
      const empty = /^<!---?>/.exec(lower.slice(at, at + 5));
      const close = empty ? at + empty[0].length : firstAtOrAfter(commentEnds, at + 4);
      // Left open: an HTML block to the text's end when it starts a line or sits in an HTML line; in a
      // line of prose, literal text.
      const end = close >= 0 ? close : startsLine(at) || htmlLine(at) ? text.length : -1;
      if (end >= 0) hide(at, end);
      opener.lastIndex = Math.max(at + 4, copied);
      continue;
    }
    if (!m[2]) {
      // A declaration (`<!DOCTYPE …>`), a processing instruction (`<?php … ?>`) or CDATA: shown as nothing.
      const closer = m[0] === '<?' ? '?>' : m[0] === '<![cdata[' ? ']]>' : '>';
      const close = firstAtOrAfter(otherEnds[closer] as number[], at + m[0].length);
      const end = close >= 0 ? close : startsLine(at) ? text.length : -1;
      if (end >= 0) hide(at, end);
      opener.lastIndex = Math.max(at + m[0].length, copied);
      continue;
    }
    const name = m[2] as string;
    // `<y, …>` or `<https://…>`: no tag name ends there (CommonMark: whitespace, `/` or `>` follows it).
    if (!/^[\s/>]|^$/.test(lower.slice(opener.lastIndex, opener.lastIndex + 1))) continue;
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
  const at: Record<string, number[]> = { ')': [], ']': [], '\n': [], '"': [], "'": [] };
  for (let i = 0; i < text.length; i++) at[text[i] as string]?.push(i);
  const hide = (from: number, to: number) => {
    for (let i = from; i < to; i++) if (out[i] !== '\n') out[i] = ' ';
  };
  const paragraphs: number[] = [];
  for (const m of text.matchAll(/\n[ \t]*\n/g)) paragraphs.push(m.index);
  const breaks = new Set(paragraphs);
  /** The end of the paragraph holding `i` (a link, its title, a definition's title stay inside one). */
  const paragraphEnd = (i: number) => {
    const end = firstAtOrAfter(paragraphs, i);
    return end < 0 ? text.length : end;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\')
      i += 1; // `\[`, `\]`: literal brackets
    else if (c === '\n' && breaks.has(i)) open.length = 0;
    else if (c === '[') open.push(i);
    else if (c === ']' && open.length) {
      const from = open.pop() as number;
      const next = text[i + 1];
      if (next === '(' || next === '[') {
        // Up to its closer within the paragraph: a title may sit on the lines after the destination.
        const end = firstAtOrAfter(at[next === '(' ? ')' : ']'] as number[], i + 2);
        if (end >= 0 && end < paragraphEnd(i)) {
          // An inner link or image (a badge in a link): the outer `[` stays open and takes it in.
          hide(from, end + 1);
          i = end;
        }
      } else if (next === ':' && /(^|\n)[ ]{0,3}$/.test(text.slice(Math.max(0, from - 4), from))) {
        // A link reference definition: `[ref]: url "title"` shows nothing, its title over lines included
        // (`[//]: # (a comment)`).
        const line = firstAtOrAfter(at['\n'] as number[], i);
        const title = /^:[ \t]*\S+[ \t]*\n?[ \t]*(["'(])/.exec(text.slice(i + 1, i + 1 + MAX_DEST));
        let end = line < 0 ? text.length : line;
        if (title) {
          const closer = title[1] === '(' ? ')' : (title[1] as string);
          const close = firstAtOrAfter(at[closer] as number[], i + 1 + title[0].length);
          if (close >= 0 && close < paragraphEnd(i)) end = close + 1;
        }
        hide(from, end);
      }
    }
  }
  // GFM's extended autolinks: a URL's text is a link, and `?q=@rmapp` in it no mention.
  for (const m of text.matchAll(/(?:https?:\/\/|www\.)[^\s<]+/g)) hide(m.index, m.index + m[0].length);
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
      // Blank is spaces and tabs only (CommonMark): a line of NBSP or form feed continues the quote.
      if (/^[ \t]*$/.test(line)) {
        quoting = false;
        return line;
      }
      if (/^[ \t]*(?:(?:[-+*]|\d{1,9}[.)])[ \t]+)*>/.test(line)) quoting = true;
      // A line that starts another block (a list item, a heading, a fence, a rule, HTML) is no lazy
      // continuation: the quote's paragraph ends before it.
      else if (/^ {0,3}(?:[-+*][ \t]|\d{1,9}[.)][ \t]|#{1,6}(?:[ \t]|$)|```|~~~|<[a-zA-Z/!?]|(?:[-*_][ \t]*){3,}$)/.test(line))
        quoting = false;
      return quoting ? '' : line;
    })
    .join('\n');
}
