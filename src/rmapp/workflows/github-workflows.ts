/**
 * The service's workflow registry, built from the configuration and the GitHub client: the issue
 * templates (one run per issue at a time, whichever template), PRReview and ReviewResponse (one run
 * per pull request at a time: they share the PR branch), and GitHubDelivery (one run per webhook).
 */
import type { AgentConfig, TestsConfig } from '../agent-runner.ts';
import type { GitHubOctokit } from '../github/client.ts';
import type { AnyWorkflowDefinition } from '../../state_machine/definition.ts';
import type { Engine } from '../../state_machine/engine.ts';
import { issueImplementationSteps } from '../../actors/issue-implementation.ts';
import { prReviewSteps, reviewResponseSteps } from '../../actors/pr-review.ts';
import { githubDeliverySteps } from '../../actors/github-delivery.ts';
import { ISSUE_TEMPLATES, issueWorkflow } from '../../machines/issue-implementation.ts';
import { prReviewWorkflow } from '../../machines/pr-review.ts';
import { reviewResponseWorkflow } from '../../machines/review-response.ts';
import { githubDeliveryWorkflow } from '../../machines/github-delivery.ts';
import type { TemplateName } from '../../machines/issue-templates.ts';
import type { Workspaces } from '../workspace.ts';
import { WorkflowExecutor } from './executor.ts';
import { HIDDEN_STAGES } from '../run-texts.ts';

export interface GitHubWorkflowDeps {
  github: GitHubOctokit;
  workspaces: Workspaces;
  remoteUrl: (owner: string, repo: string) => string;
  agent: AgentConfig;
  tests: TestsConfig;
  botName: string;
  labels: Record<string, TemplateName>;
  maxTestAttempts: number;
  publicUrl?: string | undefined;
  /** Run the tests in the `docs` template too (default: it has no test step). */
  docsRunTests?: boolean | undefined;
  /** Repositories whose pull requests' own branches reviews may push to although rmapp did not open them (`PrReviewDeps.reviewAnyBranch`). */
  reviewAnyBranch?: readonly string[] | undefined;
}

/** The registry and the executor over the engine that will run it (the engine is created after, from the registry). */
export function githubWorkflows(deps: GitHubWorkflowDeps): {
  workflows: AnyWorkflowDefinition[];
  /** Released versions that runs in flight may still be on: they finish on them (`createEngine({ previousVersions })`). */
  previousVersions: AnyWorkflowDefinition[];
  bind(engine: Engine): WorkflowExecutor;
} {
  let executor: WorkflowExecutor | undefined;
  const issueSteps = issueImplementationSteps(deps);
  const perIssue = {
    limit: 1,
    scope: 'global' as const,
    key: (i: { owner: string; repo: string; issueNumber: number }) => `issue:${i.owner}/${i.repo}#${i.issueNumber}`,
  };
  // A review of the draft pull request an issue run opened shares the issue's key: both push to its branch.
  const perPull = {
    limit: 1,
    scope: 'global' as const,
    key: (i: { owner: string; repo: string; pullNumber: number; branchIssue?: number | undefined }) =>
      i.branchIssue
        ? perIssue.key({ owner: i.owner, repo: i.repo, issueNumber: i.branchIssue })
        : `pull:${i.owner}/${i.repo}#${i.pullNumber}`,
  };
  const templateOf = (t: (typeof ISSUE_TEMPLATES)[keyof typeof ISSUE_TEMPLATES]) =>
    t === ISSUE_TEMPLATES.DocsUpdate && deps.docsRunTests ? { ...t, runTests: true } : t;
  const templates = Object.values(ISSUE_TEMPLATES).map((t) => ({ ...issueWorkflow(issueSteps, templateOf(t)), concurrency: perIssue }));
  // The issue templates as released before the draft pull request and the failure report, `@bot retry`
  // continuing a plan, and an unchanged attempt stopping the loop.
  const releasedTemplates = Object.values(ISSUE_TEMPLATES).map((t) => ({
    ...issueWorkflow(issueSteps, templateOf(t), { draftPR: false, continueFromPlan: false, stopWhenUnchanged: false }),
    concurrency: perIssue,
  }));
  const workflows: AnyWorkflowDefinition[] = [
    ...templates,
    { ...prReviewWorkflow(prReviewSteps(deps)), concurrency: perPull },
    { ...reviewResponseWorkflow(reviewResponseSteps(deps)), concurrency: perPull },
    githubDeliveryWorkflow(
      githubDeliverySteps({
        github: deps.github,
        botName: deps.botName,
        labels: deps.labels,
        publicUrl: deps.publicUrl,
        repositorySettings: (owner, repo, signal) => deps.workspaces.repositorySettingsOf(deps.remoteUrl(owner, repo), signal),
        executor: () => {
          if (!executor) throw new Error('githubWorkflows: bind(engine) was not called');
          return executor;
        },
      }),
    ),
  ];
  return {
    workflows,
    previousVersions: [
      // ReviewResponse's versions from before a child machine's structure was part of a version, pinned to
      // the hashes their runs carry: c15fcc7d850f is today's machine; v1 (7fa1feaa3626) took no
      // `review.comment` signal. Both pushed each comment's change untested; their children then gained
      // the test state (only a state added), so runs of either test from that release on.
      { ...reviewResponseWorkflow(reviewResponseSteps(deps)), version: 'c15fcc7d850f', concurrency: perPull },
      {
        ...reviewResponseWorkflow(reviewResponseSteps(deps), { acceptNewComments: false }),
        version: '7fa1feaa3626',
        concurrency: perPull,
      },
      // PRReview 67110996376d did not answer the reviewer when a stage failed.
      { ...prReviewWorkflow(prReviewSteps(deps), { replyOnFailure: false, testBeforePush: false }), concurrency: perPull },
      // PRReview 392c4c2b409c pushed the change without running the tests.
      { ...prReviewWorkflow(prReviewSteps(deps), { testBeforePush: false }), concurrency: perPull },
      // IssueImplementation fcfa824121b9, ComplexFeature 2e9c4ef54a27, BugFix 53cd68c23517, DocsUpdate 8d5e75172d62.
      ...releasedTemplates,
    ],
    bind(engine: Engine) {
      executor = new WorkflowExecutor(engine, { maxTestAttempts: deps.maxTestAttempts, reviewAnyBranch: deps.reviewAnyBranch });
      return executor;
    },
  };
}

/** Progress-comment stages of each workflow: its top-level states in order, without the outcomes (`complete`, `failed`, the failure report). */
export function stagesOf(workflows: readonly AnyWorkflowDefinition[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const w of workflows) out[w.name] = Object.keys(w.machine.root.states).filter((s) => !HIDDEN_STAGES.has(s));
  return out;
}
