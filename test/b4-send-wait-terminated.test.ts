/**
 * `engine.send(…, { waitMs })` waits for the run to take the event and says what became of it. A
 * backend terminated under one of the wait's polls (`pg_terminate_backend`, a failover: SQLSTATE 57P01)
 * is a connection lost for a moment, the next poll on a new one: the wait goes on within `waitMs`. It
 * ended at once answering `queued`, and the event was taken a moment later: the caller was told the run
 * had not taken it. The termination is made by a proxy in front of the real server, on exactly that poll.
 */
import { setup } from 'xstate';
import { z } from 'zod';
import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, defineWorkflow, openDatabase } from '../src/index.ts';
import { startFaultProxy } from './helpers/pg-fault-proxy.ts';
import { createTestDatabase } from './helpers/postgres.ts';

const machine = setup({}).createMachine({
  id: 'b4SendWait',
  initial: 'open',
  states: { open: { on: { ping: 'done' } }, done: { type: 'final' } },
});
const workflow = defineWorkflow({ name: 'b4.sendWait', machine, input: z.object({}) });

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

describe('a send waiting for its outcome across a terminated backend (postgres)', () => {
  it('answers received, as the run took the event', async () => {
    const testDb = await createTestDatabase();
    cleanups.push(() => testDb.drop());
    const proxy = await startFaultProxy();
    cleanups.push(() => proxy.close());
    const workerDb = await openDatabase({ url: testDb.url });
    cleanups.push(() => workerDb.close());
    const clientDb = await openDatabase({ url: proxy.url(testDb.name) });
    cleanups.push(() => clientDb.close());
    const worker = createEngine({ database: workerDb, workflows: [workflow], pollMs: 50 });
    const client = createEngine({ database: clientDb, workflows: [workflow], migrate: false });
    cleanups.push(() => client.stop());
    cleanups.push(() => worker.stop());
    await worker.startWorker();
    const id = await client.start(workflow, {});
    // The wait's first poll of the event's outcome (persistence/inbox.ts `signalOutcome`) is terminated.
    proxy.cutMatching(/select i\.outcome, i\.consumed_at is not null as consumed/, 1);
    const sent = await client.send(id, { type: 'ping' }, { waitMs: 30_000 });
    expect(proxy.cuts.length, 'polls terminated by the proxy').toBe(1);
    const run = await client.waitFor(id, { timeoutMs: 30_000 });
    expect(run.status).toBe('succeeded');
    expect(sent.outcome, `send to run ${id} (which took the event: ${run.status}) answered`).toBe('received');
  });
});
