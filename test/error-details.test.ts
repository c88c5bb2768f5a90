/**
 * What a step hands the engine that JSON cannot write — a BigInt or a cycle in a thrown error's
 * `details`, in `ctx.progress` data — must not keep a run from recording its outcome. Before, the
 * error's details went into the step record and the history; every write failed, even the run's own
 * failure, and the run stayed `running` with nothing to say why.
 */
import { beforeAll, expect, it } from 'vitest';
import { assign, setup, type AnyActorLogic } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, step, WorkflowError, type Database, type Engine } from '../src/index.ts';
import { useTestDatabase } from './helpers/postgres.ts';

const store = useTestDatabase();
let db: Database;
beforeAll(() => {
  db = store.db;
});

/** A machine that runs `s` once and keeps what it failed with in its context. */
function oneStep(s: AnyActorLogic) {
  return setup({ actors: { s }, types: {} as { context: { failure: unknown } } }).createMachine({
    id: 'one',
    context: { failure: null },
    initial: 'a',
    states: {
      a: {
        invoke: {
          src: 's',
          onDone: 'ok',
          onError: { target: 'failed', actions: assign({ failure: ({ event }) => (event.error as Error).message }) },
        },
      },
      ok: { type: 'final' },
      failed: { type: 'final' },
    },
  });
}

async function run(name: string, s: AnyActorLogic) {
  const engine: Engine = createEngine({
    database: db,
    workflows: [defineWorkflow({ name, machine: oneStep(s), input: z.object({}) })],
    pollMs: 20,
  });
  await engine.startWorker();
  try {
    const id = await engine.start(name, {});
    const result = await engine.waitFor(id, { timeoutMs: 20_000 });
    return { result, history: await engine.history(id) };
  } finally {
    await engine.stop();
  }
}

it('a step error whose details hold a BigInt and a cycle is recorded, with those values as text', async () => {
  const cyclic: Record<string, unknown> = { name: 'loop' };
  cyclic.self = cyclic;
  const s = step(async () => {
    throw new WorkflowError('quota exceeded', { code: 'QUOTA', category: 'permanent', details: { used: 12n, limit: 10, cyclic } });
  });
  const { result, history } = await run('ed.details', s);
  expect(result.status, 'the run records its outcome instead of staying running').toBe('succeeded');
  expect(result.state, "the machine took the step's onError").toBe('failed');
  const failed = history.find((e) => e.type === 'step.failed');
  expect(failed, 'the step failure is in the history').toBeDefined();
  const details = (failed?.data as { error?: { details?: Record<string, unknown> } }).error?.details;
  expect(details, 'the details as JSON can write them').toMatchObject({
    used: '12n',
    limit: 10,
    cyclic: { name: 'loop', self: '[Circular]' },
  });
});

it('details that JSON can write are kept exactly', async () => {
  const s = step(async () => {
    throw new WorkflowError('no', {
      code: 'NO',
      category: 'permanent',
      details: { list: [1, 'two', { three: null }], nested: { a: true } },
    });
  });
  const { history } = await run('ed.plain', s);
  const failed = history.find((e) => e.type === 'step.failed');
  expect((failed?.data as { error?: { details?: unknown } }).error?.details).toEqual({
    list: [1, 'two', { three: null }],
    nested: { a: true },
  });
});

it('ctx.progress with data JSON cannot write fails the attempt at the call, saying so; the run ends', async () => {
  const s = step(async ({ progress }) => {
    progress('halfway', { bytes: 5n });
    return 'unreachable';
  });
  const { result, history } = await run('ed.progress', s);
  expect(result.status).toBe('succeeded');
  expect(result.state, "the attempt failed and the machine took the step's onError").toBe('failed');
  const failed = history.find((e) => e.type === 'step.failed');
  const error = (failed?.data as { error?: { code?: string; message?: string } }).error;
  expect(error?.code).toBe('VALIDATION');
  expect(error?.message).toMatch(/ctx\.progress\("halfway"\): data cannot be written as JSON/);
  expect(
    history.some((e) => e.type === 'progress'),
    'nothing of the refused progress call is recorded',
  ).toBe(false);
});
