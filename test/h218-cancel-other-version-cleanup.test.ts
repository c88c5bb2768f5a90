/**
 * A retried run queued for a slot of its concurrency key ran before, so its definition's cleanup is owed
 * once it is cancelled (README, "Cancellation": a cancelled run's cleanup runs at least once). Cancelled
 * by a process that does not register the run's version (an API server or CLI of a newer deploy, while
 * workers of the run's version still run), the cleanup must still run — by a worker of that version —
 * rather than be skipped for good: the cancelling process cannot know whether that version has a cleanup.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createEngine, defineWorkflow, step } from '../src/index.ts';
import { failingRunFlow, storesOnOneDatabase } from './helpers/failing-run-flow.ts';
import { setup } from 'xstate';
import { z } from 'zod';

describe('a queued retried run cancelled by a process without its version', () => {
  const stores = storesOnOneDatabase();

  it("has its cleanup run by a worker of the run's version", async () => {
    const ran: string[] = [];
    const v1 = failingRunFlow({
      name: 'h218.other-version',
      concurrency: { limit: 1, key: (i) => i.key },
      cleanup: async ({ runId }) => {
        ran.push(runId);
      },
    });
    const v2 = defineWorkflow({
      name: 'h218.other-version',
      version: '2',
      input: z.object({ key: z.string() }),
      concurrency: { limit: 1, key: (i) => i.key },
      machine: setup({}).createMachine({ id: 'h218OtherVersion2', initial: 'done', states: { done: { type: 'final' } } }),
    });
    const db = await stores.open();
    const runner = createEngine({ database: db, workflows: [v1], leaseMs: 1_000 });
    stores.track(runner);
    await runner.startWorker();
    const runId = await runner.start(v1.name, { key: '1' });
    expect((await runner.waitFor(runId, { timeoutMs: 30_000 })).status).toBe('failed');
    await runner.stop();
    // Retried with no worker running: back in its key's queue, pending, with the snapshot it ran to.
    const retrier = createEngine({ database: db, workflows: [v1], leaseMs: 1_000 });
    stores.track(retrier);
    expect((await retrier.retry(runId)).status).toBe('pending');
    const newer = createEngine({ database: db, workflows: [v2], leaseMs: 1_000 });
    stores.track(newer);
    const result = await newer.cancel(runId, 'not wanted');
    expect(result.status).toBe('cancelled');
    const worker = createEngine({ database: db, workflows: [v1], leaseMs: 1_000 });
    stores.track(worker);
    await worker.startWorker();
    for (let i = 0; i < 100 && ran.length === 0; i++) await sleep(100);
    expect(
      ran,
      `the cleanup of run ${runId}, cancelled by a process without version 1, never ran on a worker of version 1 (the cancel said: ${result.message}; history: ${JSON.stringify((await worker.history(runId)).map((h) => h.type))})`,
    ).toEqual([runId]);
  }, 60_000);

  it("has its mark cleared by a worker of the run's version when that version has no cleanup", async () => {
    const work = step(
      async () => {
        throw Object.assign(new Error('the step is broken'), { category: 'permanent' });
      },
      { retry: { maxAttempts: 1 } },
    );
    const bare = defineWorkflow({
      name: 'h218.other-version-bare',
      version: '1',
      input: z.object({ key: z.string() }),
      concurrency: { limit: 1, key: (i) => i.key },
      machine: setup({ actors: { work } }).createMachine({
        id: 'h218OtherVersionBare',
        initial: 'working',
        states: { working: { invoke: { src: 'work', onDone: 'done' } }, done: { type: 'final' } },
      }),
    });
    const db = await stores.open();
    const runner = createEngine({ database: db, workflows: [bare], leaseMs: 1_000 });
    stores.track(runner);
    await runner.startWorker();
    const runId = await runner.start(bare.name, { key: '1' });
    expect((await runner.waitFor(runId, { timeoutMs: 30_000 })).status).toBe('failed');
    await runner.stop();
    const retrier = createEngine({ database: db, workflows: [bare], leaseMs: 1_000 });
    stores.track(retrier);
    expect((await retrier.retry(runId)).status).toBe('pending');
    const other = createEngine({ database: db, workflows: [], leaseMs: 1_000 });
    stores.track(other);
    expect((await other.cancel(runId, 'not wanted')).status).toBe('cancelled');
    const worker = createEngine({ database: db, workflows: [bare], leaseMs: 1_000 });
    stores.track(worker);
    await worker.startWorker();
    const message = async () =>
      (await db.query<{ m: string | null }>(`select status_message as m from rmapp_runs where id = $1`, [runId]))[0]?.m;
    for (let i = 0; i < 100 && (await message()) !== null; i++) await sleep(100);
    expect(await message(), `run ${runId}'s owed mark stayed though its version, registered, has no cleanup`).toBeNull();
  }, 60_000);
});
