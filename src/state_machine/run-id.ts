/**
 * Run ids: UUID version 7 (RFC 9562) — 48 bits of Unix milliseconds, then random bits — so new runs
 * and their history rows land at the right-hand end of their indexes instead of on random pages.
 * Random (v4) ids dirtied a random index page per insert: after each checkpoint each of those is a
 * full-page image in the WAL (the README's "Benchmark" section has the figures).
 */
import { randomBytes } from 'node:crypto';

/** A new UUIDv7, e.g. `019ad6b2-6c1e-7a3c-9f0e-3b1d2c4e5f60`. */
export function newRunId(now: number = Date.now()): string {
  const b = randomBytes(16);
  b.writeUIntBE(now, 0, 6);
  b[6] = 0x70 | ((b[6] as number) & 0x0f);
  b[8] = 0x80 | ((b[8] as number) & 0x3f);
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
