/**
 * For tests that hold Postgres locks the engine's statements wait on, with transactions of their own: a
 * fresh database for the file, raw `pg` connections that hold locks, and engines stopped at the end.
 */
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { defineWorkflow, type Engine } from '../../src/index.ts';
import { createTestDatabase, type TestDatabase } from './postgres.ts';

/** A workflow named `name` that waits for a `go` event: its runs stay in the table, unfinished. */
export function waitingWorkflow(name: string) {
  const machine = setup({}).createMachine({
    id: name.replace(/\W/g, '_'),
    initial: 'waiting',
    states: { waiting: { on: { go: 'done' } }, done: { type: 'final' } },
  });
  return defineWorkflow({ name, machine, input: z.object({}).passthrough() });
}

/**
 * Registers the file's hooks: a database made before its tests and dropped after, the connections
 * `client()` opened ended and the engines `track` was given stopped first.
 */
export function useHeldLockDatabase(): { readonly url: string; client(): Promise<pg.Client>; track<E extends Engine>(engine: E): E } {
  let testDb: TestDatabase | undefined;
  const engines: Engine[] = [];
  const clients: pg.Client[] = [];
  beforeAll(async () => {
    testDb = await createTestDatabase();
  }, 60_000);
  afterAll(async () => {
    for (const c of clients) await c.end().catch(() => {});
    for (const e of engines) await e.stop({ graceMs: 0 }).catch(() => {});
    await testDb?.drop();
  }, 60_000);
  return {
    get url() {
      if (!testDb) throw new Error('the database is made in beforeAll: read its url inside a test or hook');
      return testDb.url;
    },
    async client() {
      const c = new pg.Client({ connectionString: this.url });
      await c.connect();
      clients.push(c);
      return c;
    },
    track(engine) {
      engines.push(engine);
      return engine;
    },
  };
}
