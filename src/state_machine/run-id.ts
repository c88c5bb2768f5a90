/**
 * Run ids: UUID version 7 (RFC 9562) — 48 bits of Unix milliseconds, then random bits — so new runs
 * and their history rows land at the right-hand end of their indexes instead of on random pages.
 * Random (v4) ids dirtied a random index page per insert: after each checkpoint each of those is a
 * full-page image in the WAL (the README's "Benchmark" section has the figures).
 */
import { randomUUID } from 'node:crypto';

/**
 * A new UUIDv7, e.g. `019ad6b2-6c1e-7a3c-9f0e-3b1d2c4e5f60`: the time in the first 48 bits, the rest
 * from `randomUUID` (v4: 74 random bits, variant already `10`), whose random bytes Node draws from a
 * cached pool. `randomBytes(16)` per id, hex-encoded and sliced, was 1.5 % of a worker's CPU at
 * concurrency 50 (a `--cpu-prof` of the benchmark, bench/README.md).
 */
export function newRunId(now: number = Date.now()): string {
  const t = Math.trunc(now).toString(16).padStart(12, '0').slice(-12);
  // randomUUID() is a v4 UUID whose 15th character is its version digit `4`: keep everything after it.
  return `${t.slice(0, 8)}-${t.slice(8)}-7${randomUUID().slice(15)}`;
}
