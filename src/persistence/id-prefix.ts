/**
 * A run id prefix as SQL conditions (`engine.list({ idPrefix })`, `GET /api/runs?idPrefix=`): matched
 * literally, and read through the primary key's range where the database's collation allows it.
 *
 * `id like 'abc%'` alone is no index condition unless the column's collation is exactly "C" or "POSIX":
 * on a `C.UTF-8` database (Debian's default in containers) with 1,000,000 runs, a prefix looked for in
 * every status read each status's runs (bitmap heap scans, 6 s). The range `id >= 'abc' and id < 'abd'`
 * is an index condition on the primary key in any collation, but it holds exactly the ids starting with
 * the prefix only where text sorts by code point: there it is added (0.1 ms on the same table), and the
 * `like` stays beside it as the exact test. A linguistic collation (`en_US.UTF-8` sorts `a-b` after
 * `a.`, ignoring punctuation at first) gets the `like` alone: right, not fast.
 */
import type { Queryable } from './database.ts';

/** `prefix` as a LIKE pattern: its `%`, `_` and `\` stand for themselves, then any rest. */
export function likePrefixPattern(prefix: string): string {
  return `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/**
 * The half-open range of strings that start with `prefix` in code point order: from the prefix to the
 * prefix with its last code point's successor (no upper bound after U+10FFFF; the surrogates, which
 * are not text, are stepped over).
 *
 * @example
 * prefixRange('019ad6b2'); // { from: '019ad6b2', below: '019ad6b3' }
 */
export function prefixRange(prefix: string): { from: string; below: string | null } {
  const points = Array.from(prefix);
  const last = points.pop()?.codePointAt(0);
  if (last === undefined || last >= 0x10ffff) return { from: prefix, below: null };
  const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
  return { from: prefix, below: `${points.join('')}${String.fromCodePoint(next)}` };
}

const known = new WeakMap<Queryable, Promise<boolean>>();

/**
 * Whether text in this database sorts by code point (collation C, POSIX or C.UTF-8, libc or the builtin
 * provider): asked once per database handle. A failed question is asked again next time, and answers
 * false meanwhile (the slower, still right, plan).
 */
export function sortsByCodePoint(db: Queryable): Promise<boolean> {
  let answer = known.get(db);
  if (!answer) {
    answer = db
      .query<{ collate: string; provider: string | null }>(
        // datlocprovider is Postgres 15's (absent before: libc); through jsonb, one text for every version.
        `select datcollate as collate, to_jsonb(d)->>'datlocprovider' as provider from pg_database d where datname = current_database()`,
      )
      .then(([row]) => !!row && (row.provider ?? 'c') !== 'i' && /^(C|POSIX|C\.UTF-?8)$/i.test(row.collate))
      .catch(() => {
        known.delete(db);
        return false;
      });
    known.set(db, answer);
  }
  return answer;
}

/**
 * The conditions (joined by `and`) that select the runs whose id starts with `prefix`; `param` adds a
 * statement parameter and returns the `$n` that names it in the SQL text.
 */
export async function idPrefixConditions(db: Queryable, prefix: string, param: (value: unknown) => string): Promise<string[]> {
  const conditions = [`id like ${param(likePrefixPattern(prefix))}`];
  if (await sortsByCodePoint(db)) {
    const { from, below } = prefixRange(prefix);
    conditions.push(`id >= ${param(from)}`);
    if (below !== null) conditions.push(`id < ${param(below)}`);
  }
  return conditions;
}
