/**
 * Retry policies: which failures are retried, how often and how long to wait. The delay is computed
 * here, recorded in the run's row and waited out durably (the run is evicted for long waits), so a
 * worker restarted mid-backoff waits only the time that remains.
 */
import type { ErrorCategory, ErrorData } from './errors.ts';

/** How a step kind is retried. */
export interface RetryPolicy {
  /** Attempts in all, the first included. 1 means never retry. */
  maxAttempts: number;
  initialDelayMs: number;
  multiplier: number;
  maxDelayMs: number;
  /** 0..1: the delay is drawn from [d·(1−jitter), d]. */
  jitter: number;
  /** Categories that are retried; others fail the step at once. */
  retryOn: readonly ErrorCategory[];
}

/** Defaults close to Temporal's: transient failures, rate limits and timeouts are retried, with backoff. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  maxAttempts: 5,
  initialDelayMs: 1_000,
  multiplier: 2,
  maxDelayMs: 5 * 60_000,
  jitter: 0.2,
  retryOn: ['transient', 'rate_limited', 'timeout'] as const,
});

/** Categories that are never retried whatever a policy says: retrying them cannot help. */
const NEVER_RETRIED: readonly ErrorCategory[] = ['permanent', 'validation', 'cancelled'];

/** Merges partial policies over the default and checks the result. */
export function resolveRetryPolicy(...parts: (Partial<RetryPolicy> | undefined)[]): RetryPolicy {
  const p: RetryPolicy = Object.assign({}, DEFAULT_RETRY_POLICY, ...parts.filter(Boolean));
  const problems: string[] = [];
  if (!Number.isInteger(p.maxAttempts) || p.maxAttempts < 1) problems.push('maxAttempts must be an integer ≥ 1');
  if (!(p.initialDelayMs >= 0)) problems.push('initialDelayMs must be ≥ 0');
  if (!(p.multiplier >= 1)) problems.push('multiplier must be ≥ 1');
  if (!(p.maxDelayMs >= p.initialDelayMs)) problems.push('maxDelayMs must be ≥ initialDelayMs');
  if (!(p.jitter >= 0 && p.jitter <= 1)) problems.push('jitter must be between 0 and 1');
  if (problems.length) throw new RangeError(`Invalid retry policy: ${problems.join('; ')}.`);
  return p;
}

/** Whether a failure of `attempt` (1-based) should be retried under `policy`. */
export function shouldRetry(policy: RetryPolicy, error: ErrorData, attempt: number): boolean {
  if (attempt >= policy.maxAttempts) return false;
  if (NEVER_RETRIED.includes(error.category)) return false;
  return policy.retryOn.includes(error.category);
}

/** The longest wait before a retry, whatever the policy or a `retryAfterMs` says: a year (its due time is stored). */
const MAX_BACKOFF_MS = 365 * 24 * 3_600_000;

/**
 * The wait before the attempt after `attempt`: exponential, capped, jittered; a `retry-after` from a
 * rate limit wins when it is longer; a year at most.
 */
export function backoffDelay(policy: RetryPolicy, attempt: number, error: ErrorData, random: () => number = Math.random): number {
  const exp = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.multiplier ** (attempt - 1));
  const jittered = exp * (1 - policy.jitter * random());
  // `maxDelayMs: Infinity` reads as "no cap", and a policy's product can pass any date: a year at most.
  const delay = Math.min(MAX_BACKOFF_MS, Math.round(jittered));
  if (error.category !== 'rate_limited' || error.retryAfterMs === undefined) return delay;
  // A server's (or a step's) Retry-After is honoured up to a year; NaN or Infinity is no advice.
  return Number.isFinite(error.retryAfterMs) ? Math.max(delay, Math.min(error.retryAfterMs, MAX_BACKOFF_MS)) : delay;
}
