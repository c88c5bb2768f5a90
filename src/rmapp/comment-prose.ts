/**
 * What of a comment GitHub shows as the author's own words, for telling whether it asks the bot for
 * something: HTML comments, the inside of elements GitHub links no mention in, the attributes of every
 * tag, the text of Markdown links and images, and quoted lines are blanked (line breaks kept). Close to
 * CommonMark and GitHub's mention filter (which skips text under `pre`, `code`, `a`, `style` and
 * `script`), not exact; where the two disagree this errs towards the text GitHub renders. Linear in the
 * text's length — comments are attacker-controlled and parsed on the webhook's request path: every
 * search is a lookup in positions found by one pass, never a scan from each candidate.
 */

/**
 * Elements whose content is shown, not said (`blockquote`: someone else's words; `del`, `s`, `strike`:
 * words struck out, withdrawn — GitHub shows them crossed out).
 */
const SHOWN = ['pre', 'code', 'a', 'style', 'script', 'blockquote', 'del', 's', 'strike'] as const;
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
  for (const m of lower.matchAll(/<\/(pre|code|a|style|script|blockquote|del|s|strike)\s*>|-->|\?>|\]\]>|>|\n[ \t]*\n/g)) {
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

/** Text that starts another block (a list item, a heading, a fence, a rule, HTML), not paragraph text. */
const OTHER_BLOCK =
  /^(?:[-+*](?:[ \t]|$)|\d{1,9}[.)](?:[ \t]|$)|#{1,6}(?:[ \t]|$)|```|~~~|<[a-zA-Z/!?]|(?:-[ \t]*){3,}$|(?:\*[ \t]*){3,}$|(?:_[ \t]*){3,}$)/;

/** The columns `text` spans (tabs to the next multiple of 4). */
function columnsOf(text: string): number {
  let col = 0;
  for (const c of text) col = c === '\t' ? col + 4 - (col % 4) : col + 1;
  return col;
}

/** The columns of leading spaces and tabs. */
function leadColumns(text: string): number {
  return columnsOf(/^[ \t]*/.exec(text)?.[0] ?? '');
}

/**
 * A quote line's parts: the column its first `>` stands at, the column of the list item it is in (0
 * outside lists), and what follows its markers (`>`, and list markers inside the quote) — or null for
 * a line that is no quote.
 */
function quoteLine(line: string): { marker: number; container: number; content: string } | null {
  const open = /^[ \t]*(?:((?:[-+*]|\d{1,9}[.)])[ \t]+)*)(?=>)/.exec(line);
  if (!open) return null;
  const marker = columnsOf(open[0]);
  const container = open[1] ? marker : 0;
  let content = line.slice(open[0].length);
  // `>` then one optional space, as many times as the quote is nested (`>  >`: up to 3 spaces between).
  for (let m = /^> ?(?: {0,3}(?=>))?/.exec(content); m && m[0]; m = /^> ?(?: {0,3}(?=>))?/.exec(content))
    content = content.slice(m[0].length);
  content = content.replace(/^(?:[ \t]{0,3}(?:[-+*]|\d{1,9}[.)])(?:[ \t]|$)[ \t]{0,3})+/, '');
  return { marker, container, content };
}

/** A quote line's content is paragraph text (not empty, not another block, not indented code): the next line may continue it lazily. */
function quoteHoldsText(quote: { content: string }): boolean {
  return quote.content.trim() !== '' && leadColumns(quote.content) < 4 && !OTHER_BLOCK.test(quote.content.trimStart());
}

/** True when `line` is a block quote line whose content opens a paragraph (for commands.ts `withoutCode`). */
export function quoteOpensParagraph(line: string): boolean {
  const quote = quoteLine(line);
  return !!quote && quoteHoldsText(quote);
}

/**
 * Quoted lines blanked: a line that is a block quote (`>`, also inside list items) and the lines that
 * continue its paragraph without a `>` (CommonMark's lazy continuation: GitHub shows them in the quote).
 * Only a paragraph continues lazily: after a quote line holding nothing (`>`), a fence, a heading, a
 * rule or HTML, the next line without `>` is outside the quote (it was hidden as quoted).
 */
export function withoutQuotes(text: string): string {
  /** Inside a quote (this line is blanked)… */
  let quoting = false;
  /** …and its paragraph is open, so a line without `>` continues it. */
  let lazy = false;
  /** The column of the list item the quote is in: another block starts within 3 columns of it. */
  let container = 0;
  /** The line before was paragraph text (quoted or not): a line indented 4 past its container continues it. */
  let openText = false;
  return text
    .split('\n')
    .map((line) => {
      // Blank is spaces and tabs only (CommonMark): a line of NBSP or form feed continues the quote.
      if (/^[ \t]*$/.test(line)) {
        quoting = lazy = openText = false;
        return line;
      }
      const quote = quoteLine(line);
      const lead = leadColumns(line);
      // Paragraph text goes on (as text, not a quote) on a line 4 columns past its list item, and on a
      // quote in an ordered item not starting at 1 (which cannot interrupt a paragraph).
      const continues =
        openText &&
        (lead - container >= 4 ||
          (/^[ \t]*(?:\d{1,9})[.)]/.exec(line)?.[0].trim().slice(0, -1) !== undefined && !/^[ \t]*0*1[.)]/.test(line)));
      if (quote && !continues) {
        quoting = true;
        lazy = openText = quoteHoldsText(quote);
        container = quote.container;
      } else {
        const block = lead - container <= 3 && OTHER_BLOCK.test(line.trimStart());
        if (!lazy || block) quoting = lazy = false;
        // A list item's line is text when it holds some after its markers; its content column is the
        // container of the lines after it. A line left of the container, not continuing a paragraph,
        // has left the list.
        const item = /^[ \t]*(?:(?:[-+*]|\d{1,9}[.)])(?:[ \t]+|$))+/.exec(line);
        if (item) container = columnsOf(item[0]);
        else if (lead < container && !openText) container = 0;
        openText = item ? line.length > item[0].length && !OTHER_BLOCK.test(line.slice(item[0].length)) : !block;
      }
      return quoting ? '' : line;
    })
    .join('\n');
}
