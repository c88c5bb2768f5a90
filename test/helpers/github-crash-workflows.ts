/**
 * The workflows of the GitHub crash tests (test/helpers/github-crash.ts) and the adapters they run on:
 * built the same way by the test process and by the worker processes it starts
 * (test/fixtures/github-worker.ts), so that both register the same definition versions. Kept apart from
 * github-crash.ts, which imports the test runner, the emulator and the bundler: a worker process bundles
 * only this module, and loads neither vitest nor esbuild at each of its starts.
 */
import { join } from 'node:path';
import { issueImplementationSteps, type IssueImplementationDeps } from '../../src/actors/issue-implementation.ts';
import { prReviewSteps } from '../../src/actors/pr-review.ts';
import { issueImplementationWorkflow } from '../../src/machines/issue-implementation.ts';
import { prReviewWorkflow } from '../../src/machines/pr-review.ts';
import type { GitHubOctokit } from '../../src/rmapp/github/client.ts';
import { Workspaces } from '../../src/rmapp/workspace.ts';
import type { WorkflowDefinition } from '../../src/state_machine/definition.ts';
import { ROOT } from './processes.ts';
import { testSandbox } from './sandbox.ts';

/** The top-level stages listed in progress comments. */
export const STAGES = {
  IssueImplementation: ['analyzing', 'planning', 'openingDraftPR', 'implementing', 'testing', 'creatingPR'],
  PRReview: ['parsingComment', 'locatingCode', 'generatingFix', 'testingChange', 'applyingChanges', 'responding'],
};

/** The adapters both the workers and the test process build (the same code, so the same definition versions). */
export function crashTestDeps(options: {
  github: GitHubOctokit;
  remote: string;
  workspaces: string;
}): IssueImplementationDeps & { botName: string } {
  return {
    github: options.github,
    workspaces: new Workspaces({ root: options.workspaces, author: { name: 'rmapp', email: 'rmapp@example.com' } }),
    remoteUrl: () => options.remote,
    agent: { command: ['node', join(ROOT, 'src/rmapp/demo/scripted-agent.mjs')], timeoutMs: 20_000, sandbox: testSandbox },
    tests: {
      command: ['node', '-e', "process.exit(require('fs').readFileSync('impl.txt','utf8').trim() === 'right' ? 0 : 1)"],
      timeoutMs: 20_000,
      sandbox: testSandbox,
    },
    botName: 'rmapp',
  };
}

/** IssueImplementation and PRReview over those adapters. */
export function crashTestWorkflows(deps: IssueImplementationDeps & { botName: string }): WorkflowDefinition<any>[] {
  return [issueImplementationWorkflow(issueImplementationSteps(deps)), prReviewWorkflow(prReviewSteps(deps))];
}
