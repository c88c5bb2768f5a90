/**
 * `@rmapp approve` and `@rmapp reject`: the answer to the plan a run waits with, sent to that run as a
 * signal — unless the comment was written before that plan was posted.
 */
import type { DeliveryOutcome, GitHubEventInput } from '../machines/github-delivery.ts';
import type { DeliveryContext } from './delivery-context.ts';
import { writtenBefore } from './delivery-order.ts';

/** Sends an `approve` or `reject` to the run waiting for approval on the subject, or says why not. */
export async function answerPlan(
  ctx: DeliveryContext,
  e: GitHubEventInput,
  key: string,
  intent: { kind: 'approve' | 'reject' },
): Promise<DeliveryOutcome> {
  const { deps, link, reply } = ctx;
  const executor = deps.executor();
  const subject = ctx.subjectOf(e);
  const active = await executor.activeRun(subject);
  if (!active || active.state !== 'awaitingApproval') return reply(e, key, `there is no plan waiting for approval here.`);
  // A late or redelivered comment written before this plan was posted (another run's, or before
  // this one's analysis ended) is not about it.
  const posted = await executor.enteredAt(active.id, 'awaitingApproval');
  if (writtenBefore(e, posted))
    return reply(
      e,
      key,
      `your \`${intent.kind}\` was written before the plan waiting now was posted (run ${link(active.id)}), so I did not apply it to that plan. If you ${intent.kind} it, comment \`@${deps.botName} ${intent.kind}\` again.`,
    );
  await executor.signal(active.id, { type: intent.kind, by: e.author }, `delivery:${e.deliveryId}`);
  return { action: 'signalled', runId: active.id, message: `${intent.kind} sent to ${active.id}` };
}
