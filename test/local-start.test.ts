/**
 * A run started in a process with a worker is inserted as its first durable macrostep (worker.ts
 * `startLocal`): what that must not change. A start whose idempotency key was taken runs nothing and
 * is heard of nowhere; a run that ends in its first macrostep is inserted finished; `waitFor` on a run
 * that leaves the process to wait for a signal still returns it once it finishes.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, type Engine } from '../src/state_machine/engine.ts';
import { defineWorkflow } from '../src/state_machine/definition.ts';
import { step } from '../src/state_machine/step.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';

let executions = 0;
const work = step(async () => {
  executions += 1;
  return 'done';
});
const once = defineWorkflow({
  name: 'local.once',
  machine: setup({ actors: { work } }).createMachine({
    id: 'once',
    initial: 'working',
    states: { working: { invoke: { src: 'work', onDone: 'done' } }, done: { type: 'final' } },
  }),
  input: z.object({}).passthrough(),
});
const instant = defineWorkflow({
  name: 'local.instant',
  machine: setup({}).createMachine({ id: 'instant', initial: 'done', output: { at: 'once' }, states: { done: { type: 'final' } } }),
  input: z.object({}).passthrough(),
});
const approval = defineWorkflow({
  name: 'local.approval',
  machine: setup({}).createMachine({
    id: 'approval',
    initial: 'waiting',
    states: { waiting: { on: { approve: 'approved' } }, approved: { type: 'final' } },
  }),
  input: z.object({}).passthrough(),
});

let testDb: TestDatabase;
let engine: Engine;

beforeAll(async () => {
  testDb = await createTestDatabase();
  engine = createEngine({ database: testDb.url, workflows: [once, instant, approval], evictAfterMs: 0 });
  await engine.startWorker();
});
afterAll(async () => {
  await engine?.stop({ graceMs: 0 });
  await testDb?.drop();
});

it('two starts with one idempotency key at once: one run, its step once, the other start heard of nowhere', async () => {
  const started: string[] = [];
  const off = engine.on('run.started', (e) => started.push(e.runId));
  try {
    executions = 0;
    const [a, b] = await Promise.all([
      engine.start(once, {}, { idempotencyKey: 'same-key' }),
      engine.start(once, {}, { idempotencyKey: 'same-key' }),
    ]);
    expect(b, 'both starts return the run the key names').toBe(a);
    const run = await engine.waitFor(a, { timeoutMs: 30_000 });
    expect(run.status).toBe('succeeded');
    await engine.settled();
    expect(executions, 'executions of the step').toBe(1);
    expect(started, 'run.started events').toEqual([a]);
    expect(engine.activeRuns, 'runs held in memory after both starts').toBe(0);
    expect((await engine.list({ workflow: 'local.once' })).map((r) => r.id)).toEqual([a]);
  } finally {
    off();
  }
});

it('a run that ends in its first macrostep is inserted finished, with its history', async () => {
  const id = await engine.start(instant, {});
  const run = await engine.waitFor(id, { timeoutMs: 30_000 });
  expect(run.status).toBe('succeeded');
  expect(run.output).toEqual({ at: 'once' });
  expect(run.leaseOwner).toBeNull();
  expect(run.finishedAt).toBeInstanceOf(Date);
  expect((await engine.history(id)).map((h) => h.type)).toEqual(['run.started', 'state.entered', 'run.succeeded']);
  expect(await engine.get(id)).toMatchObject({ status: 'succeeded', output: { at: 'once' }, state: 'done' });
});

it('waitFor on a run that leaves this process to wait for a signal returns it once a signal ends it', async () => {
  const id = await engine.start(approval, {});
  const waited = engine.waitFor(id, { timeoutMs: 30_000, pollMs: 20 });
  // Evicted: written as waiting, no longer in memory.
  for (let i = 0; i < 500 && (await engine.get(id)).status !== 'waiting'; i++) await new Promise((r) => setTimeout(r, 10));
  expect((await engine.get(id)).status).toBe('waiting');
  await engine.send(id, { type: 'approve' });
  const run = await waited;
  expect(run.status).toBe('succeeded');
  expect(run.state).toBe('approved');
});
