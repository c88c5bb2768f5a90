/**
 * What `@rmapp retry` does with each kind of failed run (src/rmapp/workflows/retry.ts): continue the
 * plan, start over, answer the review again, or say why not and what to do instead.
 */
import { expect, it } from 'vitest';
import { decideRetry } from '../src/rmapp/workflows/retry.ts';

const artifacts = (a: Record<string, unknown>) => async (name: string) => a[name];
const failed = (workflow: string, code: string, input: unknown = {}) => ({
  workflow,
  input,
  error: { name: 'E', message: `x: ${code}`, code, category: 'permanent' as const },
});

it('continues an issue run that had a plan; after a test failure the agent gets the output it failed with', async () => {
  expect(
    await decideRetry(failed('IssueImplementation', 'TESTS_FAILED'), artifacts({ plan: 'goal: g\n', 'test-output': '1 failing' }), 'rmapp'),
  ).toEqual({
    kind: 'continue',
    template: 'simple',
    plan: 'goal: g\n',
    lastTestOutput: '1 failing',
    // What the failed run pushed (its branch-pushes record): none here.
    pushes: [],
  });
  // A PR that could not be opened: the same plan, no test output to fix.
  expect(
    await decideRetry(failed('BugFix', 'HTTP_502'), artifacts({ plan: 'goal: g\n', 'test-output': 'all pass' }), 'rmapp'),
  ).toMatchObject({
    kind: 'continue',
    template: 'bugfix',
    lastTestOutput: null,
  });
  // A run that itself continued another has no plan artifact: the plan of its input.
  expect(
    await decideRetry(
      failed('ComplexFeature', 'NO_CHANGE', { continueFrom: { plan: 'goal: old\n' } }),
      artifacts({ 'test-output': 'still failing' }),
      'rmapp',
    ),
  ).toEqual({ kind: 'continue', template: 'feature', plan: 'goal: old\n', lastTestOutput: 'still failing', pushes: [] });
});

it('starts over a run that failed before it had a plan', async () => {
  expect(await decideRetry(failed('DocsUpdate', 'AGENT_OUTPUT_INVALID'), artifacts({}), 'rmapp')).toEqual({
    kind: 'restart-issue',
    template: 'docs',
  });
});

it('refuses a rejected plan and an approval that timed out, naming what to do instead', async () => {
  const rejected = await decideRetry(failed('ComplexFeature', 'PLAN_REJECTED'), artifacts({ plan: 'p' }), 'rmapp');
  expect(rejected).toEqual({
    kind: 'refuse',
    why: 'the plan was rejected, so there is nothing to retry. Ask `@rmapp implement feature` for a new plan.',
  });
  const late = await decideRetry(failed('ComplexFeature', 'APPROVAL_TIMEOUT'), artifacts({ plan: 'p' }), 'rmapp');
  expect(late).toMatchObject({ kind: 'refuse' });
  expect((late as { why: string }).why).toContain('nobody approved the plan in time');
  expect((late as { why: string }).why).toContain('`@rmapp approve`');
});

it('answers a review comment or a review again; refuses a fork and other workflows', async () => {
  expect(await decideRetry(failed('PRReview', 'GIT_FAILED', { commentId: 7 }), artifacts({}), 'rmapp')).toEqual({
    kind: 'review-comment',
    commentId: 7,
  });
  expect(await decideRetry(failed('ReviewResponse', 'GIT_FAILED', { reviewId: 9 }), artifacts({}), 'rmapp')).toEqual({
    kind: 'review',
    reviewId: 9,
  });
  // What the PR or the comment is refuses a retry: it would read the same and stop the same way.
  for (const code of ['FORK_PULL_REQUEST', 'DEFAULT_BRANCH_HEAD', 'NOT_ALLOWED'])
    expect(await decideRetry(failed('PRReview', code, { commentId: 7 }), artifacts({}), 'rmapp'), code).toMatchObject({
      kind: 'refuse',
      why: expect.stringMatching(/A retry would stop the same way\.$/),
    });
  expect(await decideRetry(failed('GitHubDelivery', 'HTTP_500'), artifacts({}), 'rmapp')).toMatchObject({ kind: 'refuse' });
});
