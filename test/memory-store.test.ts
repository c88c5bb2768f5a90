/**
 * In-memory PGlite stores (`dataDir: 'memory://'`, what tests and the testing kit open) start from a copy
 * of initdb's output taken from the first one a process opens, before any statement reaches it
 * (src/persistence/database.ts): each store must still start empty and stay apart from the others,
 * whatever the first one held or holds now.
 */
import { afterEach, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, openDatabase, step, type Database } from '../src/index.ts';

const opened: Database[] = [];
afterEach(async () => {
  for (const db of opened.splice(0)) await db.close();
});

async function memoryStore(): Promise<Database> {
  const db = await openDatabase({ url: '', dataDir: 'memory://' });
  opened.push(db);
  return db;
}

const tables = async (db: Database) =>
  (await db.query<{ name: string }>(`select tablename as name from pg_tables where schemaname = 'public' order by 1`)).map((r) => r.name);

it('each in-memory store starts empty and keeps its own data, however many the process opened before', async () => {
  const first = await memoryStore();
  await first.script(['create table kept (n int)', 'insert into kept values (1)']);
  // Opened one after another and two at once: none sees what another wrote.
  const second = await memoryStore();
  const [third, fourth] = await Promise.all([memoryStore(), memoryStore()]);
  for (const [name, db] of Object.entries({ second, third, fourth })) expect(await tables(db), `tables of the ${name} store`).toEqual([]);
  await second.script(['create table kept (n int)', 'insert into kept values (2)']);
  expect(await first.query('select n from kept')).toEqual([{ n: 1 }]);
  expect(await second.query('select n from kept')).toEqual([{ n: 2 }]);
  expect(await tables(third)).toEqual([]);
});

it('an engine on a later in-memory store migrates it and runs a workflow', async () => {
  await memoryStore();
  const db = await memoryStore();
  const one = defineWorkflow({
    name: 'memory.one',
    machine: setup({ actors: { s: step(async () => 7) } }).createMachine({
      id: 'one',
      initial: 'a',
      states: { a: { invoke: { src: 's', onDone: { target: 'done' } } }, done: { type: 'final' } },
      output: () => ({ ok: true }),
    }),
    input: z.object({}).passthrough(),
  });
  const engine = createEngine({ database: db, workflows: [one] });
  try {
    await engine.startWorker();
    const run = await engine.waitFor(await engine.start(one, {}), { timeoutMs: 30_000 });
    expect(run.status).toBe('succeeded');
    expect(await tables(db)).toContain('rmapp_runs');
  } finally {
    await engine.stop();
  }
});
