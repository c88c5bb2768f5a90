/**
 * The steps of IssueImplementation, built from injected adapters: GitHub (Octokit), git workspaces,
 * the coding agent and the repository's tests. Every side effect is idempotent with the step's key or
 * by construction (one branch per issue, commits only of real changes, one PR per branch).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentConfig, TestsConfig } from '../rmapp/agent-runner.ts';
import { runAgent } from '../rmapp/agent-runner.ts';
import { issueAnalysisSchema, type IssueAnalysis } from '../rmapp/analysis.ts';
import { parsePlanYaml, planPath, planSchema, renderPlanYaml, yamlBlock } from '../rmapp/plan.ts';
import { askJson, formatIssues, type OutputIssue } from '../rmapp/structured-output.ts';
import type { GitHubOctokit } from '../rmapp/github/client.ts';
import { ensurePullRequest, upsertComment } from '../rmapp/github/writes.ts';
import type { Workspace, Workspaces } from '../rmapp/workspace.ts';
import { instructionsSection, type RepositorySettings } from '../rmapp/repository-config.ts';
import { agentMessage, checkProtectedPaths, ensureSetup, runChecks } from '../rmapp/repository-commands.ts';
import { step } from '../state_machine/step.ts';
import type { ImplementOutcome, IssueImplementationSteps } from '../machines/issue-implementation.ts';
import { issueBranch } from '../machines/issue-branch.ts';

export interface IssueImplementationDeps {
  github: GitHubOctokit;
  workspaces: Workspaces;
  /** The clone URL of a repository (credentials, if any, stay out of logs and history). */
  remoteUrl: (owner: string, repo: string) => string;
  agent: AgentConfig;
  /** The repository's test command, run in the sandbox like the agent. */
  tests: TestsConfig;
  /** The bot's login, for the approval instructions. */
  botName?: string;
}

/** The marker the implementing prompt carries when a test run failed before. */
export const PREVIOUS_FAILURE_HEADING = 'Previous test run failed';

/** The first words of the analysis request (the scripted test agent recognises it by them). */
export const ANALYSIS_REQUEST = 'Analyze issue';
/** The first words of the plan request (the scripted test agent recognises it by them). */
export const PLAN_REQUEST = 'Write an implementation plan';

function issueText(issue: { title: string; body: string }): string {
  return `# ${issue.title}\n\n${issue.body}\n`;
}

function analysisText(analysis: IssueAnalysis | undefined): string {
  if (!analysis) return '';
  const risks = analysis.risks.length ? `\n\nRisks:\n${analysis.risks.map((r) => `- ${r}`).join('\n')}` : '';
  return `\n## Analysis (${analysis.kind})\n\n${analysis.summary}${risks}\n`;
}

/** Whether the plan is rmplan YAML: a run persisted before plans were YAML carries free text. */
function isPlanYaml(plan: string): boolean {
  try {
    parsePlanYaml(plan);
    return true;
  } catch {
    return false;
  }
}

/**
 * Writes the plan to `tasks/issue-<n>.yml` in the workspace; a free-text plan (an older run) is left
 * out of the branch rather than failing the run.
 */
async function placePlanFile(workspaces: Workspaces, dir: string, issueNumber: number, plan: string): Promise<string | null> {
  if (!isPlanYaml(plan)) return null;
  const file = planPath(issueNumber);
  // The analysing agent may have put a symlink where the plan goes: never followed. The plan quotes
  // the agent's output, so it is masked like everything else that leaves the service.
  await workspaces.writeFile(dir, file, plan.endsWith('\n') ? plan : `${plan}\n`);
  return file;
}

/**
 * Where the planner runs: the run's workspace, which analyzing prepared. A run resumed on a machine
 * without it plans in an empty directory rather than anywhere near the service's own files.
 */
async function inPlanningDir<T>(workspaces: Workspaces, runId: string, fn: (dir: string, prepared: boolean) => Promise<T>): Promise<T> {
  const dir = workspaces.dirOf(runId);
  if (existsSync(join(dir, '.git'))) return fn(dir, true);
  const empty = await mkdtemp(join(tmpdir(), 'rmapp-plan-'));
  try {
    return await fn(empty, false);
  } finally {
    await rm(empty, { recursive: true, force: true });
  }
}

export function issueImplementationSteps(deps: IssueImplementationDeps): IssueImplementationSteps {
  const workspace = (runId: string, input: { owner: string; repo: string; branch: string; base: string }, signal: AbortSignal) =>
    deps.workspaces.prepare({ runId, remoteUrl: deps.remoteUrl(input.owner, input.repo), branch: input.branch, base: input.base, signal });
  /** `.github/rmapp.yml` and the instruction files of the default branch (never the run's branch). */
  const settingsOf = (ws: Pick<Workspace, 'dir'>, base: string, signal: AbortSignal): Promise<RepositorySettings> =>
    deps.workspaces.repositorySettings(ws, base, signal);

  const reask = (progress: (message: string, data?: Record<string, unknown>) => void, what: string) => (issues: OutputIssue[]) =>
    progress(`the agent's ${what} was invalid (${formatIssues(issues, 3)}); asking once more`, { issues });

  return {
    // The agent's answer is the long part of this step, so it retries as an agent step.
    analyze: step(
      async (ctx) => {
        const { input, runId, signal, saveArtifact, progress } = ctx;
        const [{ data: issue }, { data: repository }] = await Promise.all([
          deps.github.issues.get({ owner: input.owner, repo: input.repo, issue_number: input.issueNumber }),
          deps.github.repos.get({ owner: input.owner, repo: input.repo }),
        ]);
        const facts = { title: issue.title, body: issue.body ?? '', defaultBranch: repository.default_branch };
        // A run that continues a failed one's plan (`@bot retry`) needs only the facts.
        if (input.skipAnalysis) return facts;
        progress('analyzing the issue');
        const prompt = `${ANALYSIS_REQUEST} #${input.issueNumber} of ${input.owner}/${input.repo}: summarise what it asks, what kind of change it needs, and the risks. Do not change files.\n\n${issueText(facts)}`;
        // The agent reads the repository in the run's own workspace (the branch is created here from
        // the default branch; implementing continues in it), never in the service's directory.
        const ws = await workspace(
          runId,
          { owner: input.owner, repo: input.repo, branch: issueBranch(input.issueNumber), base: facts.defaultBranch },
          signal,
        );
        const settings = await settingsOf(ws, facts.defaultBranch, signal);
        const analysis = await askJson(deps.agent, {
          cwd: ws.dir,
          prompt: `${prompt}${instructionsSection(settings)}`,
          schema: issueAnalysisSchema,
          signal,
          name: 'analysis',
          onReask: reask(progress, 'analysis'),
          session: ctx,
        });
        await saveArtifact('analysis', analysis);
        return facts;
      },
      { kind: 'agent' },
    ),

    plan: step(
      async (ctx) => {
        const { input, runId, signal, saveArtifact, getArtifact, progress } = ctx;
        progress('planning');
        // The analysis step's artifact of this run (absent for runs analysed before analyses existed).
        const analysis = await getArtifact<IssueAnalysis>('analysis');
        const prompt =
          `${PLAN_REQUEST} for issue #${input.issueNumber} as an rmplan plan: the goal, details, and tasks, each with the files it touches and small steps (one prompt each, done: false). Do not change files.\n\n` +
          `${issueText(input.issue)}${analysisText(analysis)}`;
        const plan = await inPlanningDir(deps.workspaces, runId, async (cwd, prepared) => {
          // The instructions come from the workspace analyzing prepared (a planner in an empty directory has none to read).
          const instructions = prepared ? instructionsSection(await settingsOf({ dir: cwd }, input.issue.defaultBranch, signal)) : '';
          return askJson(deps.agent, {
            cwd,
            prompt: `${prompt}${instructions}`,
            schema: planSchema,
            signal,
            name: 'plan',
            onReask: reask(progress, 'plan'),
            session: ctx,
          });
        });
        const yaml = renderPlanYaml(plan);
        await saveArtifact('plan', yaml);
        return { plan: yaml };
      },
      { kind: 'agent' },
    ),

    implement: step(
      async (ctx): Promise<ImplementOutcome> => {
        const { input, runId, signal, progress } = ctx;
        const ws = await workspace(runId, input, signal);
        // The plan goes on the branch in its own commit, before the agent's work; the same plan
        // again (a later attempt, a re-executed step) changes nothing, so it makes no second commit.
        const planFile = await placePlanFile(deps.workspaces, ws.dir, input.issueNumber, input.plan);
        // The plan file only: what the analysing or planning agent (told not to) changed in the workspace,
        // or an earlier execution of this step left, stays for this attempt's protected-paths check.
        if (planFile) await deps.workspaces.commitAll(ws, `rmapp: plan for #${input.issueNumber} (${planFile})`, signal, [planFile]);
        const settings = await settingsOf(ws, input.base, signal);
        // The repository's setup (dependencies, services' fixtures) before the agent, in the sandbox.
        await ensureSetup(deps.workspaces, ws, settings, deps.tests, { signal, progress });
        progress(`implementing, attempt ${input.attempt}`);
        // A failed run with no output still counts as a failure the agent must fix.
        const failure =
          input.previousFailure !== null
            ? `\n## ${PREVIOUS_FAILURE_HEADING}\n\n${input.previousFailure.slice(-8000) || '(the test command printed nothing)'}\n`
            : '';
        const task =
          input.mode === 'reproduce'
            ? `Reproduce the bug of issue #${input.issueNumber}: add a test that fails because of it. Do not fix the bug yet.`
            : `Implement issue #${input.issueNumber} in this repository.`;
        const planNote = planFile ? `\n\nThe plan is also in \`${planFile}\`.` : '';
        const prompt = `${task}\n\n${issueText(input.issue)}\n## Plan\n\n${yamlBlock(input.plan)}${planNote}\n${instructionsSection(settings)}${failure}`;
        const result = await runAgent(deps.agent, { cwd: ws.dir, prompt, signal, session: ctx });
        // Before anything is committed: an attempt that touched a protected path leaves the branch as it was.
        await checkProtectedPaths(deps.workspaces, ws, settings, signal);
        const { committed, sha, earlier } = await deps.workspaces.commitAll(
          ws,
          // The run's id in the body: a retried run's attempt 1 is not the failed run's attempt 1 (see commitAll).
          `rmapp: ${input.issue.title} (#${input.issueNumber}), attempt ${input.attempt}\n\nRmapp-Run: ${runId}`,
          signal,
        );
        // Pushed now, so a worker on another machine that resumes the run continues from this commit.
        await deps.workspaces.push(ws, signal);
        // `earlier`: this step made its commit before a crash and is re-executed; it did change something.
        return { commit: committed ? sha : earlier, changed: committed || earlier !== null, agentMessage: agentMessage(result.text) };
      },
      { kind: 'agent' },
    ),

    postPlan: step(
      async ({ input, idempotencyKey }) => {
        const bot = deps.botName ?? 'rmapp';
        const body = `## Plan for #${input.issueNumber}\n\n${yamlBlock(input.plan)}\n\nReply \`@${bot} approve\` to implement it, or \`@${bot} cancel\`.`;
        const { id } = await upsertComment(deps.github, { owner: input.owner, repo: input.repo }, input.issueNumber, idempotencyKey, body);
        return { commentId: id };
      },
      { kind: 'github' },
    ),

    test: step(
      async ({ input, runId, signal, saveArtifact, progress }) => {
        const ws = await workspace(runId, input, signal);
        const settings = await settingsOf(ws, input.base, signal);
        // A workspace made afresh (the run resumed on another machine) is set up again first.
        await ensureSetup(deps.workspaces, ws, settings, deps.tests, { signal, progress });
        progress('running the tests');
        const result = await runChecks(deps.tests, settings, { cwd: ws.dir, signal });
        await saveArtifact('test-output', result.output);
        return { passed: result.passed, output: result.output };
      },
      { kind: 'tests' },
    ),

    createPR: step(
      async ({ input, runId, signal, idempotencyKey }) => {
        const ws = await workspace(runId, input, signal);
        await deps.workspaces.push(ws, signal);
        const body = `Closes #${input.issueNumber}.${input.requestedBy ? ` Requested by @${input.requestedBy}.` : ''}\n\n## Plan\n\n${yamlBlock(input.plan)}${isPlanYaml(input.plan) ? `\n\nCommitted as \`${planPath(input.issueNumber)}\`.` : ''}`;
        const pr = await ensurePullRequest(
          deps.github,
          { owner: input.owner, repo: input.repo },
          {
            head: input.branch,
            base: input.base,
            title: `Fix #${input.issueNumber}: ${input.title}`,
            body,
            key: idempotencyKey,
          },
        );
        return { number: pr.number, url: pr.url };
      },
      { kind: 'github' },
    ),
  };
}
