/**
 * A small deterministic generator (mulberry32) for the tests that draw random cases: a failure names its
 * seed, and the same seed draws the same case again.
 */

/** Whole numbers below `n`, and picks from a list, drawn from `seed`. */
export function generator(seed: number): { int(n: number): number; pick<T>(xs: readonly T[]): T } {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return { int, pick: (xs) => xs[int(xs.length)] as (typeof xs)[number] };
}

/** A generator, as {@link generator} makes it. */
export type Random = ReturnType<typeof generator>;
