/**
 * `@rmapp retry`: the subject's last run, if it failed, continues or starts over in a new run
 * (src/rmapp/workflows/retry.ts decides which), and the answer says truthfully what it does.
 */
import type { DeliveryOutcome, GitHubEventInput } from '../machines/github-delivery.ts';
import type { RunInfo } from '../state_machine/run-info.ts';
import { errorText } from '../rmapp/run-texts.ts';
import type { Subject } from '../rmapp/workflows/executor.ts';
import type { DeliveryContext } from './delivery-context.ts';

/** `@bot retry`: continues the last run if it failed, in a new run, and says truthfully what it does (src/rmapp/workflows/retry.ts). */
export async function retryRun(ctx: DeliveryContext, e: GitHubEventInput, key: string, subject: Subject): Promise<DeliveryOutcome> {
  const { deps, link, reply, branchIssueOf, settingsOr } = ctx;
  const executor = deps.executor();
  const active = await executor.activeRun(subject);
  // A re-execution of this step finds the run it started itself: answered as the first time.
  const mine = executor.runIdFor(subject, e.deliveryId);
  if (active && active.id !== mine) return reply(e, key, `run ${link(active.id)} is still going here; there is nothing to retry yet.`);
  // The run this request retries: the newest other than the one a re-execution of this step started.
  const latest = await latestBefore(ctx, subject, mine);
  if (!latest) return reply(e, key, 'no run has worked on this yet, so there is nothing to retry.');
  if (latest.status !== 'failed')
    return reply(
      e,
      key,
      `the last run here (${link(latest.id)}) ${latest.status === 'succeeded' ? 'succeeded' : `was ${latest.status}`}; there is nothing to retry.`,
    );
  const decision = await executor.decideRetry(latest, deps.botName);
  if (decision.kind !== 'refuse') {
    const checked = await settingsOr(e, key);
    if (checked.refused) return checked.refused;
  }
  // The message may quote what the agent or the tests printed: a code span, never mentions or links.
  const failure = latest.error ? ` It failed with: ${errorText(latest.error)}` : '';
  const started = (runId: string, text: string): Promise<DeliveryOutcome> => reply(e, key, text, { action: 'retried', runId });
  // Another `retry` of the same failed run got there first: its run is the one retry (engine idempotency).
  const already = (runId: string): Promise<DeliveryOutcome> =>
    reply(e, key, `run ${link(runId)} is already retrying run ${link(latest.id)}; I did not start another.`, {
      action: 'replied',
      runId,
    });
  switch (decision.kind) {
    case 'refuse':
      return reply(e, key, `I cannot retry run ${link(latest.id)}: ${decision.why}`);
    case 'continue':
    case 'restart-issue': {
      const input = latest.input as { requestedBy?: string; maxTestAttempts?: number; approvalTimeoutMs?: number };
      // The successor of the failed run, as an `implement` deciding at the same moment starts it: one of
      // the two starts (executor.ts `successorKey`), and the other's comes back as its id.
      const runId = await executor.startIssueWorkflow({
        owner: e.owner,
        repo: e.repo,
        issueNumber: e.number,
        template: decision.template,
        requestedBy: e.author,
        options: { maxTestAttempts: input.maxTestAttempts, approvalTimeoutMs: input.approvalTimeoutMs },
        key: e.deliveryId,
        continueFrom:
          decision.kind === 'continue'
            ? {
                runId: latest.id,
                plan: decision.plan,
                lastTestOutput: decision.lastTestOutput,
                ...(decision.pushes.length ? { pushes: decision.pushes } : {}),
              }
            : undefined,
        retryOf: latest.id,
        after: latest.id,
        requestedAt: e.writtenAt,
      });
      if (runId !== mine) return already(runId);
      const rounds = input.maxTestAttempts ?? 3;
      return started(
        runId,
        decision.kind === 'continue'
          ? `retrying: run ${link(runId)} continues run ${link(latest.id)} on its branch with the same plan — implementing again, then up to ${rounds} test round${rounds === 1 ? '' : 's'}.${failure}`
          : `retrying from the start: run ${link(latest.id)} failed before it had a plan, so run ${link(runId)} analyses and plans again.${failure}`,
      );
    }
    case 'review-comment': {
      const runId = await executor.startReviewComment({
        owner: e.owner,
        repo: e.repo,
        pullNumber: e.number,
        commentId: decision.commentId,
        key: e.deliveryId,
        branchIssue: await branchIssueOf(e),
        retryOf: latest.id,
        ...(decision.source ? { source: decision.source } : {}),
      });
      if (runId !== mine) return already(runId);
      return started(runId, `retrying: run ${link(runId)} answers review comment ${decision.commentId} again.${failure}`);
    }
    case 'review': {
      const runId = await executor.startReview({
        owner: e.owner,
        repo: e.repo,
        pullNumber: e.number,
        reviewId: decision.reviewId,
        key: e.deliveryId,
        branchIssue: await branchIssueOf(e),
        retryOf: latest.id,
      });
      if (runId !== mine) return already(runId);
      return started(runId, `retrying: run ${link(runId)} answers the review's comments again.${failure}`);
    }
  }
}

/** The newest run of a subject other than `except` (the retry this step already started). */
async function latestBefore({ deps }: DeliveryContext, subject: Subject, except: string): Promise<RunInfo | null> {
  const runs = await deps.executor().recentRuns(subject, 2);
  return runs.find((r) => r.id !== except) ?? null;
}
