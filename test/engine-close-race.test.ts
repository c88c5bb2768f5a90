/**
 * A stop closes every database the engine opened, whatever reads race it: a read during the stop opens
 * the database again (the next call after a close does), but only once the stop has closed the first
 * one, so that nothing leaks (a leaked pool keeps the process alive) and two PGlite instances never
 * share one directory (which corrupts it).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setup } from 'xstate';
import { z } from 'zod';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, defineWorkflow, openDatabase, type Database } from '../src/index.ts';
import { ADMIN_URL, createTestDatabase, type TestDatabase } from './helpers/postgres.ts';

const workflow = defineWorkflow({
  name: 'test.close-race',
  machine: setup({}).createMachine({ id: 'close-race', initial: 'done', states: { done: { type: 'final' } } }),
  input: z.object({}),
});

let testDb: TestDatabase;
let admin: Database;
let dir: string;
beforeAll(async () => {
  testDb = await createTestDatabase();
  admin = await openDatabase({ url: ADMIN_URL, maxConnections: 1 });
  dir = mkdtempSync(join(tmpdir(), 'rmapp-close-race-'));
});
afterAll(async () => {
  await admin.close();
  await testDb.drop();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Reads issued every 10 ms from before a stop (which begins while the first opening
 * still migrates) until it returns; then a second stop closes what the reads opened again. Each read's
 * outcome: its rows, or the message of what it threw.
 */
async function readsRacingStop(database: string | { url: string; dataDir: string }): Promise<unknown[]> {
  const engine = createEngine({ database, workflows: [workflow], workerId: 'close-race' });
  const reads: Promise<unknown>[] = [];
  const read = () => reads.push(engine.list().catch((err: unknown) => (err as Error).message));
  read();
  let stopped = false;
  const stopping = engine.stop({ graceMs: 0 }).then(() => (stopped = true));
  while (!stopped) {
    read();
    await new Promise((r) => setTimeout(r, 10));
  }
  await stopping;
  read();
  const outcomes = await Promise.all(reads);
  await engine.stop();
  return outcomes;
}

/** Outcomes that are neither rows nor the clear error of a read whose database the stop closed. */
function unexpected(outcomes: unknown[]): unknown[] {
  return outcomes.filter((o) => !Array.isArray(o) && !(typeof o === 'string' && /was closed.*open it again|PGlite is closed/.test(o)));
}

it('Postgres: reads racing a stop end, and no connection is left open', async () => {
  const outcomes = await readsRacingStop(testDb.url);
  expect(unexpected(outcomes), 'reads that failed otherwise').toEqual([]);
  expect(outcomes.at(-1), 'the read after the stop').toEqual([]);
  const [row] = await admin.query<{ open: number }>(
    `select count(*)::int as open from pg_stat_activity where datname = $1 and application_name = 'rmapp'`,
    [testDb.name],
  );
  expect(row?.open, 'rmapp connections to the test database left open by the engine').toBe(0);
});

it('PGlite: reads racing a stop end, and the directory is free afterwards', async () => {
  const dataDir = join(dir, 'store');
  const outcomes = await readsRacingStop({ url: '', dataDir });
  expect(unexpected(outcomes), 'reads that failed otherwise').toEqual([]);
  expect(outcomes.at(-1), 'the read after the stop').toEqual([]);
  expect(existsSync(`${dataDir}.lock`), 'the lock file left by an instance the stop did not close').toBe(false);
  const again = await openDatabase({ url: '', dataDir });
  try {
    expect(await again.query('select count(*)::int as runs from rmapp_runs')).toEqual([{ runs: 0 }]);
  } finally {
    await again.close();
  }
});

it('PGlite: a second open of a directory this process holds is refused with a clear error', async () => {
  const dataDir = join(dir, 'twice');
  const one = await openDatabase({ url: '', dataDir });
  try {
    await expect(openDatabase({ url: '', dataDir })).rejects.toThrow(/already open in this process/);
  } finally {
    await one.close();
  }
  await one.close();
  const two = await openDatabase({ url: '', dataDir });
  await two.close();
});
