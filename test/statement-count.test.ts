/**
 * Statements per run are behaviour, not timing (issue 19): a 6-step run started, executed and awaited
 * in one process costs its insert (which carries the first macrostep) and one commit per later
 * macrostep — 7 client statements, the floor of a design that persists before each step starts. Every
 * statement the engine sends is counted (a wrapper around `db.query` and `db.script`), so an extra read
 * or write on the hot path fails this test and is named in the message.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, type Engine } from '../src/state_machine/engine.ts';
import { defineWorkflow } from '../src/state_machine/definition.ts';
import { step } from '../src/state_machine/step.ts';
import { openDatabase, type Database } from '../src/persistence/database.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';

const noop = step(async ({ input }: { input: { n: number } }) => input.n);
const states: Record<string, object> = {};
for (let n = 1; n <= 6; n++) states[`step${n}`] = { invoke: { src: 'noop', input: { n }, onDone: n === 6 ? 'done' : `step${n + 1}` } };
states.done = { type: 'final' };
const six = defineWorkflow({
  name: 'count.six',
  machine: setup({ actors: { noop } }).createMachine({
    id: 'six',
    initial: 'step1',
    output: { ok: true },
    states: states as Record<string, { type?: 'final' }>,
  }),
  input: z.object({}).passthrough(),
});

let testDb: TestDatabase;
let db: Database;
let engine: Engine;
const statements: string[] = [];

/** A short name for a statement, for the failure message: its first words. */
const nameOf = (text: string) => text.replace(/\s+/g, ' ').trim().slice(0, 160);

beforeAll(async () => {
  testDb = await createTestDatabase();
  db = await openDatabase({ url: testDb.url });
  const counted: Database = {
    kind: db.kind,
    description: db.description,
    query: (text, params) => {
      statements.push(nameOf(text));
      return db.query(text, params);
    },
    script: (list) => {
      statements.push(`script: ${nameOf(list.join('; '))}`);
      return db.script(list);
    },
    listen: (channel, fn) => db.listen(channel, fn),
    close: () => db.close(),
  };
  // A long poll: the claim loop's own rounds are not part of a run (it is idle once the worker started).
  engine = createEngine({ database: counted, workflows: [six], pollMs: 600_000 });
  await engine.startWorker();
  // A first run warms everything up (and the claim loop's first round is over before it ends).
  await engine.waitFor(await engine.start(six, {}), { timeoutMs: 30_000 });
});
afterAll(async () => {
  await engine?.stop({ graceMs: 0 });
  await db?.close();
  await testDb?.drop();
});

it('start + run + waitFor of a 6-step run in one process sends 7 statements: the insert and 6 commits', async () => {
  statements.length = 0;
  const id = await engine.start(six, {});
  const run = await engine.waitFor(id, { timeoutMs: 30_000 });
  expect(run.status).toBe('succeeded');
  expect(run.output).toEqual({ ok: true });
  expect(run.state).toBe('done');
  expect(run.finishedAt, 'finishedAt of the run waitFor returned').toBeInstanceOf(Date);
  const sent = [...statements];
  const kinds = sent.map((s) =>
    // The insert locks the parent it names (persistence/runs.ts PARENT_LOCK): the same one statement.
    /^with (parent as materialized \(select id from rmapp_runs where id = \$6::text for key share\), )?ins as \( insert into rmapp_runs/.test(
      s,
    )
      ? 'insert'
      : /^with (u|w) as \( (update rmapp_runs|select \* from jsonb_to_recordset)/.test(s)
        ? 'commit'
        : s,
  );
  expect(kinds, `statements of one run (anything not "insert"/"commit" is an extra on the hot path)`).toEqual([
    'insert',
    'commit',
    'commit',
    'commit',
    'commit',
    'commit',
    'commit',
  ]);
  // What waitFor returned is what the database holds.
  const stored = await engine.get(id);
  expect({ ...run, children: undefined }).toEqual({ ...stored, children: undefined });
  expect(run.children).toEqual(stored.children);
});

it('waitFor of a run this process does not execute still reads it from the database', async () => {
  const other = createEngine({ database: testDb.url, workflows: [six] });
  try {
    const id = await engine.start(six, {});
    const run = await other.waitFor(id, { timeoutMs: 30_000, pollMs: 20 });
    expect(run.status).toBe('succeeded');
  } finally {
    await other.stop();
  }
});
