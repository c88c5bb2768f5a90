/**
 * `sqlLiteral` inlines values into scripts (which bind no parameters), e.g. a concurrency key a user
 * chose: every string must come back from Postgres and PGlite exactly as it went in.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqlLiteral } from '../src/persistence/database.ts';
import { openTestStore } from './helpers/postgres.ts';
import type { Database } from '../src/index.ts';

const HOSTILE = [
  '',
  "it's",
  "''",
  '\\',
  "\\'",
  "a\\'; drop table rmapp_runs; --",
  '$$',
  '$tag$ x $tag$',
  "E'x'",
  '\\x41\\n\\t',
  'line\nbreak\r\ttab',
  'ünïcödé — 日本語 🙂',
  '\u{FFFF}\u{10FFFF}',
  ' leading and trailing ',
  '%_*?[]',
];

describe.each(['postgres', 'pglite'] as const)('sqlLiteral on %s', (kind) => {
  let store: { db: Database; close(): Promise<void> };
  beforeAll(async () => {
    store = await openTestStore(kind);
  });
  afterAll(() => store.close());

  it('round-trips hostile strings through a script', async () => {
    for (const value of HOSTILE) {
      const rows = await store.db.script<{ v: string }>([`select ${sqlLiteral(value)}::text as v`]);
      expect(rows[0]?.v, JSON.stringify(value)).toBe(value);
    }
  });

  it('refuses a NUL byte, which no Postgres text can hold', () => {
    expect(() => sqlLiteral('a\u0000b')).toThrow(/NUL/);
  });
});
