/**
 * `@rmapp retry` hands the failed run's pushes on (`continueFrom.pushes`, at most 200): the newest are
 * kept. The failed run's own record went first, so after a long chain of retries the cap dropped the
 * failed run's own pushes — the commits its branch holds — for its ancestors', and the run continuing it
 * could be refused the branch it made (ISSUE_BRANCH_TAKEN).
 */
import { expect, it } from 'vitest';
import { decideRetry } from '../src/rmapp/workflows/retry.ts';

const sha = (n: number) => n.toString(16).padStart(40, '0');

it("keeps the failed run's own pushes when the chain holds more than the cap", async () => {
  const inherited = Array.from({ length: 200 }, (_, i) => sha(i + 1));
  const own = [sha(1000), sha(1001)];
  const run = {
    workflow: 'IssueImplementation',
    input: { continueFrom: { runId: 'r-1', plan: 'the plan', pushes: inherited } },
    error: { code: 'TESTS_FAILED', category: 'test_failure', message: 'tests failed', name: 'WorkflowError' },
  };
  const artifacts: Record<string, unknown> = { plan: 'the plan', 'branch-pushes': own, 'test-output': 'x' };
  const decision = await decideRetry(run as never, async (name) => artifacts[name], 'rmapp');
  expect(decision.kind).toBe('continue');
  const pushes = (decision as { pushes: string[] }).pushes;
  expect(pushes).toHaveLength(200);
  expect(pushes.slice(-2)).toEqual(own);
});
