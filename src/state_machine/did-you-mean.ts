/**
 * "Did you mean …?" for a mistyped name: a known name it begins or is the beginning of, else the known
 * name closest by edit distance when it is close enough to be a typo (at most a third of the name's
 * letters changed, and at most 3).
 */

/** Edit distance (insertions, deletions, substitutions, and swaps of two neighbours: `prot`/`port` is 1), case-insensitive. */
function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  let before: number[] = [];
  let prev = Array.from({ length: t.length + 1 }, (_, j) => j);
  for (let i = 1; i <= s.length; i++) {
    const row = [i];
    for (let j = 1; j <= t.length; j++) {
      let d = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + (s[i - 1] === t[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1]) d = Math.min(d, (before[j - 2] as number) + 1);
      row[j] = d;
    }
    before = prev;
    prev = row;
  }
  return prev[t.length] as number;
}

/** The closest of `known` to `name`, or undefined when none is close enough to be a typo of it. */
export function didYouMean(name: string, known: readonly string[]): string | undefined {
  // A name cut short or run on (`bot` for `botName`) is a typo too, however many letters it lacks.
  const lower = name.toLowerCase();
  const affix = name.length >= 3 ? known.find((k) => k.toLowerCase().startsWith(lower) || lower.startsWith(k.toLowerCase())) : undefined;
  if (affix) return affix;
  let best: { name: string; distance: number } | undefined;
  for (const candidate of known) {
    const distance = editDistance(name, candidate);
    if (!best || distance < best.distance) best = { name: candidate, distance };
  }
  const limit = Math.min(3, Math.max(1, Math.floor(name.length / 3)));
  return best && best.distance <= limit ? best.name : undefined;
}
