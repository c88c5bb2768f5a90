/**
 * A rate limit's `retryAfterMs` decides when the next attempt runs, and that time is stored: a value
 * that is no time at all (NaN, Infinity) or one past what a date can hold must not break the retry.
 */
import { expect, it } from 'vitest';
import { backoffDelay, resolveRetryPolicy } from '../src/state_machine/retry-policy.ts';
import type { ErrorData } from '../src/state_machine/errors.ts';

const policy = resolveRetryPolicy({ initialDelayMs: 1_000, maxDelayMs: 60_000, multiplier: 2, jitter: 0 });
const limited = (retryAfterMs: number): ErrorData => ({
  name: 'RateLimited',
  message: 'slow down',
  code: 'RATE_LIMITED',
  category: 'rate_limited',
  retryAfterMs,
});
const YEAR = 365 * 24 * 3_600_000;

it.each([
  ['a longer Retry-After wins', 90_000, 90_000],
  ['a shorter one does not', 10, 1_000],
  ['NaN is no advice', Number.NaN, 1_000],
  ['Infinity is no advice', Infinity, 1_000],
  ['a century is capped at a year', 100 * YEAR, YEAR],
  ['1e20 ms too', 1e20, YEAR],
])('%s', (_what, retryAfterMs, expected) => {
  const delay = backoffDelay(policy, 1, limited(retryAfterMs));
  expect(delay).toBe(expected);
  expect(new Date(Date.now() + delay).toISOString(), 'the next attempt time can be written').toMatch(/^\d{4}-/);
});

it('a policy without a cap (maxDelayMs: Infinity) or with a huge first delay waits a year at most', () => {
  const uncapped = resolveRetryPolicy({ initialDelayMs: 1, multiplier: 1e6, maxDelayMs: Infinity, jitter: 0 });
  expect(backoffDelay(uncapped, 4, { ...limited(0), category: 'transient' })).toBe(YEAR);
  const huge = resolveRetryPolicy({ initialDelayMs: 1e16, maxDelayMs: 1e16, jitter: 0 });
  expect(backoffDelay(huge, 1, { ...limited(0), category: 'transient' })).toBe(YEAR);
});
