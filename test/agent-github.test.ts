/**
 * IssueImplementation end to end with `agent.kind: claude-code` (GitHub emulated through the real
 * Octokit client, real git, the sandbox): the agent's stream-json answers are read from its `result`,
 * each agent step keeps its session as a transcript artifact, the run's usage adds up across them,
 * and the progress comment links the session view.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/index.ts';
import { issueImplementationSteps } from '../src/actors/issue-implementation.ts';
import { issueImplementationWorkflow } from '../src/machines/issue-implementation.ts';
import { AGENT_USAGE_ARTIFACT } from '../src/rmapp/agent-runner.ts';
import type { AgentUsage, Transcript } from '../src/rmapp/agents/index.ts';
import { marker } from '../src/rmapp/github/writes.ts';
import { attachProgressComments, type ProgressComments } from '../src/rmapp/progress-comment.ts';
import { createGitHubWorld, type GitHubWorld } from './helpers/github-world.ts';
import { ROOT } from './helpers/processes.ts';
import { testSandbox } from './helpers/sandbox.ts';

let world: GitHubWorld;
let engine: Engine;
let progress: ProgressComments;

beforeAll(async () => {
  world = await createGitHubWorld();
  world.emulator.issues.set('acme/widgets#1', { title: 'Make impl.txt say right', body: 'PLAN write impl.txt\nWRITE impl.txt right' });
  const agent = {
    kind: 'claude-code' as const,
    command: ['node', join(ROOT, 'test/fixtures/fake-agents/claude-scripted.mjs'), join(ROOT, 'src/rmapp/demo/scripted-agent.mjs')],
    timeoutMs: 30_000,
    sandbox: testSandbox,
    budget: { maxCostUsd: 5 },
  };
  engine = createEngine({
    database: { url: '', dataDir: 'memory://' },
    workflows: [issueImplementationWorkflow(issueImplementationSteps({ ...world.deps, agent }))],
    pollMs: 50,
  });
  progress = attachProgressComments(engine, world.github, {
    stages: { IssueImplementation: ['analyzing', 'planning', 'implementing', 'testing', 'creatingPR', 'complete'] },
    minIntervalMs: 50,
    webUrl: 'https://github.example',
    dashboardUrl: 'http://rmapp.example/',
    branchOf: () => 'rmapp/issue-1',
  });
  await engine.startWorker();
});

afterAll(async () => {
  progress.stop();
  await engine.stop();
  await world.stop();
});

it('implements an issue with a claude-code agent: one transcript per agent step, the run usage summed, the session linked', async () => {
  const id = await engine.start('IssueImplementation', { owner: 'acme', repo: 'widgets', issueNumber: 1, requestedBy: 'octocat' });
  const run = await engine.waitFor(id, { timeoutMs: 90_000 });
  expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
  const names = (await engine.artifacts(id)).map((a) => a.name).filter((n) => n.startsWith('transcript/'));
  expect(names.map((n) => n.split('/')[1]?.split('.').at(-1))).toEqual(expect.arrayContaining(['analyzing', 'planning', 'implementing']));
  for (const name of names) {
    const t = (await engine.getArtifact(id, name)) as Transcript;
    expect(t, name).toMatchObject({
      agent: 'claude-code',
      status: 'succeeded',
      usage: { turns: 2, toolCalls: 1, inputTokens: 3000, outputTokens: 400 },
    });
  }
  const usage = (await engine.getArtifact(id, AGENT_USAGE_ARTIFACT)) as { total: AgentUsage };
  expect(usage.total.turns).toBe(2 * names.length);
  expect(usage.total.costUsd).toBeCloseTo(0.01 * names.length);
  await progress.flush();
  const comment = (world.emulator.comments.get('acme/widgets#1') ?? []).find((c) => c.body.includes(marker(`${id}/progress`)));
  expect(comment?.body).toContain(`agent session: http://rmapp.example/runs/${encodeURIComponent(id)}#logs`);
});
