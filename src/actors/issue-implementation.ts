/**
 * The steps of IssueImplementation, built from injected adapters: GitHub (Octokit), git workspaces,
 * the coding agent and the repository's tests. Every side effect is idempotent with the step's key or
 * by construction (one branch per issue, commits only of real changes, one PR per branch).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentConfig, TestsConfig } from '../rmapp/agent-runner.ts';
import { runAgent } from '../rmapp/agent-runner.ts';
import { issueAnalysisSchema, type IssueAnalysis } from '../rmapp/analysis.ts';
import { parsePlanYaml, planPath, planSchema, renderPlanYaml, yamlBlock } from '../rmapp/plan.ts';
import { askJson, formatIssues, type OutputIssue } from '../rmapp/structured-output.ts';
import type { GitHubOctokit } from '../rmapp/github/client.ts';
import { withSignal } from '../rmapp/github/abortable.ts';
import { ensurePullRequest, marker, markReadyForReview, requestReview, upsertComment } from '../rmapp/github/writes.ts';
import { closedSince } from '../rmapp/github/issue-closed.ts';
import { checkIssueBranch } from '../rmapp/github/issue-branch-owner.ts';
import { ownLogin } from '../rmapp/github/client.ts';
import { agentSummary, attemptTrailers, commitMessage, pullRequestBody, pullRequestTitle } from '../rmapp/pull-request-text.ts';
import { failureReason, nextSteps } from '../rmapp/run-texts.ts';
import { summarizeTests, testResultLine, type TestReport } from '../rmapp/test-report.ts';
import type { Workspace, Workspaces } from '../rmapp/workspace.ts';
import { removeTree } from '../rmapp/workspace-access.ts';
import { instructionsSection, type RepositorySettings } from '../rmapp/repository-config.ts';
import { agentMessage, checkProtectedPaths, ensureSetup, runChecks } from '../rmapp/repository-commands.ts';
import { step } from '../state_machine/step.ts';
import { WorkflowError } from '../state_machine/errors.ts';
import type { CreatePrInput, ImplementInput, ImplementOutcome, IssueImplementationSteps } from '../machines/issue-implementation.ts';
import { issueBranch } from '../machines/issue-branch.ts';
import { BRANCH_PUSHES, pushRecorded, type PushContext } from './branch-push.ts';

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

/** The artifact of an issue run's pushes, recorded before each (branch-push.ts). */
export { BRANCH_PUSHES } from './branch-push.ts';

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
 * without it plans in an empty directory rather than anywhere near the service's own files — one inside
 * a folder of mode 0700: the sandbox owns the directory it is given (its user is the service's on the
 * host), so given a `mkdtemp` right under /tmp it could `chmod 777` it and leave a setuid program there
 * that any local user ran as the service's user while the planner ran (the workspaces' root is private
 * for the same reason).
 */
async function inPlanningDir<T>(workspaces: Workspaces, runId: string, fn: (dir: string, prepared: boolean) => Promise<T>): Promise<T> {
  const dir = workspaces.dirOf(runId);
  if (existsSync(join(dir, '.git'))) return fn(dir, true);
  const holder = await mkdtemp(join(tmpdir(), 'rmapp-plan-'));
  try {
    const empty = join(holder, 'workspace');
    await mkdir(empty, { mode: 0o700 });
    return await fn(empty, false);
  } finally {
    await removeTree(holder);
  }
}

export function issueImplementationSteps(deps: IssueImplementationDeps): IssueImplementationSteps {
  const workspace = (runId: string, input: { owner: string; repo: string; branch: string; base: string }, signal: AbortSignal) =>
    deps.workspaces.prepare({ runId, remoteUrl: deps.remoteUrl(input.owner, input.repo), branch: input.branch, base: input.base, signal });
  /**
   * The run's workspace on its branch, refused (`ISSUE_BRANCH_TAKEN`, github/issue-branch-owner.ts) when
   * the repository has that branch and it is not rmapp's: neither holding a commit the run recorded
   * pushing ({@link pushOwn}) nor the head of an open pull request rmapp opened. Before the agent runs
   * on it, and before anything is committed or pushed onto it.
   */
  const ownWorkspace = async (
    ctx: { runId: string; signal: AbortSignal; getArtifact: <T>(name: string) => Promise<T | undefined> },
    input: { owner: string; repo: string; branch: string; base: string; priorPushes?: string[] | undefined },
  ): Promise<Workspace> => {
    const ws = await workspace(ctx.runId, input, ctx.signal);
    // This run's pushes, and those of the runs before (`@rmapp retry`, `@rmapp implement` again), which
    // pushed before their draft opened.
    const own = (await ctx.getArtifact<string[]>(BRANCH_PUSHES)) ?? [];
    const prior = input.priorPushes ?? [];
    const at = { ...input, bot: deps.botName ?? 'rmapp' };
    const owner = await deps.workspaces.remoteBranchOwner(ws, [...own, ...prior], ctx.signal);
    if (owner === 'unknown') await checkIssueBranch(gh(ctx.signal), at, false);
    // Proven by earlier runs only: not the branch of a pull request of rmapp's that was closed.
    else if (owner === 'ours' && prior.length && (await deps.workspaces.remoteBranchOwner(ws, own, ctx.signal)) !== 'ours')
      await checkIssueBranch(gh(ctx.signal), at, true, true);
    return ws;
  };
  /**
   * Pushes the run's branch, having first recorded the commit pushed among the run's own records, fenced
   * by the run's lease: a worker that lost the run pushes nothing (branch-push.ts).
   */
  const pushOwn = (ctx: PushContext, ws: Workspace): Promise<void> => pushRecorded(ctx, deps.workspaces, ws);
  /** Before a pull request is opened or updated from the branch: one someone else opened from it is not taken over. */
  const refuseForeignPulls = (input: CreatePrInput, signal: AbortSignal) =>
    checkIssueBranch(gh(signal), { owner: input.owner, repo: input.repo, branch: input.branch, bot: deps.botName ?? 'rmapp' }, true);
  /** `.github/rmapp.yml` and the instruction files of the default branch (never the run's branch). */
  const settingsOf = (ws: Pick<Workspace, 'dir'>, base: string, signal: AbortSignal): Promise<RepositorySettings> =>
    deps.workspaces.repositorySettings(ws, base, signal);
  /** The GitHub client of one step execution: an aborted step reaches GitHub no more (github/abortable.ts). */
  const gh = (signal: AbortSignal) => withSignal(deps.github, signal);

  /**
   * Stops the step when the issue was closed after the run was asked for (github/issue-closed.ts): before
   * the draft is opened, and before the pull request is opened, marked ready or its review requested.
   */
  const stopIfIssueClosed = async (input: CreatePrInput, signal: AbortSignal, what: string) => {
    const closedAt = await closedSince(gh(signal), { owner: input.owner, repo: input.repo }, input.issueNumber, input.requestedAt);
    if (closedAt)
      throw new WorkflowError(
        `the issue was closed while I worked, so I ${what} and pushed nothing more; reopen it and comment \`@${deps.botName ?? 'rmapp'} retry\` if you still want it`,
        { code: 'ISSUE_CLOSED', category: 'validation', details: { closedAt } },
      );
  };

  const reask = (progress: (message: string, data?: Record<string, unknown>) => void, what: string) => (issues: OutputIssue[]) =>
    progress(`the agent's ${what} was invalid (${formatIssues(issues, 3)}); asking once more`, { issues });

  return {
    // The agent's answer is the long part of this step, so it retries as an agent step.
    analyze: step(
      async (ctx) => {
        const { input, signal, saveArtifact, progress } = ctx;
        const [{ data: issue }, { data: repository }] = await Promise.all([
          gh(signal).issues.get({ owner: input.owner, repo: input.repo, issue_number: input.issueNumber }),
          gh(signal).repos.get({ owner: input.owner, repo: input.repo }),
        ]);
        const facts = { title: issue.title, body: issue.body ?? '', defaultBranch: repository.default_branch };
        // A run that continues a failed one's plan (`@bot retry`) needs only the facts.
        if (input.skipAnalysis) return facts;
        progress('analyzing the issue');
        const prompt = `${ANALYSIS_REQUEST} #${input.issueNumber} of ${input.owner}/${input.repo}: summarise what it asks, what kind of change it needs, and the risks. Do not change files.\n\n${issueText(facts)}`;
        // The agent reads the repository in the run's own workspace (the branch is created here from
        // the default branch; implementing continues in it), never in the service's directory.
        const ws = await ownWorkspace(ctx, {
          owner: input.owner,
          repo: input.repo,
          branch: issueBranch(input.issueNumber),
          base: facts.defaultBranch,
          priorPushes: input.priorPushes,
        });
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
        const { input, runId, signal, progress, getArtifact, saveArtifact } = ctx;
        const ws = await ownWorkspace(ctx, input);
        // The plan goes on the branch in its own commit, before the agent's work; the same plan
        // again (a later attempt, a re-executed step) changes nothing, so it makes no second commit.
        const planFile = await placePlanFile(deps.workspaces, ws.dir, input.issueNumber, input.plan);
        // The plan file only: what the analysing or planning agent (told not to) changed in the workspace,
        // or an earlier execution of this step left, stays for this attempt's protected-paths check.
        if (planFile) await deps.workspaces.commitAll(ws, `rmapp: plan for #${input.issueNumber} (${planFile})`, signal, [planFile]);
        const settings = await settingsOf(ws, input.base, signal);
        // The repository's setup (dependencies, services' fixtures) before the agent, in the sandbox.
        await ensureSetup(deps.workspaces, ws, settings, deps.tests, { signal, progress });
        progress(`implementing, attempt ${input.attempt}${input.maxAttempts ? ` of ${input.maxAttempts}` : ''}`);
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
        const before = await deps.workspaces.head(ws, signal);
        const result = await runAgent(deps.agent, { cwd: ws.dir, prompt, signal, session: ctx });
        // Before anything is committed: an attempt that touched a protected path leaves the branch as it was.
        await checkProtectedPaths(deps.workspaces, ws, settings, signal);
        const summary = agentSummary(result.text);
        const kind = (await getArtifact<IssueAnalysis>('analysis'))?.kind;
        // Found again by its run and attempt trailers: a re-executed agent's summary may differ.
        const { committed, sha, earlier } = await deps.workspaces.commitAll(
          ws,
          implementCommitMessage(input, kind, summary, runId),
          signal,
          undefined,
          attemptTrailers(runId, implementAttempt(input)),
        );
        // Pushed now, so a worker on another machine that resumes the run continues from this commit.
        await pushOwn(ctx, ws);
        const files = committed ? await deps.workspaces.changedFiles(ws, before, sha, signal) : [];
        if (summary) await saveArtifact('change-summary', summary);
        progress(
          `attempt ${input.attempt}: ${files.length ? `changed ${files.length} file${files.length === 1 ? '' : 's'}` : 'changed nothing'}`,
          {
            implemented: { attempt: input.attempt, files, summary },
          },
        );
        // `earlier`: this step made its commit before a crash and is re-executed; it did change something.
        return { commit: committed ? sha : earlier, changed: committed || earlier !== null, agentMessage: agentMessage(result.text) };
      },
      { kind: 'agent' },
    ),

    postPlan: step(
      async ({ input, idempotencyKey, signal }) => {
        const bot = deps.botName ?? 'rmapp';
        // A new comment that mentions the requester: the progress comment's edits notify no one.
        const who = input.requestedBy ? `@${input.requestedBy} ` : '';
        const body = `${who}the plan for #${input.issueNumber} is ready and waits for approval.\n\n## Plan\n\n${yamlBlock(input.plan)}\n\nReply \`@${bot} approve\` to implement it, \`@${bot} reject\` to drop it, or \`@${bot} cancel\`.`;
        const { id } = await upsertComment(gh(signal), { owner: input.owner, repo: input.repo }, input.issueNumber, idempotencyKey, body);
        return { commentId: id };
      },
      { kind: 'github' },
    ),

    test: step(
      async (ctx) => {
        const { input, runId, signal, saveArtifact, progress } = ctx;
        const ws = await ownWorkspace(ctx, input);
        const settings = await settingsOf(ws, input.base, signal);
        // A workspace made afresh (the run resumed on another machine) is set up again first.
        await ensureSetup(deps.workspaces, ws, settings, deps.tests, { signal, progress });
        progress(`running the tests${input.round ? `, round ${input.round}${input.maxRounds ? ` of ${input.maxRounds}` : ''}` : ''}`, {
          testing: { round: input.round ?? 1, of: input.maxRounds ?? null },
        });
        const result = await runChecks(deps.tests, settings, { cwd: ws.dir, signal });
        await saveArtifact('test-output', result.output);
        // What GitHub shows: the failing tests by name, without the workspace's path, the run id or runtime frames.
        const report = summarizeTests(result.output, { passed: result.passed, workspace: ws.dir, runId });
        await saveArtifact('test-report', report);
        progress(`tests ${testResultLine(report)}`, {
          tests: {
            round: input.round ?? 1,
            of: input.maxRounds ?? null,
            passed: report.passed,
            failing: report.failing,
            failCount: report.failCount,
          },
        });
        return { passed: result.passed, output: result.output };
      },
      { kind: 'tests' },
    ),

    openDraftPR: step(
      async (ctx) => {
        const { input, signal, idempotencyKey, progress } = ctx;
        await stopIfIssueClosed(input, signal, 'opened no pull request');
        const ws = await ownWorkspace(ctx, input);
        // The plan is the branch's first commit, so the draft has something to show from the start. The
        // plan file only: what the analysing and planning agents changed in the workspace is checked (its
        // protected paths) and committed with the implementing attempt — committed here, it was pushed
        // unchecked, and the attempt's check compared against a HEAD that already held it.
        const planFile = await placePlanFile(deps.workspaces, ws.dir, input.issueNumber, input.plan);
        if (planFile) await deps.workspaces.commitAll(ws, `rmapp: plan for #${input.issueNumber} (${planFile})`, signal, [planFile]);
        await pushOwn(ctx, ws);
        await refuseForeignPulls(input, signal);
        const pr = await ensurePullRequest(
          gh(signal),
          { owner: input.owner, repo: input.repo },
          {
            head: input.branch,
            base: input.base,
            title: `[WIP] ${input.title}`.slice(0, 200),
            body: pullRequestBody({
              issueNumber: input.issueNumber,
              requestedBy: input.requestedBy,
              plan: input.plan,
              summary: null,
              tests: null,
              status: { phase: 'working', stages: '' },
            }),
            key: idempotencyKey,
            draft: true,
            author: await ownLogin(gh(signal)),
          },
        );
        progress(`opened draft pull request #${pr.number}`, { pullRequest: { number: pr.number, url: pr.url } });
        return { number: pr.number, url: pr.url };
      },
      { kind: 'github' },
    ),

    createPR: step(
      async (ctx) => {
        const { input, runId, signal, idempotencyKey, getArtifact, progress } = ctx;
        const repo = { owner: input.owner, repo: input.repo };
        // The run's draft closed by someone while the run worked (a "stop", or a tidy-up): it is found
        // only among the open pull requests of its branch, so a second pull request was opened beside it,
        // marked ready and its review requested — over the person's decision.
        // This run's pull requests carry its markers (the draft's, this step's, the failure report's).
        const { data: pulls } = await gh(signal).pulls.list({
          ...repo,
          state: 'all',
          head: `${input.owner}:${input.branch}`,
          per_page: 100,
        });
        const ours = pulls.filter((p) => (p.body ?? '').includes(marker(`${runId}/`).replace(/ -->$/, '')));
        const closed = ours.find((p) => p.state !== 'open');
        if (closed && !ours.some((p) => p.state === 'open'))
          throw new WorkflowError(
            closed.merged_at
              ? `the pull request #${closed.number} was merged before I finished, so I opened no other and pushed nothing more to it; what I did since is on branch ${input.branch}`
              : `the draft pull request #${closed.number} was closed while I worked, so I opened no other and pushed nothing more; reopen it and comment \`@${deps.botName ?? 'rmapp'} retry\` if you still want it`,
            { code: 'DRAFT_CLOSED', category: 'validation', details: { pullRequest: closed.number } },
          );
        await stopIfIssueClosed(input, signal, 'left the draft a draft');
        const ws = await ownWorkspace(ctx, input);
        await pushOwn(ctx, ws);
        await refuseForeignPulls(input, signal);
        const [analysis, summary, tests] = await Promise.all([
          getArtifact<IssueAnalysis>('analysis'),
          getArtifact<string>('change-summary'),
          getArtifact<TestReport>('test-report'),
        ]);
        const body = pullRequestBody({
          issueNumber: input.issueNumber,
          requestedBy: input.requestedBy,
          plan: input.plan,
          summary: summary ?? null,
          tests: tests ?? null,
          testsSkipped: !tests,
          status: { phase: 'ready' },
        });
        const pr = await ensurePullRequest(gh(signal), repo, {
          head: input.branch,
          base: input.base,
          title: pullRequestTitle(analysis?.kind, input.title, input.issueNumber),
          body,
          key: idempotencyKey,
          author: await ownLogin(gh(signal)),
        });
        await markReadyForReview(gh(signal), repo, pr);
        const reviewer = input.requestedBy ? await requestReview(gh(signal), repo, pr.number, input.requestedBy) : false;
        progress(`pull request #${pr.number} is ready for review`, { pullRequest: { number: pr.number, url: pr.url } });
        // A new comment that mentions the requester: edits of the progress comment notify no one.
        const who = input.requestedBy ? `@${input.requestedBy} ` : '';
        const result = tests ? ` The tests ${tests.passed ? 'pass' : testResultLine(tests)}.` : '';
        await upsertComment(
          gh(signal),
          repo,
          input.issueNumber,
          `${runId}/outcome`,
          `${who}done: ${pr.url} is ready for ${reviewer ? 'your ' : ''}review.${result}`,
        );
        return { number: pr.number, url: pr.url };
      },
      { kind: 'github' },
    ),

    reportFailure: step(
      async ({ input, runId, signal, getArtifact }) => {
        const repo = { owner: input.owner, repo: input.repo };
        const reason = failureReason(input.error);
        const next = nextSteps(input.error, deps.botName ?? 'rmapp', templateWord(input.template));
        const tests = await getArtifact<TestReport>('test-report');
        const failing = tests && !tests.passed ? ` (${testResultLine(tests)})` : '';
        if (input.pr) {
          // The draft stays a draft, and says why.
          const body = pullRequestBody({
            issueNumber: input.issueNumber,
            requestedBy: input.requestedBy,
            plan: input.plan,
            summary: (await getArtifact<string>('change-summary')) ?? null,
            tests: tests ?? null,
            status: { phase: 'failed', reason: `${reason}${failing}.`, next },
          });
          await gh(signal).pulls.update({ ...repo, pull_number: input.pr.number, body: `${body}\n\n${marker(`${runId}/pull-request`)}` });
        }
        const who = input.requestedBy ? `@${input.requestedBy} ` : '';
        const { id } = await upsertComment(
          gh(signal),
          repo,
          input.issueNumber,
          `${runId}/outcome`,
          `${who}I stopped: ${reason}${failing}. ${input.pr ? `The draft ${input.pr.url} keeps what was done. ` : ''}The progress comment above has the details.\n\n**What next:** ${next}`,
        );
        return { commentId: id };
      },
      { kind: 'github' },
    ),
  };
}

/** The command word of a template (`implement feature`), from its workflow name. */
function templateWord(workflow: string): string {
  return ({ ComplexFeature: 'feature', BugFix: 'bugfix', DocsUpdate: 'docs' } as Record<string, string>)[workflow] ?? '';
}

/** The commit of one attempt: what kind of change, what the agent said it did, and who asked. */
function implementCommitMessage(
  input: ImplementInput,
  kind: IssueAnalysis['kind'] | undefined,
  summary: string | null,
  runId: string,
): string {
  const subject =
    input.mode === 'reproduce'
      ? `test: reproduce #${input.issueNumber} (${input.issue.title})`
      : pullRequestTitle(kind, input.issue.title, input.issueNumber);
  const why =
    input.previousFailure !== null
      ? `Attempt ${input.attempt}${input.maxAttempts ? ` of ${input.maxAttempts}` : ''}: fixes what the previous test run reported.`
      : `Attempt ${input.attempt}${input.maxAttempts ? ` of ${input.maxAttempts}` : ''}, following the plan in ${planPath(input.issueNumber)}.`;
  return commitMessage({
    subject,
    body: [summary ?? `Implements #${input.issueNumber}.`, why],
    coAuthor: input.requestedBy ?? null,
    runId,
    attempt: implementAttempt(input),
  });
}

/** The `Rmapp-Attempt` trailer's value of an implement step: its mode and attempt number. */
function implementAttempt(input: ImplementInput): string {
  return `${input.mode === 'reproduce' ? 'reproduce' : 'implement'} ${input.attempt}`;
}
