/**
 * A worker kept full by its own starts sends no claims: each run it starts is claimed by its insert,
 * and the last claim saw every runnable run. It claims again when a pass of its claim loop found no free
 * slot — a run started elsewhere while it was full is claimed as soon as one of its runs ends, not a poll
 * interval later. Claims counted with a wrapper around `db.query`, against real Postgres.
 */
import { afterEach, beforeEach, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, type Engine } from '../src/state_machine/engine.ts';
import { defineWorkflow } from '../src/state_machine/definition.ts';
import { step } from '../src/state_machine/step.ts';
import { openDatabase, type Database } from '../src/persistence/database.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';

const noop = step(async ({ input }: { input: { n: number } }) => input.n);
const three = defineWorkflow({
  name: 'full.three',
  machine: setup({ actors: { noop } }).createMachine({
    id: 'three',
    initial: 's1',
    states: {
      s1: { invoke: { src: 'noop', input: { n: 1 }, onDone: 's2' } },
      s2: { invoke: { src: 'noop', input: { n: 2 }, onDone: 's3' } },
      s3: { invoke: { src: 'noop', input: { n: 3 }, onDone: 'done' } },
      done: { type: 'final' },
    },
  }),
  input: z.object({}).passthrough(),
});
/** Opened by the test: a run of `full.hold` keeps its worker's slot until then. */
let openGate: () => void = () => {};
let gate = new Promise<void>((resolve) => (openGate = resolve));
const blocked = step(async () => {
  await gate;
  return 'opened';
});
const holding = defineWorkflow({
  name: 'full.hold',
  machine: setup({ actors: { blocked } }).createMachine({
    id: 'hold',
    initial: 'held',
    states: { held: { invoke: { src: 'blocked', onDone: 'done' } }, done: { type: 'final' } },
  }),
  input: z.object({}).passthrough(),
});
const waiting = defineWorkflow({
  name: 'full.wait',
  machine: setup({}).createMachine({
    id: 'wait',
    initial: 'waiting',
    states: { waiting: { on: { go: 'done' } }, done: { type: 'final' } },
  }),
  input: z.object({}).passthrough(),
});

let testDb: TestDatabase;
let db: Database;
let engines: Engine[] = [];
/** Claim statements the worker sent, each with the stack of the code that asked (to name the offender). */
let claims: string[] = [];

function countingDatabase(): Database {
  return {
    kind: db.kind,
    description: db.description,
    query: (text, params, options) => {
      if (/^\s*with resumed as/.test(text)) claims.push(new Error('claim sent').stack ?? '');
      return db.query(text, params, options);
    },
    script: (list) => db.script(list),
    listen: (channel, fn) => db.listen(channel, fn),
    close: async () => {},
  };
}

beforeEach(async () => {
  testDb = await createTestDatabase();
  db = await openDatabase({ url: testDb.url });
  claims = [];
  gate = new Promise<void>((resolve) => (openGate = resolve));
});
afterEach(async () => {
  for (const e of engines) await e.stop({ graceMs: 0 });
  engines = [];
  await db?.close();
  await testDb?.drop();
});

it('a worker that its own starts keep full sends no claim while they run', async () => {
  const CONCURRENCY = 4;
  // A poll interval far longer than the test: any claim during the batch comes from a poke.
  const worker = createEngine({ database: countingDatabase(), workflows: [three], concurrency: CONCURRENCY, pollMs: 600_000 });
  engines.push(worker);
  await worker.startWorker();
  const before = claims.length;
  let started = 0;
  const lane = async () => {
    while (started < 80) {
      started += 1;
      await worker.waitFor(await worker.start(three, {}), { timeoutMs: 60_000 });
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  const rows = await db.query<{ status: string; n: number }>(`select status, count(*)::int as n from rmapp_runs group by status`);
  expect(rows, 'every run finished').toEqual([{ status: 'succeeded', n: 80 }]);
  expect(claims.slice(before), 'claims sent while the worker was full of runs it started and claimed itself').toEqual([]);
});

it('a run started elsewhere while the worker is full is claimed when one of its runs ends, not at the next poll', async () => {
  const worker = createEngine({ database: countingDatabase(), workflows: [holding, waiting], concurrency: 2, pollMs: 600_000 });
  engines.push(worker);
  await worker.startWorker();
  const held = [await worker.start(holding, {}), await worker.start(holding, {})];
  // Both slots are taken: a start by another process is inserted pending and announced to the worker,
  // whose claim loop finds no free slot.
  const client = createEngine({ database: testDb.url, workflows: [holding, waiting] });
  engines.push(client);
  const outsider = await client.start(waiting, {});
  // The worker is told of the start and its claim loop finds no free slot: the run stays pending.
  await new Promise((r) => setTimeout(r, 300));
  expect((await client.get(outsider)).status, 'the outsider while both slots are taken').toBe('pending');

  openGate();
  await worker.waitFor(held[0] as string, { timeoutMs: 30_000 });
  // The poll interval is 10 minutes: only the freed slot can have claimed it (it then waits for its signal).
  let status = 'pending';
  for (let i = 0; i < 300 && status === 'pending'; i++) {
    await new Promise((r) => setTimeout(r, 50));
    status = (await client.get(outsider)).status;
  }
  // Claimed: `running` from the claim until its first write leaves it `waiting` for its signal (a loaded
  // machine's CI run read it in between, once).
  expect(['running', 'waiting'], `the outsider 15 s after a slot freed (claims sent: ${claims.length}): ${status}`).toContain(status);
});
