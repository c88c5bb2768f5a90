/**
 * Commands in issue and PR comments: `@<bot> implement [template] [--option value]`, `cancel`,
 * `retry`, `status`, `approve`, `reject`, `help`. Parsing is pure and total: any mention of the bot
 * becomes a command, and anything not understood becomes `help` with the reason, so the user always
 * gets an answer. The text is only ever data: it is never passed to a shell.
 */
import { parseDuration } from '../persistence/retention.ts';
import { TEMPLATE_NAMES, templateNamed, type TemplateName } from '../machines/issue-templates.ts';

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
  return new RegExp(`(^|[^\\w@])@${escape(base)}(\\[bot\\])?(?![\\w-])`, flags);
}

/**
 * The comment without its code: fenced blocks (``` or ~~~) and inline code spans become blanks, line
 * breaks kept. GitHub does not notify for a mention inside code, and a comment that quotes
 * "`@rmapp implement`" while explaining the bot is not asking it to run.
 */
export function withoutCode(text: string): string {
  const lines = text.split('\n');
  let fence: string | null = null;
  const out = lines.map((line) => {
    const opening = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (fence) {
      // A closing fence: the same character, at least as long, nothing after it but spaces.
      if (opening && opening[1]?.[0] === fence[0] && (opening[1]?.length ?? 0) >= fence.length && line.trim() === opening[1]) fence = null;
      return '';
    }
    if (opening && !(opening[1]?.startsWith('`') && line.slice(line.indexOf(opening[1]) + opening[1].length).includes('`'))) {
      fence = opening[1] ?? null;
      return '';
    }
    // Inline code: a run of backticks up to the next run of the same length (CommonMark code spans).
    return line.replace(/(`+)(?!`)[\s\S]*?(?<!`)\1(?!`)/g, (m) => ' '.repeat(m.length));
  });
  return out.join('\n');
}

/** True when the text mentions the bot outside code. */
export function mentions(text: string, botName: string): boolean {
  return mentionPattern(botName).test(withoutCode(text));
}

/**
 * The command in a comment, or null when the comment does not mention the bot. Quoted lines (`> `)
 * and code (fenced blocks, inline spans) are ignored.
 */
export function parseCommand(text: string, botName: string): Command | null {
  const pattern = mentionPattern(botName);
  for (const line of withoutCode(text).split('\n')) {
    if (line.trimStart().startsWith('>')) continue;
    const match = pattern.exec(line);
    if (!match) continue;
    const words = line
      .slice(match.index + match[0].length)
      .trim()
      .split(/\s+/)
      .filter(Boolean);
    return commandOf(words);
  }
  return null;
}

function commandOf(words: string[]): Command {
  const [verb = '', ...rest] = words.map((w, i) => (i === 0 ? w.toLowerCase().replace(/[.!,:]+$/, '') : w));
  if (!verb) return { kind: 'help' };
  if (SIMPLE.has(verb)) return { kind: verb as 'cancel' };
  if (verb !== 'implement') return { kind: 'help', reason: `I don't know the command "${verb.slice(0, 40)}".` };
  let template: TemplateName = 'simple';
  const options: ImplementOptions = {};
  for (let i = 0; i < rest.length; i++) {
    const word = rest[i] as string;
    if (!word.startsWith('--')) {
      const t = templateNamed(word);
      if (!t) return { kind: 'help', reason: `"${word.slice(0, 40)}" is not a template; use one of ${TEMPLATE_NAMES.join(', ')}.` };
      template = t;
      continue;
    }
    const value = rest[++i];
    if (value === undefined) return { kind: 'help', reason: `${word} needs a value.` };
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
    } else return { kind: 'help', reason: `I don't know the option ${word.slice(0, 40)}.` };
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
