import { InvalidArgumentError } from 'commander';

/** Commander's parser for a count or a duration in ms: a positive integer, else a message naming the rule. */
export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}
