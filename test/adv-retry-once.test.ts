/**
 * Two `@rmapp retry` comments on the same failed run, delivered at once, both find no active run: each
 * must not start its own continuation (two runs on one branch, the second queued behind the first and
 * redoing its work). The retries of one failed run share one start: the engine's idempotency key.
 */
import { describe, expect, it } from 'vitest';
import { WorkflowExecutor } from '../src/rmapp/workflows/executor.ts';

/** The engine's start as far as keys go: a key names one start; a later call with it gets that run. */
function keyedEngine() {
  const byKey = new Map<string, string>();
  const starts: { workflow: string; runId: string; key: string }[] = [];
  const engine = {
    async start(workflow: string, _input: unknown, options: { runId: string; idempotencyKey: string }) {
      await new Promise((r) => setImmediate(r));
      const existing = byKey.get(options.idempotencyKey);
      if (existing) return existing;
      byKey.set(options.idempotencyKey, options.runId);
      starts.push({ workflow, runId: options.runId, key: options.idempotencyKey });
      return options.runId;
    },
  };
  return { engine, starts };
}

describe('one retry per failed run', () => {
  it('two retries of an issue run at once start one run', async () => {
    const { engine, starts } = keyedEngine();
    const executor = new WorkflowExecutor(engine as never, { maxTestAttempts: 3 });
    const retry = (key: string) =>
      executor.startIssueWorkflow({
        owner: 'o',
        repo: 'r',
        issueNumber: 7,
        template: 'simple',
        requestedBy: 'ada',
        key,
        continueFrom: { runId: 'failed-run', plan: 'goal: x', lastTestOutput: null },
        retryOf: 'failed-run',
      });
    const [a, b] = await Promise.all([retry('delivery-1'), retry('delivery-2')]);
    expect(starts, 'each retry started its own run').toHaveLength(1);
    expect(a).toBe(b);
  });

  it('two retries of a review comment at once start one run; a later failed run is retried anew', async () => {
    const { engine, starts } = keyedEngine();
    const executor = new WorkflowExecutor(engine as never, { maxTestAttempts: 3 });
    const retry = (key: string, of: string) =>
      executor.startReviewComment({ owner: 'o', repo: 'r', pullNumber: 3, commentId: 11, key, retryOf: of });
    await Promise.all([retry('d1', 'review-run-1'), retry('d2', 'review-run-1')]);
    expect(starts).toHaveLength(1);
    await retry('d3', 'review-run-2');
    expect(starts).toHaveLength(2);
  });
});
