// The oldest webhook event the service acts on (a module of its own: `rmapp worker` reads it at start-up without the webhook stack).
/**
 * How old the event of a delivery may be. GitHub redelivers a delivery only within 3 days of it (by hand
 * or through its API) and never retries on its own, so a signed body about an older event is a copy
 * someone kept and sent again. Its dedupe (executor.ts `deliveryKey`) lives in the run it started, which
 * retention deletes (succeeded runs after 7 days by default): without this bound, a copy replayed after
 * that would start the work again. The hour more allows for clocks and GitHub's queue.
 */
export const WEBHOOK_EVENT_MAX_AGE_MS = 3 * 86_400_000 + 3_600_000;
