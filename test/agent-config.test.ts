/** The `agent` section: the kind, its command, the per-run budget, and the messages that name the fix. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/rmapp/config.ts';

const cwd = () => mkdtempSync(join(tmpdir(), 'rmapp-agent-config-'));
const github = { GITHUB_TOKEN: 'ghp_x', GITHUB_WEBHOOK_SECRET: 'a-long-secret', RMAPP_TEST_COMMAND: 'npm test' };

it('agent.kind defaults to command (which needs agent.command); the other kinds have a default command', async () => {
  expect((await loadConfig({ env: { ...github, RMAPP_AGENT_COMMAND: 'my-agent --fast' }, cwd: cwd() })).agent).toMatchObject({
    kind: 'command',
    command: ['my-agent', '--fast'],
    budget: {},
  });
  const err = await loadConfig({ env: github, cwd: cwd() }).catch((e: unknown) => e);
  expect((err as ConfigError).message).toMatch(
    /agent\.command \(env RMAPP_AGENT_COMMAND\): required to run workflows — .*RMAPP_AGENT_KIND/,
  );
  const claude = await loadConfig({
    env: {
      ...github,
      RMAPP_AGENT_KIND: 'claude-code',
      RMAPP_AGENT_MAX_TURNS: '40',
      RMAPP_AGENT_MAX_COST_USD: '2.5',
      RMAPP_AGENT_MAX_TIME: '45m',
    },
    cwd: cwd(),
  });
  expect(claude.agent).toMatchObject({ kind: 'claude-code', budget: { maxTurns: 40, maxCostUsd: 2.5, maxTime: 45 * 60_000 } });
  expect(claude.agent.command).toBeUndefined();
});

it('refuses a kind it does not know, a command that fights its kind, and a cost budget for an agent that reports no cost', async () => {
  const problems = async (env: Record<string, string>) =>
    ((await loadConfig({ env: { ...github, ...env }, cwd: cwd() }).catch((e: unknown) => e)) as ConfigError).problems;
  expect((await problems({ RMAPP_AGENT_KIND: 'cursor' })).join('\n')).toMatch(
    /agent\.kind \(env RMAPP_AGENT_KIND\): .*claude-code.*set RMAPP_AGENT_KIND to claude-code, codex, aider, or command/,
  );
  expect((await problems({ RMAPP_AGENT_KIND: 'claude-code', RMAPP_AGENT_COMMAND: 'claude --output-format json' })).join('\n')).toMatch(
    /--output-format json, but agent\.kind claude-code reads stream-json — remove --output-format/,
  );
  expect((await problems({ RMAPP_AGENT_KIND: 'aider', RMAPP_AGENT_COMMAND: 'aider --message hi' })).join('\n')).toMatch(
    /must not set --message: rmapp passes the prompt/,
  );
  expect((await problems({ RMAPP_AGENT_KIND: 'codex', RMAPP_AGENT_MAX_COST_USD: '3' })).join('\n')).toMatch(
    /agent\.budget\.maxCostUsd \(env RMAPP_AGENT_MAX_COST_USD\): agent\.kind codex reports no cost.*use agent\.budget\.maxTokens/,
  );
  expect((await problems({ RMAPP_AGENT_KIND: 'codex', RMAPP_AGENT_MAX_TURNS: '0' })).join('\n')).toMatch(
    /agent\.budget\.maxTurns \(env RMAPP_AGENT_MAX_TURNS\)/,
  );
});
