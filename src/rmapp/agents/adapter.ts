/**
 * What each coding agent adapter provides: its argv (the prompt never in it), whether it reports a
 * cost, and a parser from its output to a {@link TranscriptBuilder}. The formats each adapter follows
 * are described, with their sources, in docs/agent-adapters.md.
 */
import type { AgentKind, TranscriptBuilder } from './transcript.ts';

/**
 * Files of a session inside the workspace, relative to it (the agent's working directory), for agents
 * that take the prompt from a file or write their history to one (aider). The runner creates them in
 * a directory git ignores and removes it after the session.
 */
export interface SessionFiles {
  dir: string;
  prompt: string;
  chatHistory: string;
  inputHistory: string;
}

/** How the process ended, for {@link StreamParser.end}. */
export interface SessionEnd {
  exitCode: number | null;
  /** The kept end of stdout (the last `sandbox.limits.outputBytes`). */
  stdout: string;
  /** The chat history file's text (aider), when the agent wrote one. */
  chatHistory: string | null;
}

/** Parses one session's output as it streams. */
export interface StreamParser {
  /** One line of stdout (`truncated`: longer than the line limit; only its start is here). */
  line(line: string, truncated: boolean): void;
  /** The process ended: final totals, the final message. */
  end(end: SessionEnd): void;
  /** The error the agent itself reported (Claude Code's `is_error` result, Codex's `turn.failed`), if any. */
  failure(): string | null;
}

export interface AgentAdapter {
  kind: AgentKind;
  /** The command when `agent.command` is not set. */
  defaultCommand: readonly string[];
  /** Whether the tool reports a cost in USD (a cost budget needs it). */
  reportsCost: boolean;
  /** Whether the prompt goes in a file (aider's `--message-file`) rather than on stdin. */
  usesFiles: boolean;
  /** Problems with a configured command, each naming the fix (shown at start-up); empty when fine. */
  check(command: readonly string[]): string[];
  /** The argv that runs: the configured command plus the flags rmapp needs to read the output. */
  argv(command: readonly string[], files: SessionFiles): string[];
  parser(transcript: TranscriptBuilder): StreamParser;
}

/** Whether argv holds `flag` (as `--flag` or `--flag=value`). */
export function hasFlag(argv: readonly string[], ...flags: string[]): boolean {
  return argv.some((a) => flags.some((f) => a === f || a.startsWith(`${f}=`)));
}

/** The value of `--flag value` or `--flag=value`, if present. */
export function flagValue(argv: readonly string[], flag: string): string | undefined {
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i] as string;
    if (a === flag) return argv[i + 1];
    if (a.startsWith(`${flag}=`)) return a.slice(flag.length + 1);
  }
  return undefined;
}

/** Parses a JSON object line; anything else is null. */
export function jsonLine(line: string): Record<string, unknown> | null {
  const t = line.trim();
  if (!t.startsWith('{')) return null;
  try {
    const v = JSON.parse(t) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export const str = (v: unknown): string => (typeof v === 'string' ? v : '');
export const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
export const obj = (v: unknown): Record<string, unknown> =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
