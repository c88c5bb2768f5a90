/** The coding agent adapters by `agent.kind`, and the transcript and budget they produce. */
import { aiderAdapter } from './aider.ts';
import { claudeCodeAdapter } from './claude-code.ts';
import { codexAdapter } from './codex.ts';
import { commandAdapter } from './command.ts';
import type { AgentAdapter } from './adapter.ts';
import type { AgentKind } from './transcript.ts';

export * from './transcript.ts';
export * from './budget.ts';
export type { AgentAdapter, SessionFiles } from './adapter.ts';

const ADAPTERS: Record<AgentKind, AgentAdapter> = {
  command: commandAdapter,
  'claude-code': claudeCodeAdapter,
  codex: codexAdapter,
  aider: aiderAdapter,
};

/** The adapter of a kind. */
export function adapterFor(kind: AgentKind): AgentAdapter {
  return ADAPTERS[kind];
}
