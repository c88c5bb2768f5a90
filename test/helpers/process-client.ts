/**
 * For tests whose workers are child processes: a fresh Postgres database per file, and a client
 * engine in the test process that starts and reads runs but executes none. Children a test left
 * running are killed after it; the database is dropped at the end.
 */
import { afterAll, afterEach, beforeAll } from 'vitest';
import { createEngine, openDatabase, type Database, type Engine, type WorkflowDefinition } from '../../src/index.ts';
import { createTestDatabase, type TestDatabase } from './postgres.ts';
import { killAll } from './processes.ts';

export interface ProcessClient {
  /** The database's URL, for the child processes' DATABASE_URL. */
  readonly url: string;
  readonly client: Engine;
}

export function processClient(workflows: () => WorkflowDefinition<any>[]): ProcessClient {
  let testDb: TestDatabase | undefined;
  let db: Database | undefined;
  let client: Engine | undefined;
  beforeAll(async () => {
    testDb = await createTestDatabase();
    db = await openDatabase({ url: testDb.url });
    client = createEngine({ database: db, workflows: workflows() });
  });
  afterEach(() => killAll());
  afterAll(async () => {
    await client?.stop();
    await db?.close();
    await testDb?.drop();
  });
  return {
    get url() {
      if (!testDb) throw new Error('processClient: used outside a test');
      return testDb.url;
    },
    get client() {
      if (!client) throw new Error('processClient: used outside a test');
      return client;
    },
  };
}
