/**
 * Adversarial: run ids are UUIDv7 built from randomUUID's bytes (src/state_machine/run-id.ts): the
 * format, the version and variant nibbles, uniqueness in a tight loop, the time in the first 48 bits,
 * and ids of later milliseconds sorting after earlier ones, in JS and in Postgres's collation.
 */
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../src/index.ts';
import { newRunId } from '../src/state_machine/run-id.ts';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('newRunId (UUIDv7)', () => {
  it('has the v7 format, version 7 and variant 10, in a tight loop of 200,000 ids, all distinct', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 200_000; i++) {
      const id = newRunId();
      if (!V7.test(id)) throw new Error(`not a UUIDv7: ${id}`);
      ids.add(id);
    }
    expect(ids.size).toBe(200_000);
  });

  it('carries the time in its first 48 bits, at the epoch, today and the last millisecond 48 bits hold', () => {
    for (const t of [0, 1, Date.UTC(2026, 11, 2), 2 ** 48 - 1]) {
      const id = newRunId(t);
      expect(id, `time ${t}`).toMatch(V7);
      expect(parseInt(id.slice(0, 8) + id.slice(9, 13), 16), `time ${t}`).toBe(t);
    }
    expect(newRunId(1234.9).slice(0, 13)).toBe(newRunId(1234).slice(0, 13));
  });

  it('ids of later milliseconds sort after earlier ones, in JS and in Postgres (text order of the column)', async () => {
    const base = Date.now();
    const ids = Array.from({ length: 2_000 }, (_, i) => newRunId(base + i * 7));
    const shuffled = [...ids].sort(() => Math.random() - 0.5);
    expect([...shuffled].sort()).toEqual(ids);
    const db = await openDatabase({ url: '', dataDir: 'memory://' });
    try {
      const rows = await db.query<{ id: string }>(`select id from jsonb_array_elements_text($1::jsonb) as t(id) order by id`, [
        JSON.stringify(shuffled),
      ]);
      expect(rows.map((r) => r.id)).toEqual(ids);
    } finally {
      await db.close();
    }
  });
});
