/**
 * Two workers started together on a new database: the second read the migration record (none yet),
 * the first then migrated and committed, and the second's next read found rmapp's tables — and exited
 * with MIGRATION_RECORD ("tables are in the database but rmapp_migrations is missing"), as if the
 * record had been dropped by hand. Seen for real: one of several workers started at once on a fresh
 * database crashed at start-up. Here the other process's migration is run, for real, between those
 * two reads of the second one.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { migrate, openDatabase, type Database } from '../src/index.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';

const opened: Database[] = [];
let testDb: TestDatabase | null = null;
afterEach(async () => {
  for (const db of opened.splice(0)) await db.close();
  await testDb?.drop();
  testDb = null;
});

describe('a worker starting while another migrates a new database', () => {
  it('goes by the record the other committed instead of refusing the database', async () => {
    testDb = await createTestDatabase({ prefix: 'adv7_migrate_race', empty: true });
    const first = await openDatabase({ url: testDb.url });
    const second = await openDatabase({ url: testDb.url });
    opened.push(first, second);
    let injected = false;
    // The second worker's statements; the first `to_regclass('rmapp_runs')` it sends waits for the
    // first worker's whole migration, which commits in between its reads.
    const racing: Database = Object.create(second) as Database;
    racing.query = async (text, params, options) => {
      if (!injected && text.includes("to_regclass('rmapp_runs')")) {
        injected = true;
        await migrate(first);
      }
      return second.query(text, params, options);
    };
    let outcome: string;
    try {
      const result = await migrate(racing);
      outcome = `applied ${result.applied.length}`;
    } catch (err) {
      outcome = `migrate() of the second worker threw ${(err as Error).name}: ${(err as Error).message}`;
    }
    expect(injected, 'the concurrent migration was not injected between the reads').toBe(true);
    expect(outcome).toBe('applied 0');
    const [row] = await second.query<{ n: string }>('select count(*)::text as n from rmapp_migrations');
    expect(Number(row?.n)).toBeGreaterThan(0);
  });
});
