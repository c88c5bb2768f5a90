/**
 * A worker with more free slots than `CLAIM_BATCH` claims a backlog in several statements of at most
 * `CLAIM_BATCH` runs (so the first batch's runs restore and commit while Postgres executes the next
 * claim), and claims the next batch at once after a full one — not a poll interval later. Counted with
 * a wrapper around `db.query`, against real Postgres.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, type Engine } from '../src/state_machine/engine.ts';
import { defineWorkflow } from '../src/state_machine/definition.ts';
import { CLAIM_BATCH } from '../src/state_machine/claim-loop.ts';
import { openDatabase, type Database } from '../src/persistence/database.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';

const waiting = defineWorkflow({
  name: 'batch.wait',
  machine: setup({}).createMachine({
    id: 'wait',
    initial: 'waiting',
    states: { waiting: { on: { go: 'done' } }, done: { type: 'final' } },
  }),
  input: z.object({}).passthrough(),
});

const RUNS = 2 * CLAIM_BATCH + 50;
let testDb: TestDatabase;
let db: Database;
let worker: Engine | undefined;
/** The `limit` parameter of every claim statement the worker sent. */
const claimLimits: number[] = [];

beforeAll(async () => {
  testDb = await createTestDatabase();
  db = await openDatabase({ url: testDb.url });
});
afterAll(async () => {
  await worker?.stop({ graceMs: 0 });
  await db?.close();
  await testDb?.drop();
});

it(`a backlog of ${RUNS} runs is claimed in batches of at most ${CLAIM_BATCH}, one right after the other`, async () => {
  // The runs are pending before any worker runs: only the claim loop can pick them up.
  const client = createEngine({ database: testDb.url, workflows: [waiting] });
  const ids: string[] = [];
  for (let i = 0; i < RUNS; i++) ids.push(await client.start(waiting, {}));
  await client.stop();

  const counted: Database = {
    kind: db.kind,
    description: db.description,
    query: (text, params) => {
      if (/^\s*with resumed as/.test(text)) claimLimits.push(Number(params?.[1]));
      return db.query(text, params);
    },
    script: (list) => db.script(list),
    listen: (channel, fn) => db.listen(channel, fn),
    close: () => db.close(),
  };
  // A poll interval far longer than the test: every run is claimed by the loop continuing after a full batch.
  worker = createEngine({ database: counted, workflows: [waiting], concurrency: RUNS + 100, pollMs: 600_000 });
  await worker.startWorker();
  for (;;) {
    const rows = await db.query<{ n: number }>(`select count(*)::int as n from rmapp_runs where status = 'waiting'`);
    if (rows[0]?.n === RUNS) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(
    claimLimits.filter((n) => n > CLAIM_BATCH),
    `claim statements asking for more than ${CLAIM_BATCH} runs (limits sent: ${claimLimits.join(', ')})`,
  ).toEqual([]);
  expect(claimLimits.length, `claim statements sent (limits: ${claimLimits.join(', ')})`).toBeGreaterThanOrEqual(3);
});
