/**
 * The transcript of one agent session: what the coding agent said and did (messages, tool calls and
 * their results, raw output it printed), its turns and token usage and cost where the tool reports
 * them. Each adapter (claude-code.ts, codex.ts, aider.ts, command.ts) turns its tool's output into
 * these entries while it streams; agent-runner.ts saves the transcript as an artifact of the step,
 * throttled, so the dashboard shows the session live.
 *
 * Everything in it comes from the agent, which is untrusted: text is made storable (no NUL, no lone
 * surrogates: Postgres refuses both in jsonb), every entry is bounded (a 10 MB line keeps its head and
 * tail), and the whole transcript is bounded (the oldest entries after the first few are dropped and
 * counted). Secrets are masked when the transcript is written ({@link TranscriptBuilder.snapshot}).
 */
import type { Masker } from '../masking.ts';
import { clipMiddle } from '../../state_machine/clipped-text.ts';

/** Which coding agent produced the output, so which format it is parsed as (config `agent.kind`). */
export const AGENT_KINDS = ['command', 'claude-code', 'codex', 'aider'] as const;
export type AgentKind = (typeof AGENT_KINDS)[number];

/** What an agent session used. Tokens: `inputTokens` counts every input token, cached ones included. */
export interface AgentUsage {
  /** Model turns as the tool counts them (see docs/agent-adapters.md for each tool). */
  turns: number;
  toolCalls: number;
  inputTokens: number;
  /** The part of `inputTokens` read from the provider's prompt cache. */
  cachedInputTokens: number;
  outputTokens: number;
  /** USD, when the tool reports a cost (Claude Code, aider); null otherwise. */
  costUsd: number | null;
  durationMs: number;
}

export const ZERO_USAGE: AgentUsage = {
  turns: 0,
  toolCalls: 0,
  inputTokens: 0,
  cachedInputTokens: 0,
  outputTokens: 0,
  costUsd: null,
  durationMs: 0,
};

/** One thing that happened in the session. `turn` is the turn it belongs to (0: before the first). */
export type TranscriptEntry =
  | { kind: 'text'; role: 'assistant' | 'user' | 'system'; text: string; turn: number; at: string }
  | { kind: 'tool_call'; id: string | null; name: string; input: string; turn: number; at: string }
  | { kind: 'tool_result'; id: string | null; output: string; isError: boolean; turn: number; at: string }
  | { kind: 'output'; stream: 'stdout' | 'stderr'; text: string; turn: number; at: string }
  | { kind: 'error'; text: string; turn: number; at: string };

/** How a session ended (`running` while it streams). */
export type TranscriptStatus = 'running' | 'succeeded' | 'failed' | 'cancelled' | 'budget_exceeded' | 'timed_out';

/** The stored transcript (artifact `transcript/<step path>/attempt-<n>`). */
export interface Transcript {
  version: 1;
  agent: AgentKind;
  /** The program (argv[0]); never the other arguments. */
  program: string;
  /** The step it belongs to (the artifact's name says so too). */
  step: string | null;
  attempt: number | null;
  status: TranscriptStatus;
  /** Why it stopped, when it did not succeed (the budget's message, the exit code, the agent's error). */
  reason: string | null;
  startedAt: string;
  updatedAt: string;
  finishedAt: string | null;
  usage: AgentUsage;
  /** The agent's final message (its answer, its summary of the change). */
  result: string | null;
  entries: TranscriptEntry[];
  /** Entries dropped from the middle to keep the transcript within its bound. */
  omittedEntries: number;
}

/** Bounds of what is stored. */
export interface TranscriptLimits {
  /** Characters of one entry's text (head and tail are kept). */
  entryChars: number;
  /** Characters of all entries together. */
  totalChars: number;
  /** Entries kept at most. */
  entries: number;
}

export const DEFAULT_TRANSCRIPT_LIMITS: TranscriptLimits = { entryChars: 16 * 1024, totalChars: 2 * 1024 * 1024, entries: 2000 };
/** The first entries (the task, the first answer) stay when the middle is dropped. */
const HEAD_ENTRIES = 10;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
/** Lone surrogates become U+FFFD (what `String.prototype.toWellFormed` does; not in this project's `lib`). */
const wellFormed = (text: string): string => text.replace(LONE_SURROGATE, '\uFFFD');

/** Text that Postgres can store: NUL and lone surrogates become U+FFFD. */
export function storable(text: string): string {
  return wellFormed(text.includes('\0') ? text.replaceAll('\0', '\uFFFD') : text);
}

/** At most `max` characters: the head and the tail, with how much was left out between them. */
export function clip(text: string, max: number): string {
  // Never cut between the halves of a surrogate pair: one left alone becomes U+FFFD.
  return text.length <= max ? text : wellFormed(clipMiddle(text, max));
}

const sizeOf = (e: TranscriptEntry): number =>
  e.kind === 'tool_call' ? e.name.length + e.input.length : e.kind === 'tool_result' ? e.output.length : e.text.length;

/**
 * Builds a transcript as the agent's output streams in. Adapters call {@link text}, {@link toolCall},
 * {@link toolResult}, {@link output}, {@link turn} and {@link addUsage}; the runner calls
 * {@link snapshot} to store it.
 */
export class TranscriptBuilder {
  readonly entries: TranscriptEntry[] = [];
  omitted = 0;
  private chars = 0;
  readonly usage: AgentUsage = { ...ZERO_USAGE };
  status: TranscriptStatus = 'running';
  reason: string | null = null;
  result: string | null = null;
  private readonly startedAt = new Date();
  private finishedAt: Date | null = null;
  /** Bumped on every change: the runner saves only when something changed. */
  changes = 0;

  constructor(
    readonly agent: AgentKind,
    readonly program: string,
    readonly limits: TranscriptLimits = DEFAULT_TRANSCRIPT_LIMITS,
    readonly step: { name: string | null; attempt: number | null } = { name: null, attempt: null },
  ) {}

  /** A new model turn starts. */
  turn(): void {
    this.usage.turns += 1;
    this.changes += 1;
  }

  text(role: 'assistant' | 'user' | 'system', text: string): void {
    if (!text.trim()) return;
    this.push({ kind: 'text', role, text: this.cut(text), turn: this.usage.turns, at: now() });
  }

  toolCall(name: string, input: unknown, id: string | null = null): void {
    this.usage.toolCalls += 1;
    const shown = typeof input === 'string' ? input : (JSON.stringify(input ?? null) ?? '');
    this.push({ kind: 'tool_call', id, name: this.cut(name).slice(0, 200), input: this.cut(shown), turn: this.usage.turns, at: now() });
  }

  toolResult(output: unknown, isError: boolean, id: string | null = null): void {
    const shown = typeof output === 'string' ? output : (JSON.stringify(output ?? null) ?? '');
    this.push({ kind: 'tool_result', id, output: this.cut(shown), isError, turn: this.usage.turns, at: now() });
  }

  error(text: string): void {
    this.push({ kind: 'error', text: this.cut(text), turn: this.usage.turns, at: now() });
  }

  /** Raw output: appended to the last entry when it is output of the same stream (a command's stdout is one entry). */
  output(stream: 'stdout' | 'stderr', text: string): void {
    if (!text) return;
    const last = this.entries.at(-1);
    if (last?.kind === 'output' && last.stream === stream) {
      const before = last.text.length;
      last.text += storable(text);
      // Cut again only once the entry is twice its bound (snapshot cuts it to the bound): cutting on every
      // append made a command printing 100,000 short lines cost seconds of the service's CPU (quadratic).
      if (last.text.length > 2 * this.limits.entryChars) last.text = clip(last.text, this.limits.entryChars);
      this.chars += last.text.length - before;
      this.changes += 1;
      this.bound();
      return;
    }
    this.push({ kind: 'output', stream, text: this.cut(text), turn: this.usage.turns, at: now() });
  }

  /** Adds token counts (and cost) of one model call. */
  addUsage(u: { inputTokens?: number; cachedInputTokens?: number; outputTokens?: number; costUsd?: number | null }): void {
    this.usage.inputTokens += finite(u.inputTokens);
    this.usage.cachedInputTokens += finite(u.cachedInputTokens);
    this.usage.outputTokens += finite(u.outputTokens);
    const cost = finite(u.costUsd ?? undefined);
    if (cost > 0) this.usage.costUsd = (this.usage.costUsd ?? 0) + cost;
    else if (u.costUsd === 0) this.usage.costUsd ??= 0;
    this.changes += 1;
  }

  /**
   * Takes the tool's own totals (its final report) in place of the running counts. What the budget
   * counts (turns, tokens, cost) only goes up: the totals arrive on the agent's stdout, which whatever
   * runs inside the sandbox can write to, and a forged report of 0 tokens or a negative cost must not
   * hand the run back the budget it has spent (the run's total is the sum of its sessions). Tool calls
   * may go down (aider recounts them from its history).
   */
  setTotals(u: Partial<Omit<AgentUsage, 'durationMs'>>): void {
    for (const [k, reported] of Object.entries(u) as [keyof AgentUsage, number | null | undefined][]) {
      if (typeof reported !== 'number' || !Number.isFinite(reported) || reported < 0) continue;
      const v = finite(reported);
      if (k === 'costUsd') this.usage.costUsd = Math.max(this.usage.costUsd ?? 0, v);
      else if (k === 'toolCalls') this.usage.toolCalls = v;
      else this.usage[k] = Math.max(this.usage[k], v);
    }
    this.changes += 1;
  }

  /** Drops every entry (an adapter that rebuilds the transcript from a better source at the end: aider's history). */
  clearEntries(): void {
    this.entries.length = 0;
    this.chars = 0;
    this.omitted = 0;
    this.changes += 1;
  }

  /** Ends the session. */
  finish(status: Exclude<TranscriptStatus, 'running'>, reason: string | null = null): void {
    this.status = status;
    this.reason = reason === null ? null : this.cut(reason);
    this.finishedAt = new Date();
    this.changes += 1;
  }

  /** What is stored: a copy with every string masked. */
  snapshot(masker?: Masker): Transcript {
    const end = this.finishedAt ?? new Date();
    const t: Transcript = {
      version: 1,
      agent: this.agent,
      program: this.program,
      step: this.step.name,
      attempt: this.step.attempt,
      status: this.status,
      reason: this.reason,
      startedAt: this.startedAt.toISOString(),
      updatedAt: new Date().toISOString(),
      finishedAt: this.finishedAt?.toISOString() ?? null,
      usage: { ...this.usage, durationMs: end.getTime() - this.startedAt.getTime() },
      result: this.result === null ? null : clip(storable(this.result), this.limits.entryChars * 16),
      entries: this.entries.map((e) =>
        e.kind === 'output' && e.text.length > this.limits.entryChars ? { ...e, text: clip(e.text, this.limits.entryChars) } : { ...e },
      ),
      omittedEntries: this.omitted,
    };
    return masker ? masker.value(t) : t;
  }

  /** Milliseconds since the session started. */
  elapsedMs(): number {
    return (this.finishedAt ?? new Date()).getTime() - this.startedAt.getTime();
  }

  private cut(text: string): string {
    return clip(storable(text), this.limits.entryChars);
  }

  private push(entry: TranscriptEntry): void {
    this.entries.push(entry);
    this.chars += sizeOf(entry);
    this.changes += 1;
    this.bound();
  }

  /** Drops the oldest entries after the first few until the transcript is within its limits. */
  private bound(): void {
    while (this.entries.length > HEAD_ENTRIES + 1 && (this.chars > this.limits.totalChars || this.entries.length > this.limits.entries)) {
      const [dropped] = this.entries.splice(HEAD_ENTRIES, 1);
      this.chars -= sizeOf(dropped as TranscriptEntry);
      this.omitted += 1;
    }
  }
}

const now = () => new Date().toISOString();
/** A count the agent reported, as a count: not negative, not NaN, and at most 2^53-1 (1e308 + 1e308 is Infinity, which JSON stores as null). */
const finite = (n: number | undefined): number =>
  typeof n === 'number' && Number.isFinite(n) && n > 0 ? Math.min(n, Number.MAX_SAFE_INTEGER) : 0;

/** The usage of a transcript-like value read back from an artifact (anything else: zero). */
export function usageOf(value: unknown): AgentUsage {
  const u = (value as { usage?: Partial<AgentUsage> } | null)?.usage;
  if (!u || typeof u !== 'object') return { ...ZERO_USAGE };
  const n = (x: unknown) => (typeof x === 'number' ? finite(x) : 0);
  return {
    turns: n(u.turns),
    toolCalls: n(u.toolCalls),
    inputTokens: n(u.inputTokens),
    cachedInputTokens: n(u.cachedInputTokens),
    outputTokens: n(u.outputTokens),
    // A negative cost stored by an earlier version would lower the run's total: read as none.
    costUsd: typeof u.costUsd === 'number' && Number.isFinite(u.costUsd) && u.costUsd >= 0 ? finite(u.costUsd) : null,
    durationMs: n(u.durationMs),
  };
}

/** The sum of two usages (cost stays null only when neither reports one). */
export function addUsages(a: AgentUsage, b: AgentUsage): AgentUsage {
  return {
    turns: a.turns + b.turns,
    toolCalls: a.toolCalls + b.toolCalls,
    inputTokens: a.inputTokens + b.inputTokens,
    cachedInputTokens: a.cachedInputTokens + b.cachedInputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    costUsd: a.costUsd === null && b.costUsd === null ? null : (a.costUsd ?? 0) + (b.costUsd ?? 0),
    durationMs: a.durationMs + b.durationMs,
  };
}
