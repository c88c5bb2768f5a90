/**
 * Whole numbers as a user writes them in a flag, a variable or a configuration file: decimal digits
 * only. `Number()` also reads `1e10`, `0x10` and `Infinity`, so `RMAPP_CONCURRENCY=1e10` was ten billion
 * runs at once (an adversarial pass).
 */

/** The largest count or duration in ms rmapp takes: what Postgres's integer and Node's timers hold (1e20 reached the database as a raw error). */
export const MAX_COUNT = 2 ** 31 - 1;

/** `value`'s decimal digits (at most `maxDigits`, spaces around them allowed) as a number; NaN for anything else. */
export function decimal(value: string, maxDigits = 10): number {
  return new RegExp(`^\\s*\\d{1,${maxDigits}}\\s*$`).test(value) ? Number(value) : NaN;
}

/** A count from 1 to {@link MAX_COUNT}, given as a number or as decimal text; null for anything else. */
export function countOf(value: string | number): number | null {
  const n = typeof value === 'number' ? value : decimal(value);
  return Number.isInteger(n) && n >= 1 && n <= MAX_COUNT ? n : null;
}
