/**
 * `agent.kind: claude-code` — Claude Code in print mode with streamed JSON:
 * `claude -p --output-format stream-json --verbose`, the prompt on stdin. Each stdout line is one JSON
 * message (docs/agent-adapters.md, "Claude Code", names the documents followed): `system` (subtype
 * `init`), `assistant` (an API message whose `content` holds `text` and `tool_use` blocks, with its
 * `usage`), `user` (the `tool_result` blocks sent back), and a final `result` with `result` (the
 * answer), `is_error`, `num_turns`, `total_cost_usd` and `usage`.
 */
import { flagValue, hasFlag, jsonLine, num, obj, str, type AgentAdapter } from './adapter.ts';

/** Claude's usage → ours: every input token counts (uncached, written to and read from the cache). */
function usage(u: Record<string, unknown>) {
  const cacheRead = num(u.cache_read_input_tokens);
  return {
    inputTokens: num(u.input_tokens) + num(u.cache_creation_input_tokens) + cacheRead,
    cachedInputTokens: cacheRead,
    outputTokens: num(u.output_tokens),
  };
}

function toolResultText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((c) => (typeof c === 'string' ? c : str(obj(c).text) || JSON.stringify(c))).join('\n');
  return JSON.stringify(content ?? null) ?? '';
}

export const claudeCodeAdapter: AgentAdapter = {
  kind: 'claude-code',
  defaultCommand: ['claude'],
  reportsCost: true,
  usesFiles: false,
  check(command) {
    const problems: string[] = [];
    const format = flagValue(command, '--output-format');
    if (format !== undefined && format !== 'stream-json')
      problems.push(
        `agent.command has --output-format ${format}, but agent.kind claude-code reads stream-json — remove --output-format (rmapp adds it)`,
      );
    return problems;
  },
  argv(command) {
    const argv = [...(command.length ? command : this.defaultCommand)];
    if (!hasFlag(argv, '-p', '--print')) argv.push('-p');
    if (!hasFlag(argv, '--output-format')) argv.push('--output-format', 'stream-json');
    // stream-json in print mode requires --verbose.
    if (!hasFlag(argv, '--verbose')) argv.push('--verbose');
    // Headless, nobody answers permission prompts: the sandbox is the boundary (README, "Sandbox and threat model").
    if (!hasFlag(argv, '--permission-mode', '--dangerously-skip-permissions', '--allowedTools', '--allowed-tools'))
      argv.push('--permission-mode', 'bypassPermissions');
    return argv;
  },
  parser(t) {
    // One API message may arrive as several `assistant` lines (one per content block) with the same id and usage.
    const perMessage = new Map<string, ReturnType<typeof usage>>();
    let failure: string | null = null;
    let sawResult = false;
    const totals = () => {
      let inputTokens = 0;
      let cachedInputTokens = 0;
      let outputTokens = 0;
      for (const u of perMessage.values()) {
        inputTokens += u.inputTokens;
        cachedInputTokens += u.cachedInputTokens;
        outputTokens += u.outputTokens;
      }
      t.setTotals({ inputTokens, cachedInputTokens, outputTokens });
    };
    return {
      line(line, truncated) {
        const m = truncated ? null : jsonLine(line);
        if (!m) {
          t.output('stdout', `${line}${truncated ? '… (line cut: longer than the line limit)' : ''}\n`);
          return;
        }
        if (m.type === 'system') {
          if (m.subtype === 'init') t.text('system', `Claude Code session started (model ${str(m.model) || 'unknown'}).`);
          return;
        }
        if (m.type === 'assistant') {
          const message = obj(m.message);
          const id = str(message.id) || `line-${perMessage.size}`;
          if (!perMessage.has(id)) t.turn();
          perMessage.set(id, usage(obj(message.usage)));
          totals();
          for (const block of Array.isArray(message.content) ? message.content : []) {
            const b = obj(block);
            if (b.type === 'text') t.text('assistant', str(b.text));
            else if (b.type === 'tool_use') t.toolCall(str(b.name) || 'tool', b.input, str(b.id) || null);
          }
          return;
        }
        if (m.type === 'user') {
          const content = obj(m.message).content;
          if (typeof content === 'string') t.text('user', content);
          for (const block of Array.isArray(content) ? content : []) {
            const b = obj(block);
            if (b.type === 'tool_result') t.toolResult(toolResultText(b.content), b.is_error === true, str(b.tool_use_id) || null);
            else if (b.type === 'text') t.text('user', str(b.text));
          }
          return;
        }
        if (m.type === 'result') {
          sawResult = true;
          t.result = typeof m.result === 'string' ? m.result : null;
          const u = usage(obj(m.usage));
          t.setTotals({
            ...(m.usage ? u : {}),
            ...(typeof m.num_turns === 'number' ? { turns: m.num_turns } : {}),
            ...(typeof m.total_cost_usd === 'number' ? { costUsd: m.total_cost_usd } : {}),
          });
          if (m.is_error === true || (typeof m.subtype === 'string' && m.subtype.startsWith('error'))) {
            failure = `${str(m.subtype) || 'error'}${t.result ? `: ${t.result}` : ''}`;
            t.error(`Claude Code reported ${failure}`);
          }
        }
      },
      end({ exitCode }) {
        if (!sawResult && exitCode === 0) failure = 'the stream ended without a result message';
      },
      failure: () => failure,
    };
  },
};
