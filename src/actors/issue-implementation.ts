/**
 * The steps of IssueImplementation, built from injected adapters: GitHub (Octokit), git workspaces,
 * the coding agent and the repository's tests. Every side effect is idempotent with the step's key or
 * by construction (one branch per issue, commits only of real changes, one PR per branch).
 */
import type { AgentConfig } from '../rmapp/agent-runner.ts';
import { runAgent, runTests } from '../rmapp/agent-runner.ts';
import type { GitHubOctokit } from '../rmapp/github/client.ts';
import { ensurePullRequest, upsertComment } from '../rmapp/github/writes.ts';
import type { Workspaces } from '../rmapp/workspace.ts';
import { step } from '../state_machine/step.ts';
import type { IssueImplementationSteps } from '../machines/issue-implementation.ts';

export interface IssueImplementationDeps {
  github: GitHubOctokit;
  workspaces: Workspaces;
  /** The clone URL of a repository (credentials, if any, stay out of logs and history). */
  remoteUrl: (owner: string, repo: string) => string;
  agent: AgentConfig;
  tests: { command: readonly string[]; timeoutMs: number };
  /** The bot's login, for the approval instructions. */
  botName?: string;
}

/** The marker the implementing prompt carries when a test run failed before. */
export const PREVIOUS_FAILURE_HEADING = 'Previous test run failed';

export function issueImplementationSteps(deps: IssueImplementationDeps): IssueImplementationSteps {
  const workspace = (runId: string, input: { owner: string; repo: string; branch: string; base: string }, signal: AbortSignal) =>
    deps.workspaces.prepare({ runId, remoteUrl: deps.remoteUrl(input.owner, input.repo), branch: input.branch, base: input.base, signal });

  return {
    analyze: step(
      async ({ input }) => {
        const [{ data: issue }, { data: repository }] = await Promise.all([
          deps.github.issues.get({ owner: input.owner, repo: input.repo, issue_number: input.issueNumber }),
          deps.github.repos.get({ owner: input.owner, repo: input.repo }),
        ]);
        return { title: issue.title, body: issue.body ?? '', defaultBranch: repository.default_branch };
      },
      { kind: 'github' },
    ),

    plan: step(
      async ({ input, signal, saveArtifact, progress }) => {
        progress('planning');
        const prompt = `Write a short implementation plan for issue #${input.issueNumber}. Do not change files.\n\n# ${input.issue.title}\n\n${input.issue.body}\n`;
        const result = await runAgent(deps.agent, { cwd: process.cwd(), prompt, signal });
        const plan = result.stdout.trim() || '(the agent gave no plan)';
        await saveArtifact('plan', plan);
        return { plan };
      },
      { kind: 'agent' },
    ),

    implement: step(
      async ({ input, runId, signal, progress }) => {
        const ws = await workspace(runId, input, signal);
        progress(`implementing, attempt ${input.attempt}`);
        // A failed run with no output still counts as a failure the agent must fix.
        const failure =
          input.previousFailure !== null ? `\n## ${PREVIOUS_FAILURE_HEADING}\n\n${input.previousFailure.slice(-8000) || '(the test command printed nothing)'}\n` : '';
        const task =
          input.mode === 'reproduce'
            ? `Reproduce the bug of issue #${input.issueNumber}: add a test that fails because of it. Do not fix the bug yet.`
            : `Implement issue #${input.issueNumber} in this repository.`;
        const prompt = `${task}\n\n# ${input.issue.title}\n\n${input.issue.body}\n\n## Plan\n\n${input.plan}\n${failure}`;
        await runAgent(deps.agent, { cwd: ws.dir, prompt, signal });
        const { committed, sha } = await deps.workspaces.commitAll(ws, `rmapp: ${input.issue.title} (#${input.issueNumber}), attempt ${input.attempt}`, signal);
        // Pushed now, so a worker on another machine that resumes the run continues from this commit.
        await deps.workspaces.push(ws, signal);
        return { commit: committed ? sha : null };
      },
      { kind: 'agent' },
    ),

    postPlan: step(
      async ({ input, idempotencyKey }) => {
        const bot = deps.botName ?? 'rmapp';
        const body = `## Plan for #${input.issueNumber}\n\n${input.plan}\n\nReply \`@${bot} approve\` to implement it, or \`@${bot} cancel\`.`;
        const { id } = await upsertComment(deps.github, { owner: input.owner, repo: input.repo }, input.issueNumber, idempotencyKey, body);
        return { commentId: id };
      },
      { kind: 'github' },
    ),

    test: step(
      async ({ input, runId, signal, saveArtifact, progress }) => {
        const ws = await workspace(runId, input, signal);
        progress('running the tests');
        const result = await runTests(deps.tests, { cwd: ws.dir, signal });
        await saveArtifact('test-output', result.output);
        return { passed: result.passed, output: result.output };
      },
      { kind: 'tests' },
    ),

    createPR: step(
      async ({ input, runId, signal, idempotencyKey }) => {
        const ws = await workspace(runId, input, signal);
        await deps.workspaces.push(ws, signal);
        const body = `Closes #${input.issueNumber}.${input.requestedBy ? ` Requested by @${input.requestedBy}.` : ''}\n\n## Plan\n\n${input.plan}`;
        const pr = await ensurePullRequest(deps.github, { owner: input.owner, repo: input.repo }, {
          head: input.branch,
          base: input.base,
          title: `Fix #${input.issueNumber}: ${input.title}`,
          body,
          key: idempotencyKey,
        });
        return { number: pr.number, url: pr.url };
      },
      { kind: 'github' },
    ),
  };
}
