/**
 * engine.retry refuses exactly the failed runs a retry would fail again at once. A run that failed
 * because its deadline (`timeoutMs`) passed keeps that deadline: resumed, it would time out again in
 * the same instant — so the retry is refused with the reason, not accepted and failed.
 */
import { setup } from 'xstate';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, defineWorkflow, step, ValidationError, type Database, type Engine } from '../src/index.ts';
import { openTestStore } from './helpers/postgres.ts';

const slow = step(async ({ signal }) => {
  await new Promise((resolve, reject) => {
    const t = setTimeout(resolve, 3_000);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      reject(signal.reason as Error);
    });
  });
  return { ok: true };
});
const machine = setup({ actors: { slow } }).createMachine({
  id: 'advSlow',
  initial: 'working',
  states: { working: { invoke: { src: 'slow', onDone: 'done' } }, done: { type: 'final' } },
});
const slowWorkflow = defineWorkflow({ name: 'adv.slow', machine, input: z.object({}) });

describe('engine.retry of a run that timed out', () => {
  let store: { db: Database; close(): Promise<void> };
  let engine: Engine;
  beforeAll(async () => {
    store = await openTestStore('pglite');
    engine = createEngine({ database: store.db, workflows: [slowWorkflow], pollMs: 50, leaseMs: 2_000 });
    await engine.startWorker();
  });
  afterAll(async () => {
    await engine?.stop();
    await store?.close();
  });

  it('is refused, naming the passed deadline, instead of failing again at once', async () => {
    const id = await engine.start('adv.slow', {}, { timeoutMs: 200 });
    const failed = await engine.waitFor(id, { timeoutMs: 20_000 });
    expect(failed.status).toBe('failed');
    expect(failed.error?.code).toBe('RUN_TIMEOUT');
    const err = await engine.retry(id).catch((e: unknown) => e);
    if (!(err instanceof ValidationError)) {
      const again = await engine.waitFor(id, { timeoutMs: 20_000 });
      throw new Error(`retry was accepted (${JSON.stringify(err)}); the run then ended ${again.status} with ${again.error?.code}`);
    }
    expect(err.message).toMatch(/deadline/);
  });
});
