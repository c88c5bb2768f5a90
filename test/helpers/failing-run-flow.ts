/**
 * What the owed-cleanup attacks share: a workflow whose one step fails for good, so its run ends failed
 * with its snapshot stored (a retry then queues it, a cancel of the queued run owes its cleanup), with the
 * cleanup the test gives; and the Postgres stores and engines a test opens, stopped, closed and dropped
 * after all its tests.
 */
import { afterAll, expect } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, openDatabase, step, type CleanupContext, type Database, type Engine } from '../../src/index.ts';
import { CLEANUP_OWED } from '../../src/persistence/run-admin.ts';
import { createTestDatabase, type TestDatabase } from './postgres.ts';

const work = step(
  async () => {
    throw Object.assign(new Error('the step is broken'), { category: 'permanent' });
  },
  { retry: { maxAttempts: 1 } },
);

/** The workflow (`version` 1, input `{ key }`, copied into its context) named `name`, with `cleanup`. */
export function failingRunFlow(opts: {
  name: string;
  cleanup: (ctx: CleanupContext) => Promise<void>;
  concurrency?: { limit: number; key: (input: { key: string }) => string };
}) {
  return defineWorkflow({
    name: opts.name,
    version: '1',
    input: z.object({ key: z.string() }),
    ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
    cleanup: opts.cleanup,
    machine: setup({ types: {} as { input: { key: string }; context: { key: string } }, actors: { work } }).createMachine({
      id: opts.name.replace(/\W/g, '_'),
      context: ({ input }) => input,
      initial: 'working',
      states: { working: { invoke: { src: 'work', onDone: 'done' } }, done: { type: 'final' } },
    }),
  });
}

/** A test database made on first use, and every store and engine opened on it, ended after all tests. */
export function storesOnOneDatabase(): { open(): Promise<Database>; track(...list: Engine[]): void; url(): string } {
  let testDb: TestDatabase | undefined;
  const dbs: Database[] = [];
  const engines: Engine[] = [];
  afterAll(async () => {
    for (const e of engines) await e.stop().catch(() => {});
    for (const d of dbs) await d.close().catch(() => {});
    await testDb?.drop();
  });
  return {
    async open() {
      testDb ??= await createTestDatabase();
      const d = await openDatabase({ url: testDb.url });
      dbs.push(d);
      return d;
    },
    track(...list) {
      engines.push(...list);
    },
    url() {
      if (!testDb) throw new Error('storesOnOneDatabase: open() a store first');
      return testDb.url;
    },
  };
}

/**
 * A run of `flow` (a {@link failingRunFlow}) with input `{ key: '1' }`, failed by an engine on `db` that
 * is stopped after, then marked cancelled with its cleanup owed — as a cancel of the queued retried run
 * leaves it when its process died before the cleanup. Returns its id.
 */
export async function owedCleanupRun(
  db: Database,
  track: (...list: Engine[]) => void,
  flow: ReturnType<typeof failingRunFlow>,
): Promise<string> {
  const runner = createEngine({ database: db, workflows: [flow] });
  track(runner);
  await runner.startWorker();
  const runId = await runner.start(flow.name, { key: '1' });
  expect((await runner.waitFor(runId, { timeoutMs: 30_000 })).status).toBe('failed');
  await runner.stop();
  await db.query(`update rmapp_runs set status = 'cancelled', status_message = $1 where id = $2`, [CLEANUP_OWED, runId]);
  return runId;
}
