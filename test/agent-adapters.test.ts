/**
 * The agent adapters against fake CLIs that print each tool's documented format
 * (test/fixtures/fake-agents/, docs/agent-adapters.md), run through the real bubblewrap sandbox: the
 * transcript (turns, tool calls, tokens, cost, answer), the argv (the prompt never in it), the per-run
 * budget stopping an agent while it streams, and the transcript saved while it runs.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { runAgent, AGENT_USAGE_ARTIFACT, type AgentConfig, type AgentSession } from '../src/rmapp/agent-runner.ts';
import type { AgentKind, Transcript } from '../src/rmapp/agents/index.ts';
import { toErrorData } from '../src/index.ts';
import { ROOT } from './helpers/processes.ts';
import { testSandbox } from './helpers/sandbox.ts';

const FAKE = (name: string) => ['node', join(ROOT, 'test/fixtures/fake-agents', `${name}.mjs`)];
const fakeOf: Record<Exclude<AgentKind, 'command'>, string[]> = {
  'claude-code': FAKE('claude'),
  codex: [...FAKE('codex'), 'exec'],
  aider: FAKE('aider'),
};

/** A step's artifacts in memory, recording every save (to see the transcript saved while it ran). */
function memorySession(path = '0.implementing', attempt = 1) {
  const artifacts = new Map<string, unknown>();
  const saves: { name: string; value: unknown }[] = [];
  const session: AgentSession = {
    stepPath: path,
    attempt,
    idempotencyKey: `run-1/${path}`,
    saveArtifact: async (name, value) => {
      const copy = JSON.parse(JSON.stringify(value)) as unknown;
      artifacts.set(name, copy);
      saves.push({ name, value: copy });
    },
    getArtifact: async <T>(name: string) => artifacts.get(name) as T | undefined,
  };
  return { session, artifacts, saves };
}

const workspace = () => mkdtempSync(join(tmpdir(), 'rmapp-agent-'));
const config = (kind: AgentKind, extra: Partial<AgentConfig> = {}): AgentConfig => ({
  kind,
  command: kind === 'command' ? ['cat'] : (fakeOf[kind] as string[]),
  timeoutMs: 20_000,
  sandbox: testSandbox,
  ...extra,
});
const PROMPT = 'Implement issue #7: the greeting says "hallo".\nSECRET-IN-PROMPT-do-not-put-in-argv\nTURNS 2';

it('claude-code: stream-json becomes turns, tool calls, tokens and cost; the prompt is on stdin, never in argv', async () => {
  const cwd = workspace();
  const { session, artifacts } = memorySession();
  const result = await runAgent(config('claude-code'), { cwd, prompt: PROMPT, session });
  const argv = JSON.parse(readFileSync(join(cwd, '.fake-agent-argv.json'), 'utf8')) as string[];
  expect(argv.join(' ')).not.toContain('SECRET-IN-PROMPT');
  expect(argv).toEqual(expect.arrayContaining(['-p', '--output-format', 'stream-json', '--verbose']));
  expect(result.text).toBe('Changed the greeting in hello.js.');
  // Two tool-using turns and the final answer: num_turns 3, the cost and usage of the final `result`.
  expect(result.usage).toMatchObject({ turns: 3, toolCalls: 2, inputTokens: 480, cachedInputTokens: 150, outputTokens: 60 });
  expect(result.usage.costUsd).toBeCloseTo(0.0375);
  const stored = artifacts.get(result.artifact as string) as Transcript;
  expect(result.artifact).toBe('transcript/0.implementing/attempt-1');
  expect(stored).toMatchObject({ agent: 'claude-code', status: 'succeeded', step: '0.implementing', attempt: 1 });
  expect(stored.entries.filter((e) => e.kind === 'tool_call').map((e) => e.kind === 'tool_call' && e.input)).toEqual([
    '{"command":"ls step-1"}',
    '{"command":"ls step-2"}',
  ]);
  expect(stored.entries.some((e) => e.kind === 'tool_result' && e.output === 'step-2.txt')).toBe(true);
  expect(stored.entries.some((e) => e.kind === 'text' && e.role === 'assistant' && e.text === 'All done.')).toBe(true);
  expect(artifacts.get(AGENT_USAGE_ARTIFACT)).toMatchObject({ total: { turns: 3, toolCalls: 2 } });
});

it('codex: exec --json events become the transcript with token usage and no cost; the prompt goes to stdin as "-"', async () => {
  const cwd = workspace();
  const { session, artifacts } = memorySession();
  const result = await runAgent(config('codex'), { cwd, prompt: PROMPT, session });
  const argv = JSON.parse(readFileSync(join(cwd, '.fake-agent-argv.json'), 'utf8')) as string[];
  expect(argv.join(' ')).not.toContain('SECRET-IN-PROMPT');
  expect(argv[0]).toBe('exec');
  expect(argv).toContain('--json');
  expect(argv.at(-1)).toBe('-');
  expect(result.text).toBe('Updated hello.js.');
  expect(result.usage).toMatchObject({
    turns: 1,
    toolCalls: 3,
    inputTokens: 24763,
    cachedInputTokens: 24448,
    outputTokens: 122,
    costUsd: null,
  });
  const stored = artifacts.get(result.artifact as string) as Transcript;
  expect(stored.entries.filter((e) => e.kind === 'tool_call').map((e) => e.kind === 'tool_call' && e.name)).toEqual([
    'shell',
    'shell',
    'file_change',
  ]);
  expect(stored.entries.some((e) => e.kind === 'tool_result' && e.output.startsWith('step-1.txt'))).toBe(true);
});

it('aider: the prompt is a message file (not argv, not committed); the chat history becomes the transcript with tokens and cost', async () => {
  const cwd = workspace();
  const { session, artifacts } = memorySession();
  const result = await runAgent(config('aider'), { cwd, prompt: PROMPT, session });
  const argv = JSON.parse(readFileSync(join(cwd, '.fake-agent-argv.json'), 'utf8')) as string[];
  expect(argv.join(' ')).not.toContain('SECRET-IN-PROMPT');
  expect(argv).toEqual(expect.arrayContaining(['--message-file', '.rmapp-agent/prompt.md', '--yes-always', '--no-auto-commits']));
  // The session's files are gone after it.
  expect(existsSync(join(cwd, '.rmapp-agent'))).toBe(false);
  expect(result.usage).toMatchObject({ turns: 2, toolCalls: 2, inputTokens: 4600, outputTokens: 300 });
  expect(result.usage.costUsd).toBeCloseTo(0.02);
  expect(result.text).toBe('Turn 2: editing step-2.txt');
  const stored = artifacts.get(result.artifact as string) as Transcript;
  const user = stored.entries.find((e) => e.kind === 'text' && e.role === 'user');
  expect(user?.kind === 'text' && user.text).toContain('Implement issue #7');
  expect(stored.entries.filter((e) => e.kind === 'tool_call').map((e) => e.kind === 'tool_call' && e.input)).toEqual([
    'step-1.txt',
    'step-2.txt',
  ]);
});

it('command: stdout is the transcript, one turn, and the answer', async () => {
  const cwd = workspace();
  const { session, artifacts } = memorySession();
  const result = await runAgent(config('command'), { cwd, prompt: 'hello\nworld', session });
  expect(result.text).toBe('hello\nworld');
  expect(result.usage).toMatchObject({ turns: 1, toolCalls: 0, costUsd: null });
  const stored = artifacts.get(result.artifact as string) as Transcript;
  expect(stored.entries).toEqual([expect.objectContaining({ kind: 'output', stream: 'stdout', text: 'hello\nworld\n' })]);
});

it('a token or turn budget stops an agent that never ends, while it streams, with the limit and how to raise it', async () => {
  const cwd = workspace();
  const { session, artifacts } = memorySession();
  const err = await runAgent(config('claude-code', { budget: { maxTokens: 100 } }), {
    cwd,
    prompt: 'TURNS 5\nHANG',
    session,
  }).catch((e: unknown) => e);
  // The fake agent hangs after its first turn: only the budget, checked as the output streamed, stopped it.
  expect(toErrorData(err)).toMatchObject({ code: 'AGENT_BUDGET_EXCEEDED', category: 'agent' });
  expect((err as Error).message).toMatch(
    /budget of 100 tokens is used up \(180 tokens so far\)\. Raise agent\.budget\.maxTokens \(env RMAPP_AGENT_MAX_TOKENS\)/,
  );
  const stored = artifacts.get('transcript/0.implementing/attempt-1') as Transcript;
  expect(stored).toMatchObject({ status: 'budget_exceeded', reason: (err as Error).message });

  const turns = await runAgent(config('aider', { budget: { maxTurns: 2 } }), {
    cwd,
    prompt: 'TURNS 6\nDELAY 50',
    session: memorySession().session,
  }).catch((e: unknown) => e);
  expect((turns as Error).message).toMatch(/budget of 2 turns is used up \(3 turns so far\)/);
  // The fake agent rewrites its heartbeat file in place: a read can meet it truncated (CI saw "").
  const heartbeat = () => {
    try {
      return JSON.parse(readFileSync(join(cwd, '.fake-agent-heartbeat'), 'utf8')) as number;
    } catch {
      return null;
    }
  };
  let beats: number | null = null;
  for (let i = 0; i < 100 && (beats = heartbeat()) === null; i++) await new Promise((r) => setTimeout(r, 20));
  expect(beats).toBeGreaterThan(0);
});

it('time is a budget too (category timeout), and the budget is per run: a used-up run starts no agent', async () => {
  const cwd = workspace();
  const { session } = memorySession('0.analyzing');
  const err = await runAgent(config('codex', { budget: { maxTimeMs: 400 } }), { cwd, prompt: 'HANG', session }).catch((e: unknown) => e);
  expect(toErrorData(err)).toMatchObject({ code: 'AGENT_BUDGET_EXCEEDED', category: 'timeout' });
  expect((err as Error).message).toMatch(/agent\.budget\.maxTime \(env RMAPP_AGENT_MAX_TIME\)/);

  // The same run's next step: its first session spent the budget, so nothing runs.
  const first = memorySession('0.analyzing');
  await runAgent(config('claude-code'), { cwd, prompt: 'TURNS 1', session: first.session });
  const next: AgentSession = { ...first.session, stepPath: '0.planning', idempotencyKey: 'run-1/0.planning' };
  const refused = await runAgent(config('claude-code', { budget: { maxCostUsd: 0.02 } }), {
    cwd,
    prompt: 'WRITE ran.txt yes',
    session: next,
  }).catch((e: unknown) => e);
  expect((refused as Error).message).toMatch(/budget of \$0\.0200 is used up \(\$0\.0250 so far\)/);
  // Time used up before a session starts is category agent: a retry could not change it.
  const late = await runAgent(config('codex', { budget: { maxTimeMs: 400 } }), { cwd, prompt: 'HANG', session }).catch((e: unknown) => e);
  expect(toErrorData(late)).toMatchObject({ code: 'AGENT_BUDGET_EXCEEDED', category: 'agent' });
  expect(existsSync(join(cwd, 'ran.txt')), 'no agent started').toBe(false);
});

it('the transcript is saved while the agent runs, not only at the end', async () => {
  const cwd = workspace();
  const { session, saves } = memorySession();
  await runAgent(config('claude-code', { saveIntervalMs: 100 }), { cwd, prompt: 'TURNS 4\nDELAY 400', session });
  const live = saves.filter((s) => s.name.startsWith('transcript/') && (s.value as Transcript).status === 'running');
  expect(live.length, 'saves while running').toBeGreaterThanOrEqual(2);
  const calls = live.map((s) => (s.value as Transcript).usage.toolCalls);
  expect(calls.at(-1), 'the saved transcript grew').toBeGreaterThan(calls[0] as number);
});

it('an agent reporting an error fails with its own message (category agent)', async () => {
  for (const kind of ['claude-code', 'codex', 'aider'] as const) {
    const err = await runAgent(config(kind), { cwd: workspace(), prompt: 'TURNS 1\nFAIL' }).catch((e: unknown) => e);
    expect(toErrorData(err), kind).toMatchObject({ code: 'AGENT_FAILED', category: 'agent' });
    expect((err as Error).message, kind).toMatch(/the API refused the request|stream disconnected|invalid key/);
  }
});
