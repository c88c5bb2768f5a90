/**
 * A review, a review comment, or `@rmapp <request>` in a pull request's conversation: the change asked
 * for goes to the pull request's run if one takes it, or starts a PRReview (one comment) or a
 * ReviewResponse (a review's several comments).
 */
import type { DeliveryOutcome, GitHubEventInput } from '../machines/github-delivery.ts';
import { mentions } from '../rmapp/commands.ts';
import type { DeliveryContext } from './delivery-context.ts';

/** Sends the review's request to a run, starts one for it, or says where to ask. */
export async function reviewRequest(ctx: DeliveryContext, e: GitHubEventInput, key: string): Promise<DeliveryOutcome> {
  const { deps, reply, branchIssueOf, botComments, settingsOr } = ctx;
  const executor = deps.executor();
  const subject = ctx.subjectOf(e);
  /** A PRReview of one comment; one run per pull request at a time: it queues behind a running one (its concurrency key). */
  const startComment = async (commentId: number, source?: 'conversation') =>
    executor.startReviewComment({
      owner: e.owner,
      repo: e.repo,
      pullNumber: e.number,
      commentId,
      key: e.deliveryId,
      branchIssue: await branchIssueOf(e),
      ...(source ? { source } : {}),
    });
  /** One review comment for the bot: into the pull request's run that takes it, or a PRReview of its own. */
  const answerComment = async (commentId: number): Promise<DeliveryOutcome> => {
    // Taken already through the other of its two deliveries (executor.ts `reviewCommentTaken`), or by this
    // step before a crash: that run's answer is the answer.
    const taken = await executor.reviewCommentTaken(subject, commentId, e.writtenAt ? new Date(e.writtenAt) : null);
    if (taken)
      return taken.workflow === 'PRReview'
        ? { action: 'started', runId: taken.id, message: `PRReview for comment ${commentId}` }
        : { action: 'signalled', runId: taken.id, message: `comment ${commentId} sent to ${taken.id}` };
    const into = await executor.addReviewComment(subject, commentId);
    if (into) return { action: 'signalled', runId: into, message: `comment ${commentId} sent to ${into}` };
    const checked = await settingsOr(e, key);
    if (checked.refused) return checked.refused;
    return { action: 'started', runId: await startComment(commentId), message: `PRReview for comment ${commentId}` };
  };
  if (e.event === 'issue_comment') {
    const runId = await startComment(e.commentId as number, 'conversation');
    return { action: 'started', runId, message: `PRReview for conversation comment ${e.commentId}` };
  }
  const reviewId = e.reviewId;
  const ids = reviewId ? await botComments(e, reviewId) : [];
  if (e.event === 'pull_request_review_comment') {
    // A review with several comments for the bot is answered as one (ReviewResponse) by its review event.
    if (ids.length > 1)
      return { action: 'ignored', runId: null, message: `comment ${e.commentId} is one of ${ids.length} in review ${reviewId}` };
    return answerComment(e.commentId as number);
  }
  if (ids.length === 0) {
    // The request is in the review's summary only: GitHub notified the bot of it, and silence left
    // the reviewer waiting for a change that never came.
    if (mentions(e.body, deps.botName)) return reply(e, key, reviewSummaryText(deps.botName));
    return { action: 'ignored', runId: null, message: `review ${reviewId} has no comment for the bot` };
  }
  if (ids.length === 1) return answerComment(ids[0] as number);
  const checked = await settingsOr(e, key);
  if (checked.refused) return checked.refused;
  const runId = await executor.startReview({
    owner: e.owner,
    repo: e.repo,
    pullNumber: e.number,
    reviewId: reviewId as number,
    key: e.deliveryId,
    branchIssue: await branchIssueOf(e),
  });
  return { action: 'started', runId, message: `ReviewResponse for ${ids.length} comments of review ${reviewId}` };
}

/**
 * The answer to a review whose summary (its own text) mentions the bot while none of its comments
 * does: only comments are requests (a review's summary has no comment of its own to answer or read
 * again), so the reviewer is told where to ask.
 */
const reviewSummaryText = (botName: string) =>
  `I act on the comments of a review, not on its summary, so I changed nothing. Ask in a review comment on the code, or in this pull request's conversation: \`@${botName.replace(/\[bot\]$/, '')} <what to change>\`.`;
