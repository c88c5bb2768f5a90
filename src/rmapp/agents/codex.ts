/**
 * `agent.kind: codex` — OpenAI Codex CLI non-interactively with JSON Lines events:
 * `codex exec --json -` (the `-` reads the prompt from stdin). Events (docs/agent-adapters.md,
 * "Codex"): `thread.started`, `turn.started`, `item.started` / `item.updated` / `item.completed` with an
 * item of type `agent_message`, `reasoning`, `command_execution`, `file_change`, `mcp_tool_call`,
 * `web_search`, `todo_list` or `error`, then `turn.completed` with `usage` (input, cached input and
 * output tokens) or `turn.failed`. Codex reports no cost, and one `codex exec` is one turn.
 */
import { hasFlag, jsonLine, num, obj, str, type AgentAdapter } from './adapter.ts';

export const codexAdapter: AgentAdapter = {
  kind: 'codex',
  defaultCommand: ['codex', 'exec'],
  reportsCost: false,
  usesFiles: false,
  check(command) {
    if (command.length && !command.includes('exec'))
      return ['agent.command for agent.kind codex must run `codex exec` (e.g. ["codex","exec","--model","gpt-5-codex"])'];
    return [];
  },
  argv(command) {
    const argv = [...(command.length ? command : this.defaultCommand)].filter((a) => a !== '-');
    if (!hasFlag(argv, '--json', '--experimental-json')) argv.push('--json');
    // The planner may run outside a git checkout; rmapp's sandbox, not Codex's, is the boundary.
    if (!hasFlag(argv, '--skip-git-repo-check')) argv.push('--skip-git-repo-check');
    if (!hasFlag(argv, '--sandbox', '-s', '--full-auto', '--dangerously-bypass-approvals-and-sandbox'))
      argv.push('--dangerously-bypass-approvals-and-sandbox');
    argv.push('-');
    return argv;
  },
  parser(t) {
    const called = new Set<string>();
    let lastMessage: string | null = null;
    let failure: string | null = null;
    const call = (id: string, item: Record<string, unknown>) => {
      if (called.has(id)) return;
      const type = str(item.type);
      if (type === 'command_execution') t.toolCall('shell', str(item.command), id);
      else if (type === 'mcp_tool_call') t.toolCall(`${str(item.server)}.${str(item.tool)}`, item.arguments ?? null, id);
      else if (type === 'web_search') t.toolCall('web_search', str(item.query), id);
      else if (type === 'file_change')
        t.toolCall(
          'file_change',
          (Array.isArray(item.changes) ? item.changes : []).map((c) => `${str(obj(c).kind)} ${str(obj(c).path)}`).join('\n'),
          id,
        );
      else return;
      called.add(id);
    };
    return {
      line(line, truncated) {
        const e = truncated ? null : jsonLine(line);
        if (!e) {
          t.output('stdout', `${line}${truncated ? '… (line cut: longer than the line limit)' : ''}\n`);
          return;
        }
        const item = obj(e.item);
        const id = str(item.id);
        switch (e.type) {
          case 'thread.started':
            t.text('system', `Codex thread ${str(e.thread_id)} started.`);
            return;
          case 'turn.started':
            t.turn();
            return;
          case 'turn.completed': {
            const u = obj(e.usage);
            // Codex's input_tokens include the cached ones.
            t.addUsage({
              inputTokens: num(u.input_tokens),
              cachedInputTokens: num(u.cached_input_tokens),
              outputTokens: num(u.output_tokens),
            });
            return;
          }
          case 'turn.failed':
            failure = str(obj(e.error).message) || 'the turn failed';
            t.error(failure);
            return;
          case 'error':
            t.error(str(e.message) || 'error');
            return;
          case 'item.started':
            call(id, item);
            return;
          case 'item.completed': {
            const type = str(item.type);
            if (type === 'agent_message') {
              lastMessage = str(item.text);
              t.text('assistant', lastMessage);
            } else if (type === 'reasoning') t.text('assistant', str(item.text));
            else if (type === 'todo_list')
              t.text(
                'assistant',
                (Array.isArray(item.items) ? item.items : [])
                  .map((i) => `- [${obj(i).completed ? 'x' : ' '}] ${str(obj(i).text)}`)
                  .join('\n'),
              );
            else if (type === 'error') t.error(str(item.message));
            else {
              call(id, item);
              const failed =
                item.status === 'failed' || item.status === 'declined' || (typeof item.exit_code === 'number' && item.exit_code !== 0);
              if (type === 'command_execution')
                t.toolResult(
                  `${str(item.aggregated_output)}${typeof item.exit_code === 'number' ? `\n(exit ${item.exit_code})` : ''}`,
                  failed,
                  id,
                );
              else if (type === 'mcp_tool_call')
                t.toolResult(item.error ? str(obj(item.error).message) : (item.result ?? null), failed, id);
              else t.toolResult(str(item.status) || 'completed', failed, id);
            }
            return;
          }
          default:
            return; // item.updated and events of newer versions: the completed item carries what matters
        }
      },
      end() {
        t.result = lastMessage;
      },
      failure: () => failure,
    };
  },
};
