// The oldest webhook event the service acts on (a module of its own: `rmapp worker` and `rmapp prune`
// read it without the webhook stack).
import { formatDuration, type RetentionPolicy } from '../../persistence/retention-policy.ts';

/**
 * How old the event of a delivery may be. GitHub redelivers a delivery only within 3 days of it (by hand
 * or through its API) and never retries on its own, so a signed body about an older event is a copy
 * someone kept and sent again. Its dedupe (executor.ts `deliveryKey`) lives in the run it started, which
 * retention deletes (succeeded runs after 7 days by default): without this bound, a copy replayed after
 * that would start the work again. The hour more allows for clocks and GitHub's queue.
 */
export const WEBHOOK_EVENT_MAX_AGE_MS = 3 * 86_400_000 + 3_600_000;

/**
 * What to tell an operator whose retention prunes finished runs sooner than {@link WEBHOOK_EVENT_MAX_AGE_MS}
 * (null when it does not): a delivery is recognised as a copy by the run it started, so until then a copy
 * sent again after its run is pruned would start its work again.
 */
export function retentionForgetsDeliveries(policy: RetentionPolicy): string | null {
  const shortest = Math.min(policy.succeededMs, policy.failedMs, policy.cancelledMs);
  if (shortest >= WEBHOOK_EVENT_MAX_AGE_MS) return null;
  return (
    `finished runs kept ${formatDuration(shortest)}, less than the ${formatDuration(WEBHOOK_EVENT_MAX_AGE_MS)} in which ` +
    'GitHub webhook deliveries are accepted: where this database serves webhooks, a copy of a delivery sent again ' +
    'after its run is pruned starts its work again; keep finished runs 73h or more'
  );
}
