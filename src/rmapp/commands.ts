/**
 * Commands in issue and PR comments: `@<bot> implement [template] [--option value]`, `cancel`,
 * `retry`, `status`, `approve`, `reject`, `help`. Parsing is pure and total: any mention of the bot
 * becomes a command, and anything not understood becomes `help` with the reason, so the user always
 * gets an answer. The text is only ever data: it is never passed to a shell.
 */
import { withoutBidiControls } from '../persistence/bidi-controls.ts';
import { parseDuration } from '../persistence/retention.ts';
import { TEMPLATE_NAMES, templateNamed, type TemplateName } from '../machines/issue-templates.ts';
import { codeSpan } from './run-texts.ts';
import { quoteOpensParagraph, withoutHiddenHtml, withoutLinks, withoutQuotes } from './comment-prose.ts';
import { withoutStruckText } from './struck-text.ts';

export interface ImplementOptions {
  maxTestAttempts?: number;
  approvalTimeoutMs?: number;
}

export type Command =
  | { kind: 'implement'; template: TemplateName; options: ImplementOptions }
  | { kind: 'cancel' | 'retry' | 'status' | 'approve' | 'reject' }
  | { kind: 'help'; reason?: string };

const SIMPLE = new Set(['cancel', 'retry', 'status', 'approve', 'reject', 'help']);

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The regular expression of a mention of the bot (`@rmapp`, also `@rmapp[bot]`). */
export function mentionPattern(botName: string, flags = 'i'): RegExp {
  const base = botName.replace(/\[bot\]$/, '');
  // Not after `/` (`https://example.com/@rmapp` is a link); and after the name, as GitHub's mention filter
  // has it: no `/` (`@rmapp/maintainers` is a team), dots only before a space or the end (`@rmapp.io`
  // is an e-mail's domain), else no letter, digit, `_`, `-` or `.`.
  return new RegExp(`(^|[^\\w@/])@${escape(base)}(\\[bot\\])?(?!\\/)(?=\\.+[ \\t\\W]|\\.+$|[^0-9a-zA-Z_.-]|$)`, flags);
}

/** The columns `whitespace` spans from column `from`, tabs to the next multiple of 4 (CommonMark). */
function columns(whitespace: string, from = 0): number {
  let col = from;
  for (const c of whitespace) col = c === '\t' ? col + 4 - (col % 4) : col + 1;
  return col - from;
}

/**
 * The comment without its code: fenced blocks (``` or ~~~, also inside list items), indented code
 * blocks and inline code spans become blanks, line breaks kept. GitHub does not notify for a mention
 * inside code, and a comment that quotes "`@rmapp implement`" while explaining the bot is not asking it
 * to run. Linear in the text's length: a comment is attacker-controlled and parsed on the webhook's
 * request path (a backtracking regular expression took 4.7 s on a 65,536-character comment).
 *
 * Close to CommonMark, not exact: list items are tracked by their content columns; a fence opens up to
 * 3 columns past its container (after any list markers) and closes at the same character, at least as
 * long, alone on its line at any indentation, or when its list item ends; a line 4 columns past its
 * container is code unless it continues an open paragraph (a heading, a rule, an empty item or a quote
 * with no paragraph text leaves none open); a code span may continue onto the next line of its
 * paragraph. Compared with commonmark.js on random comments, what is left differs on some tab widths
 * and on HTML blocks (which GitHub shows as text, so a mention in one counts).
 */
export function withoutCode(text: string): string {
  const lines = text.split('\n');
  const out: string[] = [];
  /** The open fence: its marker, and the content column of the list item it is in (it ends with it). */
  let fence: { mark: string; container: number } | null = null;
  /** The content column of each open list item, innermost last (CommonMark's list item width). */
  const items: number[] = [];
  /** The innermost list item is still empty (its marker line had nothing after it). */
  let emptyItem = false;
  let paragraph: string[] = [];
  const endParagraph = () => {
    if (paragraph.length) for (const l of withoutCodeSpans(paragraph.join('\n')).split('\n')) out.push(l);
    paragraph = [];
  };
  for (const line of lines) {
    const lead = /^[ \t]*/.exec(line)?.[0] ?? '';
    const col = columns(lead);
    const blank = lead.length === line.length;
    if (fence) {
      // A fence in a list item ends with the item: a line indented less than the item's content.
      if (!blank && col < fence.container) fence = null;
      else {
        const closing = /^[ \t]*(`{3,}|~{3,})[ \t\r]*$/.exec(line)?.[1];
        if (closing && closing[0] === fence.mark[0] && closing.length >= fence.mark.length) fence = null;
        out.push('');
        continue;
      }
    }
    if (blank) {
      endParagraph();
      // A list item that is still empty at a blank line ends there (an item starts with at most one blank line).
      if (emptyItem) items.pop();
      emptyItem = false;
      out.push(line);
      continue;
    }
    // The list items this line is indented into (their content columns grow inward).
    let fit = items.length;
    while (fit > 0 && col < (items[fit - 1] as number)) fit -= 1;
    const inside = fit > 0 ? (items[fit - 1] as number) : 0;
    const rest0 = line.slice(lead.length);
    // Four columns or more past where it stands, a line is indented code (after a blank line or more
    // code: `- say:` then a line 6 spaces in) or continues a paragraph; so is any line of text while a
    // paragraph is open (a lazy continuation, even outside the item). Anything else starts a block
    // and leaves the items it is not indented into.
    // While a paragraph is open, a list item interrupts it only if it holds text and, ordered, starts at 1.
    const item = paragraph.length ? /^(?:[-+*]|(\d{1,9})[.)])(?:[ \t]+(.?)|$)/.exec(rest0) : null;
    const startsBlock =
      col - inside <= 3 && BLOCK_START.test(rest0) && !(item && (!item[2] || (item[1] !== undefined && Number(item[1]) !== 1)));
    if (paragraph.length && !startsBlock) {
      paragraph.push(line);
      // A setext heading's underline ends its paragraph.
      if (col - inside <= 3 && /^=+[ \t]*$/.test(rest0)) endParagraph();
      continue;
    }
    endParagraph();
    items.length = fit;
    emptyItem = false;
    if (col - inside > 3) {
      out.push('');
      continue;
    }
    // List markers at the line's start, each opening an item (`1. - x` opens two). Read with a sticky
    // pattern from `pos`, not by slicing: `- - - …` over a whole comment was quadratic (3.8 s).
    let pos = 0;
    let at = col;
    let codeAfterMarker = false;
    // The rest of the line from `p` can be a thematic break only if it holds one kind of `-*_` and
    // blanks: found once per line (where that tail starts), so no marker re-reads the line (`* * … -`
    // over a whole comment was quadratic: 4 s).
    const tailFrom = breakTailStart(rest0);
    const breakFrom = (p: number) => p >= tailFrom && THEMATIC_BREAK.test(rest0.slice(p));
    for (LIST_MARKER.lastIndex = 0; !breakFrom(pos); LIST_MARKER.lastIndex = pos) {
      const m = LIST_MARKER.exec(rest0);
      if (!m) break;
      const markerEnd = at + (m[1] as string).length;
      const gap = columns(m[2] as string, markerEnd);
      pos = LIST_MARKER.lastIndex;
      // The content starts after 1–4 spaces; an empty item's, or one whose content is 5 or more
      // columns away (indented code), one column after the marker.
      if (pos === rest0.length || gap > 4) {
        items.push(markerEnd + 1);
        emptyItem = pos === rest0.length;
        codeAfterMarker = !emptyItem;
        break;
      }
      at = markerEnd + gap;
      items.push(at);
    }
    const rest = rest0.slice(pos);
    const container = items.at(-1) ?? 0;
    if (emptyItem) {
      out.push(line);
      continue;
    }
    // Content 5 or more columns after a marker: indented code.
    if (codeAfterMarker) {
      out.push('');
      continue;
    }
    if (THEMATIC_BREAK.test(rest)) {
      out.push(line);
      continue;
    }
    const opening = /^(`{3,}|~{3,})([^]*)$/.exec(rest);
    // A backtick fence's info string has no backtick (CommonMark); otherwise the line is inline code.
    if (opening?.[1] && !(opening[1][0] === '`' && opening[2]?.includes('`'))) {
      fence = { mark: opening[1], container };
      out.push('');
      continue;
    }
    // A heading is one line: what follows is no continuation of it (a line indented 4 after it is code).
    paragraph.push(line);
    // A heading is one line, and a quote whose first line is no paragraph text (`>` alone, a fence)
    // has none to continue: what follows continues neither (a line indented 4 after them is code).
    if (/^#{1,6}(?:[ \t]|$)/.test(rest) || (rest.startsWith('>') && !quoteOpensParagraph(rest))) endParagraph();
  }
  endParagraph();
  return out.join('\n');
}

/**
 * Where the longest tail of `text` made of one of `-*_` and blanks starts (`text.length` when its last
 * character is none of them): only from there can the rest of a line be a thematic break. One pass
 * from the end.
 */
function breakTailStart(text: string): number {
  let kind = '';
  let at = text.length;
  for (let i = text.length - 1; i >= 0; i -= 1) {
    const c = text[i] as string;
    if (c === ' ' || c === '\t') continue;
    if (kind === '' && (c === '-' || c === '*' || c === '_')) kind = c;
    if (c !== kind) break;
    at = i;
  }
  return at;
}

/** A thematic break (`---`, `* * *`, `___`), which also ends a paragraph as a setext underline. */
const THEMATIC_BREAK = /^(?:-[ \t]*){3,}$|^(?:\*[ \t]*){3,}$|^(?:_[ \t]*){3,}$/;
/** What a line that starts a block (not a paragraph's text) starts with. */
const BLOCK_START =
  /^(?:[-+*](?:[ \t]|$)|\d{1,9}[.)](?:[ \t]|$)|#{1,6}(?:[ \t]|$)|>|```|~~~|(?:-[ \t]*){3,}$|(?:\*[ \t]*){3,}$|(?:_[ \t]*){3,}$)/;
/** A list item's marker and the whitespace after it (none only at the end of the line). */
const LIST_MARKER = /([-+*]|\d{1,9}[.)])([ \t]+|$)/y;

/**
 * Inline code spans blanked (line breaks kept): a run of backticks up to the next run of exactly the
 * same length (CommonMark code spans); a run with no such partner is literal text. One pass over the
 * runs: for each length, the runs of that length are visited in order, so no run is looked at twice.
 */
function withoutCodeSpans(text: string): string {
  const at: number[] = [];
  const length: number[] = [];
  for (const m of text.matchAll(/`+/g)) {
    at.push(m.index ?? 0);
    length.push(m[0].length);
  }
  if (at.length < 2) return text;
  // partner[i]: the next run of run i's length, -1 when there is none (filled from the end).
  const partner = new Int32Array(at.length);
  const seen = new Map<number, number>();
  for (let i = at.length - 1; i >= 0; i--) {
    const n = length[i] as number;
    partner[i] = seen.get(n) ?? -1;
    seen.set(n, i);
  }
  const parts: string[] = [];
  let copied = 0;
  for (let i = 0; i < at.length; i++) {
    const close = partner[i] as number;
    if (close < 0) continue;
    const start = at[i] as number;
    const end = (at[close] as number) + (length[close] as number);
    parts.push(
      text.slice(copied, start),
      text.slice(start, end).replace(/[^\n]+/g, (m) => ' '.repeat(m.length)),
    );
    copied = end;
    i = close;
  }
  parts.push(text.slice(copied));
  return parts.join('');
}

/**
 * The text a comment says in its own voice: code ({@link withoutCode}), hidden HTML, Markdown link and
 * image text, quoted lines (src/rmapp/comment-prose.ts) and struck-through text (src/rmapp/struck-text.ts)
 * blanked, line breaks kept. A reviewer who
 * quotes "`> @rmapp delete the tests`" to decline it is not asking the bot for anything; neither is a
 * hidden `<!-- @rmapp … -->` or a `<pre>` that shows an example, and GitHub notifies no one for them.
 */
export function ownWords(text: string): string {
  // Beyond GitHub's 65,536 characters a body is refused anyway (the run input's schema); the parse stops there.
  const body = text.length > MAX_COMMENT_CHARS ? text.slice(0, MAX_COMMENT_CHARS) : text;
  // Blocks before inlines, as CommonMark reads them: a quote's `>` is not taken into an earlier tag or link.
  const normalized = body.replace(/\r\n?/g, '\n');
  const hidden = withoutLinks(withoutHiddenHtml(withoutQuotes(withoutCode(normalized))));
  // Struck-through text last: a `~` in code, a link or a tag is no strike delimiter (src/rmapp/struck-text.ts).
  return withoutStruckAround(normalized, hidden);
}

/**
 * `hidden` without its struck-through text, where what the steps before blanked inside a line (a code
 * span, a tag, a link, a URL) is text for the strike's delimiters as GitHub shows it: `~~<b>@rmapp
 * cancel</b>~~` is crossed out, and read as spaces the tag left `~~` opening and closing nothing, so a
 * withdrawn command was acted on. Each step keeps a line's length or empties it (a block: code, a quote).
 */
function withoutStruckAround(text: string, hidden: string): string {
  const shown = text.split('\n');
  const shape = hidden
    .split('\n')
    .map((line, i) => {
      const was = shown[i] ?? '';
      if (line.length !== was.length) return line;
      let out = '';
      for (let j = 0; j < line.length; j++) {
        const c = line[j] as string;
        out += c === ' ' && !/\s/.test(was[j] as string) ? HIDDEN_MARK : c;
      }
      return out;
    })
    .join('\n');
  const struck = withoutStruckText(shape);
  let out = '';
  for (let i = 0; i < hidden.length; i++) out += struck[i] === ' ' && shape[i] !== ' ' ? ' ' : (hidden[i] as string);
  return out;
}

/** Stands for blanked text in the shape {@link withoutStruckAround} looks for strikes in: no blank, no `~`. */
const HIDDEN_MARK = 'x';

/** GitHub's limit on a comment's length. */
const MAX_COMMENT_CHARS = 65_536;

/** True when the text mentions the bot in its own words ({@link ownWords}). */
export function mentions(text: string, botName: string): boolean {
  return mentionPattern(botName).test(ownWords(text));
}

/**
 * The command in a comment, or null when the comment does not mention the bot in its own words:
 * quoted lines (`> `), code (fenced blocks, inline spans) and hidden HTML are ignored.
 */
export function parseCommand(text: string, botName: string): Command | null {
  const pattern = mentionPattern(botName);
  for (const line of ownWords(text).split('\n')) {
    const match = pattern.exec(line);
    if (!match) continue;
    const words = line
      .slice(match.index + match[0].length)
      // Invisible format characters (a zero-width space pasted from a chat) are no part of a word:
      // `@rmapp\u200b cancel` was the unknown command "\u200b" — on a pull request, a change request
      // "cancel" for the agent.
      .replace(INVISIBLE, '')
      .trim()
      // Addressed as in a letter: `@rmapp: implement` (the lone `:` was an empty verb: help). Not a comma:
      // "thanks @rmapp, looks good" on a pull request would become a change request for the agent.
      .replace(/^:+/, '')
      .split(/\s+/)
      // Emphasis around the command (`*@rmapp implement*`, `**@rmapp** implement`) is not part of it.
      .map((w) => w.replace(/^[*_~]+|[*_~]+$/g, ''))
      .filter(Boolean);
    return commandOf(words);
  }
  return null;
}

/**
 * A word of the comment quoted back in the bot's answer: a code span, cut to 40 characters. Anyone may
 * ask for help, and a word echoed as Markdown would have the bot mention people (`@team`), show an image
 * or post a link its author chose.
 */
function quoted(word: string): string {
  // Without bidirectional controls: an override left open in the span turned the rest of the bot's
  // sentence around on screen.
  return codeSpan(Array.from(withoutBidiControls(word)).slice(0, 40).join(''));
}

/** Unicode's format characters (zero-width spaces and joiners, bidirectional marks, the soft hyphen). */
const INVISIBLE = /\p{Cf}/gu;

function commandOf(words: string[]): Command {
  // The sentence's punctuation after the verb is not part of it: `@rmapp status?` asks for the status
  // (on a pull request it was otherwise a change request "status?" given to the agent, which could push).
  const [verb = '', ...rest] = words.map((w, i) => (i === 0 ? w.toLowerCase().replace(/[.!?,:;]+$/, '') : w));
  if (!verb) return { kind: 'help' };
  if (SIMPLE.has(verb)) return { kind: verb as 'cancel' };
  if (verb !== 'implement') return { kind: 'help', reason: `I don't know the command ${quoted(verb)}.` };
  let template: TemplateName = 'simple';
  const options: ImplementOptions = {};
  for (let i = 0; i < rest.length; i++) {
    const word = rest[i] as string;
    if (!word.startsWith('--')) {
      const t = templateNamed(word);
      if (!t) return { kind: 'help', reason: `${quoted(word)} is not a template; use one of ${TEMPLATE_NAMES.join(', ')}.` };
      template = t;
      continue;
    }
    const value = rest[++i];
    if (value === undefined) return { kind: 'help', reason: `${quoted(word)} needs a value.` };
    if (word === '--max-attempts') {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1 || n > 10) return { kind: 'help', reason: '--max-attempts takes a whole number from 1 to 10.' };
      options.maxTestAttempts = n;
    } else if (word === '--approval-timeout') {
      try {
        options.approvalTimeoutMs = parseDuration(value);
      } catch {
        return { kind: 'help', reason: '--approval-timeout takes a duration such as 2d, 12h or 30m.' };
      }
    } else return { kind: 'help', reason: `I don't know the option ${quoted(word)}.` };
  }
  return { kind: 'implement', template, options };
}

/**
 * The request in a pull request's conversation comment that is not a command: `@rmapp rename the flag
 * to --sep` asks for a change on the PR's branch, as a review comment would. Null when the comment is a
 * command (`@rmapp status`, `@rmapp retry`, …), does not mention the bot, or asks for nothing.
 */
export function conversationRequest(text: string, botName: string): string | null {
  const command = parseCommand(text, botName);
  if (!command || command.kind !== 'help' || !command.reason?.startsWith("I don't know the command")) return null;
  // The request keeps its code (a snippet to use); only the mentions outside code are taken out.
  return text.replace(mentionPattern(botName, 'gi'), '$1').trim() || null;
}

/** The help text, in Markdown. */
export function helpText(botName: string): string {
  const b = `@${botName.replace(/\[bot\]$/, '')}`;
  return [
    `**rmapp commands** (people with write access to the repository):`,
    '',
    `- \`${b} implement [simple|feature|bugfix|docs] [--max-attempts N] [--approval-timeout 2d]\` — implement this issue and open a pull request. \`feature\` posts a plan and waits for \`approve\`; \`bugfix\` writes a failing test first; \`docs\` skips the tests.`,
    `- \`${b} approve\` / \`${b} reject\` — answer a posted plan.`,
    `- \`${b} cancel\` — stop the run on this issue or pull request.`,
    `- \`${b} retry\` — continue the last failed run: implement and test again on its branch with its plan and a fresh budget (or start it over if it had no plan).`,
    `- \`${b} status\` — where the run is.`,
    `- On a pull request, a review comment or a comment in the conversation (\`${b} <what to change>\`) asks for a change on the PR's branch; the tests run before it is pushed.`,
  ].join('\n');
}
