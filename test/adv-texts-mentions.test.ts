/**
 * Untrusted text in what the bot posts (src/rmapp/run-texts.ts `untrustedMarkdown`, `codeSpan`): an
 * agent's summary and a run's error message (which quotes the agent's stderr and the tests' output)
 * must not mention anyone, show an image or inject HTML in a comment or pull request the app writes.
 * A new comment's mentions notify: `@rmapp status` (anyone may ask) and a review reply are new comments.
 */
import { createActor, toPromise } from 'xstate';
import { expect, it } from 'vitest';
import { reviewReply } from '../src/actors/pr-review.ts';
import { githubDeliverySteps } from '../src/actors/github-delivery.ts';
import { pullRequestBody } from '../src/rmapp/pull-request-text.ts';
import type { GitHubOctokit } from '../src/rmapp/github/client.ts';
import type { WorkflowExecutor } from '../src/rmapp/workflows/executor.ts';
import { RunNotFoundError } from '../src/state_machine/errors.ts';
import type { GitHubEventInput } from '../src/machines/github-delivery.ts';

const HOSTILE = 'Done. cc @everyone-team @acme/all ![x](https://evil.example/p.png) </details><img src=x>';

/** Text that would notify, load an image or open HTML on GitHub. */
function unsafe(shown: string): string[] {
  // Code spans show their text as it is: nothing in them notifies, loads or renders.
  const text = shown.replace(/(`+)[^`][\s\S]*?\1/g, '');
  return [
    /(^|[^\w`])@[\w-]/.test(text) ? 'a mention' : '',
    /(^|[^\\])!\[/.test(text) ? 'an image' : '',
    /(^|[^\\])</.test(text) ? 'HTML' : '',
  ].filter(Boolean);
}

it('a review reply quotes the agent summary without mentions, images or HTML', () => {
  const review = { request: 'rename x', path: null, line: null, author: 'alice', branch: 'b' };
  for (const commit of ['abcdef1234567890', null]) {
    const text = reviewReply({ review, commit, summary: HOSTILE, files: [], tests: 'pass' }).replace('@alice ', '');
    expect(unsafe(text), text).toEqual([]);
  }
});

it('the pull request description quotes the agent summary without mentions, images or HTML', () => {
  const body = pullRequestBody({ issueNumber: 1, requestedBy: null, plan: '', summary: HOSTILE, tests: null, status: { phase: 'ready' } });
  expect(unsafe(body.replace('Closes #1.', '')), body).toEqual([]);
});

/** A fake GitHub that records the comments the bot posts. */
function fakeGitHub(posted: string[]): GitHubOctokit {
  return {
    users: { getAuthenticated: async () => ({ data: { login: 'rmapp[bot]' } }) },
    issues: {
      listComments: async () => ({ data: [] }),
      createComment: async ({ body }: { body: string }) => (posted.push(body), { data: { id: posted.length } }),
    },
    paginate: async () => [],
    repos: { getCollaboratorPermissionLevel: async () => ({ data: { permission: 'write' } }) },
  } as unknown as GitHubOctokit;
}

const failedRun = {
  id: 'run-1',
  status: 'failed',
  state: 'implementing',
  input: {},
  error: { name: 'AgentError', message: `implementing: the agent exited 1: ${HOSTILE}`, code: 'AGENT_FAILED', category: 'agent' },
};

async function answer(body: string): Promise<string> {
  const posted: string[] = [];
  const executor = {
    latestRun: async () => failedRun,
    activeRun: async () => null,
    runIdFor: () => 'run-2',
    recentRuns: async () => [failedRun],
    decideRetry: async () => ({ kind: 'continue', template: 'simple', plan: 'p', lastTestOutput: '', pushes: [] }),
    startIssueWorkflow: async () => 'run-2',
    // Not started yet, and no later cancel heard (github-delivery.ts checks both before a start).
    status: async (id: string) => Promise.reject(new RunNotFoundError(id)),
    commentDeliveriesSince: async () => [],
  } as unknown as WorkflowExecutor;
  const steps = githubDeliverySteps({ github: fakeGitHub(posted), executor: () => executor, botName: 'rmapp', labels: {} });
  const input = {
    event: 'issue_comment',
    deliveryId: 'd1',
    owner: 'acme',
    repo: 'widgets',
    number: 3,
    isPullRequest: false,
    author: 'bob',
    body,
    commentId: 9,
    reviewId: null,
    label: null,
    installationId: null,
    action: 'created',
  } as unknown as GitHubEventInput;
  await toPromise(createActor(steps.act, { input }).start());
  expect(posted).toHaveLength(1);
  return (posted[0] as string)
    .replace('@bob ', '')
    .replace(/<!-- rmapp:[^>]*-->/, '')
    .replace(/<\/?details>|<summary>|<\/summary>/g, '');
}

it('`@rmapp status` quotes the run error as code', async () => {
  const text = await answer('@rmapp status');
  expect(unsafe(text), text).toEqual([]);
});

it('`@rmapp retry` quotes the failed run error as code', async () => {
  const text = await answer('@rmapp retry');
  expect(unsafe(text), text).toEqual([]);
});

it("the machine's own messages stay plain words; quoted output is a code span", async () => {
  const { errorText } = await import('../src/rmapp/run-texts.ts');
  expect(errorText({ message: 'testing: the tests still fail after 2 attempts', code: 'TESTS_FAILED' })).toBe(
    'the tests still fail after 2 attempts',
  );
  expect(errorText({ message: 'implementing: exited 1: @x', code: 'AGENT_FAILED' })).toBe('` exited 1: @x `');
});

it("the progress comment's attempts quote the agent summary without mentions, images or HTML", async () => {
  const { renderProgress } = await import('../src/rmapp/progress-comment.ts');
  const body = renderProgress({
    runId: 'o/r/issues/1/d',
    target: { owner: 'o', repo: 'r', issueNumber: 1 },
    workflow: 'IssueImplementation',
    requestedBy: null,
    startedAt: 0,
    stages: ['implementing'],
    done: new Set(),
    current: 'implementing',
    attempt: 1,
    retrying: null,
    status: null,
    rounds: [],
    attempts: [{ attempt: 1, files: [], summary: HOSTILE.slice(0, 150) }],
    pr: null,
    finished: { status: 'failed', at: 1000, error: { name: 'E', category: 'test_failure', code: 'TESTS_FAILED', message: 'testing: no' } },
  } as never);
  const attempt = body.split('\n').find((l) => l.startsWith('- Attempt 1')) ?? '';
  expect(attempt).toContain('everyone');
  expect(unsafe(attempt), attempt).toEqual([]);
});
