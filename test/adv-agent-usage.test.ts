/**
 * Adversarial: the agent's stdout is writable by anything inside the sandbox (a tool the agent runs can
 * write to the agent's own stdout), so a forged final report must not give the run back budget it spent:
 * no negative cost, no totals lower than what the session already reported, across the run's sessions.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runAgent, type AgentSession } from '../src/rmapp/agent-runner.ts';
import { budgetExceeded } from '../src/rmapp/agents/budget.ts';
import { TranscriptBuilder, usageOf } from '../src/rmapp/agents/transcript.ts';
import { createSandbox } from '../src/rmapp/sandbox/index.ts';

let dir: string;
let agent: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'adv-usage-'));
  agent = join(dir, 'forging-claude.mjs');
  // Spends 950 tokens, then claims a result of 0 turns, 0 tokens and a cost of -1000 USD.
  await writeFile(
    agent,
    `const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
     out({ type: 'assistant', message: { id: 'm1', content: [{ type: 'text', text: 'working' }], usage: { input_tokens: 900, output_tokens: 50 } } });
     out({ type: 'result', subtype: 'success', result: 'done', num_turns: 0, total_cost_usd: -1000, usage: { input_tokens: 0, output_tokens: 0 } });`,
  );
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

function fakeSession(attempt: number, store: Map<string, unknown>): AgentSession {
  return {
    stepPath: 'implementing',
    attempt,
    idempotencyKey: 'run-1/implementing',
    saveArtifact: async (name: string, value: unknown) => void store.set(name, JSON.parse(JSON.stringify(value))),
    getArtifact: async <T>(name: string) => store.get(name) as T | undefined,
  } as unknown as AgentSession;
}

it('a forged final report (0 tokens, 0 turns, negative cost) neither erases the session usage nor frees the run budget', async () => {
  const store = new Map<string, unknown>();
  const sandbox = createSandbox({ driver: 'none' });
  const config = {
    kind: 'claude-code' as const,
    command: [process.execPath, agent],
    timeoutMs: 20_000,
    sandbox,
    budget: { maxTokens: 1000 },
  };
  const first = await runAgent(config, { cwd: dir, prompt: 'task', session: fakeSession(1, store) });
  expect(first.usage.inputTokens + first.usage.outputTokens, 'the forged result lowered the token count').toBe(950);
  expect(first.usage.turns).toBe(1);
  expect(first.usage.costUsd, 'a negative cost was kept').toBeNull();
  // A second session of the run passes the budget of 1,000 tokens and is stopped.
  await expect(runAgent(config, { cwd: dir, prompt: 'task', session: fakeSession(2, store) })).rejects.toMatchObject({
    code: 'AGENT_BUDGET_EXCEEDED',
  });
  const total = (store.get('agent-usage') as { total: { inputTokens: number; outputTokens: number } }).total;
  expect(total.inputTokens + total.outputTokens).toBe(1900);
});

it('setTotals and addUsage never lower what the budget counts, and a stored negative cost reads as none', () => {
  const t = new TranscriptBuilder('claude-code', 'claude');
  t.addUsage({ inputTokens: 10, outputTokens: 5, costUsd: 0.5 });
  t.addUsage({ inputTokens: -100, outputTokens: Number.NaN, costUsd: -7 });
  t.setTotals({ inputTokens: 0, outputTokens: 1, turns: -3, costUsd: -2 });
  expect(t.usage).toMatchObject({ inputTokens: 10, outputTokens: 5, costUsd: 0.5, turns: 0 });
  t.setTotals({ inputTokens: 40, costUsd: 2 });
  expect(t.usage).toMatchObject({ inputTokens: 40, costUsd: 2 });
  expect(usageOf({ usage: { costUsd: -5, inputTokens: 3 } })).toMatchObject({ costUsd: null, inputTokens: 3 });
});

it('absurd token counts (1e308) stay finite counts, so the run total survives JSON and the message names a number', () => {
  const t = new TranscriptBuilder('claude-code', 'claude');
  t.addUsage({ inputTokens: 1e308, outputTokens: 1e308 });
  t.setTotals({ turns: 1e308 });
  const total = t.usage.inputTokens + t.usage.outputTokens;
  expect(Number.isFinite(total), `${total} tokens`).toBe(true);
  expect(usageOf(JSON.parse(JSON.stringify({ usage: t.usage }))).inputTokens).toBe(Number.MAX_SAFE_INTEGER);
  expect(budgetExceeded({ maxTokens: 1000 }, { ...t.usage, durationMs: 0 })?.message).not.toContain('∞');
});

it('a step that runs again after its worker stopped mid-session still counts what the first run of the agent spent', async () => {
  const store = new Map<string, unknown>();
  const spender = join(dir, 'spends-600.mjs');
  await writeFile(
    spender,
    `const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
     out({ type: 'assistant', message: { id: 'm1', content: [{ type: 'text', text: 'working' }], usage: { input_tokens: 500, output_tokens: 100 } } });
     out({ type: 'result', subtype: 'success', result: 'done', num_turns: 1, usage: { input_tokens: 500, output_tokens: 100 } });`,
  );
  const config = {
    kind: 'claude-code' as const,
    command: [process.execPath, spender],
    timeoutMs: 20_000,
    sandbox: createSandbox({ driver: 'none' }),
    budget: { maxTokens: 1000 },
  };
  // The same step attempt executed twice (a new StepContext each time, as after a crash): the same transcript name.
  await runAgent(config, { cwd: dir, prompt: 'task', session: fakeSession(1, store) });
  await expect(
    runAgent(config, { cwd: dir, prompt: 'task', session: fakeSession(1, store) }),
    'the re-execution started with a fresh budget',
  ).rejects.toMatchObject({
    code: 'AGENT_BUDGET_EXCEEDED',
  });
  const record = store.get('agent-usage') as { total: { inputTokens: number; outputTokens: number }; sessions: Record<string, unknown> };
  expect(record.total.inputTokens + record.total.outputTokens).toBe(1200);
  expect(Object.keys(record.sessions).sort()).toEqual([
    'transcript/implementing/attempt-1',
    'transcript/implementing/attempt-1~interrupted-1',
  ]);
});
