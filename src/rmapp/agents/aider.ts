/**
 * `agent.kind: aider` — aider scripted with `--message-file`: the prompt is a file in the workspace
 * (never argv, and aider reads no prompt on stdin), and the session's chat history goes to a file
 * rmapp reads afterwards (docs/agent-adapters.md, "aider"). The history is Markdown: `# aider chat
 * started at …`, the user's message as `#### ` lines, aider's own notices as `> ` lines (among them
 * `Tokens: 2.3k sent, 150 received. Cost: $0.01 message, $0.02 session.` after each model call and
 * `Applied edit to <file>`), and the model's replies as plain text. While it runs, its plain stdout
 * (`--no-pretty`) is the live view, and the same `Tokens:` lines feed the budget.
 */
import { hasFlag, type AgentAdapter } from './adapter.ts';
import type { TranscriptBuilder } from './transcript.ts';

const TOKENS =
  /^(?:> )?Tokens: ([\d.]+[kKmM]?) sent(?:, ([\d.]+[kKmM]?) cache write)?(?:, ([\d.]+[kKmM]?) cache hit)?, ([\d.]+[kKmM]?) received\.(?: Cost: \$([\d.]+) message, \$([\d.]+) session\.)?/;
const APPLIED = /^(?:> )?Applied edit to (.+?)\s*$/;

/** `2.3k` → 2300, `1.2M` → 1200000 (aider rounds what it prints). */
function count(text: string | undefined): number {
  if (!text) return 0;
  const m = /^([\d.]+)([kKmM]?)$/.exec(text);
  if (!m) return 0;
  const scale = m[2]?.toLowerCase() === 'k' ? 1e3 : m[2]?.toLowerCase() === 'm' ? 1e6 : 1;
  return Math.round(Number(m[1]) * scale);
}

/** One `Tokens:` line: a model call (a turn) and what it used. */
function tokensLine(t: TranscriptBuilder, line: string): boolean {
  const m = TOKENS.exec(line);
  if (!m) return false;
  t.turn();
  const cacheHit = count(m[3]);
  t.addUsage({
    inputTokens: count(m[1]) + count(m[2]) + cacheHit,
    cachedInputTokens: cacheHit,
    outputTokens: count(m[4]),
    costUsd: m[5] === undefined ? null : Number(m[5]),
  });
  return true;
}

/** Rebuilds the transcript from the chat history file (it has the user's and the model's messages apart). */
function fromHistory(t: TranscriptBuilder, history: string, countUsage: boolean): string | null {
  t.clearEntries();
  let reply: string[] = [];
  let user: string[] = [];
  let last: string | null = null;
  const flushReply = () => {
    const text = reply.join('\n').trim();
    if (text) {
      t.text('assistant', text);
      last = text;
    }
    reply = [];
  };
  const flushUser = () => {
    if (user.length) t.text('user', user.join('\n'));
    user = [];
  };
  for (const raw of history.split('\n')) {
    const line = raw.replace(/ {2}$/, '');
    if (line.startsWith('# aider chat started at')) {
      flushReply();
      flushUser();
      t.text('system', line.slice(2));
    } else if (line.startsWith('#### ')) {
      flushReply();
      user.push(line.slice(5));
    } else if (line.startsWith('> ') || line === '>') {
      flushReply();
      flushUser();
      const notice = line.slice(2);
      if (countUsage && tokensLine(t, notice)) continue;
      if (TOKENS.test(notice)) continue;
      const applied = APPLIED.exec(notice);
      if (applied) t.toolCall('edit', applied[1] as string);
      else if (notice.trim()) t.output('stdout', `${notice}\n`);
    } else {
      flushUser();
      reply.push(line);
    }
  }
  flushReply();
  flushUser();
  return last;
}

/** What rmapp passes itself; the operator's command must not. */
const OWN_FLAGS = ['--message', '--msg', '-m', '--message-file', '-f', '--chat-history-file', '--input-history-file'];

export const aiderAdapter: AgentAdapter = {
  kind: 'aider',
  defaultCommand: ['aider'],
  reportsCost: true,
  usesFiles: true,
  check(command) {
    const own = command.filter((a) => OWN_FLAGS.some((f) => a === f || a.startsWith(`${f}=`)));
    return own.length
      ? [
          `agent.command for agent.kind aider must not set ${own.join(', ')}: rmapp passes the prompt and history files itself — remove them`,
        ]
      : [];
  },
  argv(command, files) {
    const argv = [...(command.length ? command : this.defaultCommand)];
    argv.push('--message-file', files.prompt, '--chat-history-file', files.chatHistory, '--input-history-file', files.inputHistory);
    // Unattended: yes to every question; rmapp commits (and its .gitignore stays as the repository has it).
    for (const flag of ['--yes-always', '--no-auto-commits', '--no-gitignore', '--no-pretty', '--no-check-update'])
      if (!hasFlag(argv, flag)) argv.push(flag);
    return argv;
  },
  parser(t) {
    let sawTokens = false;
    return {
      line(line, truncated) {
        if (tokensLine(t, line)) sawTokens = true;
        else {
          const applied = APPLIED.exec(line);
          if (applied) t.toolCall('edit', applied[1] as string);
        }
        t.output('stdout', truncated ? `${line}… (line cut: longer than the line limit)\n` : `${line}\n`);
      },
      end({ chatHistory, stdout }) {
        if (chatHistory !== null && chatHistory.trim()) {
          const before = t.usage.toolCalls;
          t.result = fromHistory(t, chatHistory, !sawTokens);
          // The edits were seen on stdout and again in the history: counted once.
          t.setTotals({ toolCalls: Math.max(before, t.usage.toolCalls - before) });
        } else t.result = stdout;
      },
      failure: () => null,
    };
  },
};
