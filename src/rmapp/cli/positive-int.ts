import { InvalidArgumentError } from 'commander';

/** Commander's parser for a count or a duration in ms: a positive integer, else a message naming the rule. */
export function positiveInt(value: string): number {
  // Decimal digits only: Number() also reads "0x50", "1e3" and "0b1".
  const n = /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  // At most what Postgres's integer and Node's timers hold: 1e20 reached the database as a raw error.
  if (!Number.isInteger(n) || n <= 0 || n > 2 ** 31 - 1) throw new InvalidArgumentError('must be a positive integer up to 2147483647');
  return n;
}

/** Commander's parser for a TCP port: 1 to 65535, written in decimal. */
export function portNumber(value: string): number {
  const n = /^\d{1,5}$/.test(value.trim()) ? Number(value) : NaN;
  if (!(n >= 1 && n <= 65_535)) throw new InvalidArgumentError('must be a port number from 1 to 65535');
  return n;
}
