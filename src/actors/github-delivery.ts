/**
 * The steps of GitHubDelivery: who may ask what an event asks for, and doing it through the workflow
 * executor (rmapp/workflows/executor.ts), each intent in a module of its own (delivery-implement.ts,
 * -approval, -stop, -status, -review, -retry). Every effect is idempotent with the delivery: runs start
 * with the delivery as key, signals carry it as dedupe key, replies carry it as comment marker.
 */
import type { DeliveryOutcome, GitHubDeliverySteps, GitHubEventInput } from '../machines/github-delivery.ts';
import { RunNotFoundError } from '../state_machine/errors.ts';
import { step } from '../state_machine/step.ts';
import { helpText, mentions } from '../rmapp/commands.ts';
import { withSignal } from '../rmapp/github/abortable.ts';
import { canSteer, permissionOf } from '../rmapp/github/writes.ts';
import { answerPlan } from './delivery-approval.ts';
import { deliveryContext, type DeliveryContext, type GitHubDeliveryDeps } from './delivery-context.ts';
import { implementIssue } from './delivery-implement.ts';
import { anyoneMay, intentOf, type Intent } from './delivery-intent.ts';
import { cancelledAfter } from './delivery-order.ts';
import { retryRun } from './delivery-retry.ts';
import { reviewRequest } from './delivery-review.ts';
import { statusReply } from './delivery-status.ts';
import { cancelRuns, stopRuns } from './delivery-stop.ts';

export function githubDeliverySteps(deps: GitHubDeliveryDeps): GitHubDeliverySteps {
  // Each execution acts through a client bound to its step's signal: an aborted step reaches GitHub no more.
  const actions = (signal: AbortSignal) => deliveryActions({ ...deps, github: withSignal(deps.github, signal) }, signal);
  return {
    authorize: step(async ({ input, signal }) => actions(signal).authorize(input), { kind: 'github' }),
    act: step(async ({ input, idempotencyKey, signal }) => actions(signal).act(input, idempotencyKey), { kind: 'github' }),
    refuse: step(async ({ input, idempotencyKey, signal }) => actions(signal).refuse(input, idempotencyKey), { kind: 'github' }),
  };
}

/** What the steps of GitHubDelivery do, with `deps.github` the client of one step execution and its signal. */
function deliveryActions(deps: GitHubDeliveryDeps, signal: AbortSignal) {
  const ctx: DeliveryContext = deliveryContext(deps, signal);
  const { repoOf, subjectOf, reply, botComments } = ctx;

  /** The answer to a request a later `cancel` overtook (delivery-order.ts `cancelledAfter`). */
  const overtaken = (e: GitHubEventInput, key: string, by: string) =>
    reply(e, key, `@${by}'s \`cancel\`, written after this request, reached me before it, so I did not start.`);

  const act = async (e: GitHubEventInput, key: string): Promise<DeliveryOutcome> => {
    const intent = intentOf(e, deps);
    const executor = deps.executor();
    const subject = subjectOf(e);
    if (intent.kind === 'implement' || intent.kind === 'review' || intent.kind === 'retry') {
      // Not for a re-execution of this step that already started its run (a crash after the start).
      const started = await executor.status(executor.runIdFor(subject, e.deliveryId)).then(
        () => true,
        (err: unknown) => {
          if (err instanceof RunNotFoundError) return false;
          throw err;
        },
      );
      const by = started ? null : await cancelledAfter(executor, deps.botName, e);
      if (by) return overtaken(e, key, by);
    }
    const outcome = await actOn(e, key, intent);
    // A later `cancel` that acted between the look above and the start found no run to cancel (and said
    // so): looked for again once the run is stored. A cancel acting after this look finds the run, as it
    // reads the runs after it began to act — one of the two always sees the other.
    if (outcome.action !== 'started' || outcome.runId !== executor.runIdFor(subject, e.deliveryId)) return outcome;
    const by = await cancelledAfter(executor, deps.botName, e);
    // Cancelled already: by that cancel, acting after the start, which said so itself.
    if (!by || (await executor.status(outcome.runId)).status === 'cancelled') return outcome;
    await executor.cancel(outcome.runId, `cancelled by @${by} on GitHub: the cancel was written after this request`);
    return reply(
      e,
      key,
      `@${by}'s \`cancel\`, written after this request, was answered while I was starting its run, so I cancelled that run.`,
      { action: 'cancelled', runId: outcome.runId },
    );
  };

  /** Does what the intent asks (once it is not overtaken by a later cancel). */
  const actOn = async (e: GitHubEventInput, key: string, intent: Intent): Promise<DeliveryOutcome> => {
    const subject = subjectOf(e);
    switch (intent.kind) {
      case 'ignore':
        return { action: 'ignored', runId: null, message: intent.reason };
      case 'help':
        return reply(e, key, `${intent.reason ? `${intent.reason}\n\n` : ''}${helpText(deps.botName)}`);
      case 'implement':
        return implementIssue(ctx, e, key, intent);
      case 'approve':
      case 'reject':
        return answerPlan(ctx, e, key, { kind: intent.kind });
      case 'cancel':
        return cancelRuns(ctx, e, key);
      case 'closed':
      case 'unlabeled':
        return stopRuns(ctx, e, key, subject, intent);
      case 'retry':
        return retryRun(ctx, e, key, subject);
      case 'status':
        return statusReply(ctx, e, key);
      case 'review':
        return reviewRequest(ctx, e, key);
    }
  };

  return {
    authorize: async (input: GitHubEventInput): Promise<{ allowed: boolean; permission: string | null }> => {
      if (anyoneMay(intentOf(input, deps))) return { allowed: true, permission: null };
      const permission = await permissionOf(deps.github, repoOf(input), input.author);
      return { allowed: canSteer(permission), permission };
    },
    act,
    refuse: async (input: GitHubEventInput, idempotencyKey: string): Promise<DeliveryOutcome> =>
      // A review is answered through its comments, and each comment for the bot comes as an event of its
      // own, refused on its own: a refusal here too would answer every passer-by's review, even one
      // that never mentions the bot (and a review with N comments for it N + 1 times).
      // Its summary alone mentioning the bot has no comment to be refused through: refused here, once.
      input.event === 'pull_request_review' &&
      !(mentions(input.body, deps.botName) && input.reviewId && (await botComments(input, input.reviewId)).length === 0)
        ? {
            action: 'ignored',
            runId: null,
            message: `review by ${input.author}, who cannot steer rmapp runs: its comments for the bot are answered one by one`,
          }
        : reply(
            input,
            idempotencyKey,
            `thanks for asking! Only people with write access to ${input.owner}/${input.repo} can start or steer rmapp runs, so I did nothing. A maintainer can ask for you.`,
          ),
  };
}
