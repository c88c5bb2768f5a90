/**
 * `listRuns` by id prefix and by parent on a table of 60,000 runs: the plans Postgres chooses are index
 * scans (no sequential or bitmap heap scan of a status's runs), and the rows are the right ones. `id like
 * 'abc%'` alone is no index condition under a `C.UTF-8` collation: a prefix in every status read each
 * status's runs (6 s at 1,000,000 runs); src/persistence/id-prefix.ts adds the primary key's range.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../src/index.ts';
import type { Queryable } from '../src/persistence/database.ts';
import { likePrefixPattern, prefixRange, sortsByCodePoint } from '../src/persistence/id-prefix.ts';
import { migrate } from '../src/persistence/migrate.ts';
import { listRuns, type ListRunsFilter } from '../src/persistence/runs.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';

let testDb: TestDatabase;
let db: Database;

// Ids as newRunId makes them (time first, in hex), one run a millisecond; every 10th the child of the
// run 5 before it.
const idOf = (n: string) => `lpad(to_hex(1700000000000 + ${n}), 12, '0') || '-7' || substr(md5((${n})::text), 1, 19)`;

beforeAll(async () => {
  testDb = await createTestDatabase();
  db = await openDatabase({ url: testDb.url });
  await migrate(db);
  await db.query(
    `insert into rmapp_runs (id, parent_run_id, workflow, workflow_version, status, input, created_at)
     select ${idOf('g')}, case when g % 10 = 0 then ${idOf('g - 5')} end,
       'plan.test', 'v1', (array['pending','running','waiting','succeeded','failed','cancelled'])[1 + g % 6], '{}'::jsonb,
       now() - interval '1 day' + g * interval '1 ms'
     from generate_series(1, 60000) g`,
  );
  await db.query('analyze rmapp_runs');
}, 120_000);
afterAll(async () => {
  await db?.close();
  await testDb?.drop();
});

/** The scan lines of the plan of the statement `listRuns` sends for `filter`. */
async function scansOf(filter: ListRunsFilter): Promise<string[]> {
  let sent: [string, readonly unknown[]] = ['', []];
  const capture: Queryable = {
    query: async <T>(text: string, params?: readonly unknown[]) =>
      // The collation question goes through; the list itself is only recorded.
      text.includes('pg_database') ? db.query<T>(text, params) : ((sent = [text, params ?? []]), [] as T[]),
  };
  await listRuns(capture, filter);
  const plan = await db.query<{ 'QUERY PLAN': string }>(`explain (costs off) ${sent[0]}`, sent[1]);
  return plan.map((r) => r['QUERY PLAN']).filter((line) => /Scan/.test(line));
}

describe('listRuns by id prefix and parent on Postgres', () => {
  it('reads through indexes only', async () => {
    const [row] = await db.query<{ id: string; parent: string }>(
      `select id, parent_run_id as parent from rmapp_runs where parent_run_id is not null order by id limit 1 offset 3000`,
    );
    const { id, parent } = row as { id: string; parent: string };
    const filters: [string, ListRunsFilter][] = [
      ['idPrefix (a whole id but its last characters)', { idPrefix: id.slice(0, 20) }],
      ['idPrefix and status', { idPrefix: id.slice(0, 20), status: 'succeeded' }],
      ['idPrefix matching nothing', { idPrefix: 'zz-nothing' }],
      ['parentRunId', { parentRunId: parent }],
      ['parentRunId and status', { parentRunId: parent, status: ['failed', 'succeeded'] }],
    ];
    for (const [label, filter] of filters) {
      const scans = await scansOf({ ...filter, limit: 50 });
      expect(scans.length, label).toBeGreaterThan(0);
      const other = scans.filter((line) => !/Index (Only )?Scan/.test(line) || /Bitmap/.test(line));
      expect(other, `${label}: ${scans.join(' | ')}`).toEqual([]);
    }
    expect((await listRuns(db, { idPrefix: id.slice(0, 20) })).map((r) => r.id)).toEqual([id]);
    expect((await listRuns(db, { parentRunId: parent })).map((r) => r.id)).toEqual([id]);
  });

  it('takes C, POSIX and C.UTF-8 as code point order, and no other collation', async () => {
    const [{ collate }] = (await db.query<{ collate: string }>(
      'select datcollate as collate from pg_database where datname = current_database()',
    )) as [{ collate: string }];
    expect(await sortsByCodePoint(db)).toBe(/^(C|POSIX|C\.UTF-?8)$/i.test(collate));
  });
});

describe('prefix as a pattern and a range', () => {
  it('escapes LIKE wildcards and the escape character, and ends the range at the successor of the last code point', () => {
    expect(likePrefixPattern('a%b_c\\d')).toBe('a\\%b\\_c\\\\d%');
    expect(prefixRange('019ad6b2')).toEqual({ from: '019ad6b2', below: '019ad6b3' });
    expect(prefixRange('ab~')).toEqual({ from: 'ab~', below: 'ab\u007f' });
    expect(prefixRange('a\ud7ff')).toEqual({ from: 'a\ud7ff', below: 'a\ue000' });
    expect(prefixRange('a\u{1f600}')).toEqual({ from: 'a\u{1f600}', below: 'a\u{1f601}' });
    expect(prefixRange('a\u{10ffff}')).toEqual({ from: 'a\u{10ffff}', below: null });
  });
});
