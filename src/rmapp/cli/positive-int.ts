import { InvalidArgumentError } from 'commander';

/** Commander's parser for a count or a duration in ms: a positive integer, else a message naming the rule. */
export function positiveInt(value: string): number {
  const n = Number(value);
  // At most what Postgres's integer and Node's timers hold: 1e20 reached the database as a raw error.
  if (!Number.isInteger(n) || n <= 0 || n > 2 ** 31 - 1) throw new InvalidArgumentError('must be a positive integer up to 2147483647');
  return n;
}
