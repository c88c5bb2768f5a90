/**
 * A workflow's concurrency key function that throws fails `engine.start` with a `ConcurrencyKeyError`
 * (code CONCURRENCY_KEY_THREW, category validation) that names the workflow and its key function, with
 * what the function threw as its `cause` and that error's message cut and escaped. It reached the caller
 * as the function's own error, which said nothing of either. No run is stored — for a start alone, among
 * starts that go together in one insert, and for a child start.
 */
import { setup } from 'xstate';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConcurrencyKeyError, createEngine, defineWorkflow, WorkflowError, type Engine } from '../src/index.ts';
import { engineDatabaseFor } from './helpers/postgres.ts';

const machine = setup({}).createMachine({
  id: 'held',
  initial: 'open',
  states: { open: { on: { close: 'closed' } }, closed: { type: 'final' } },
});
const thrown = new Error('repo is missing');
const keyed = defineWorkflow({
  name: 'ck.throws',
  machine,
  input: z.object({ key: z.string(), mode: z.enum(['ok', 'throw', 'string', 'hostile']) }),
  concurrency: {
    limit: 1,
    key: (i) => {
      if (i.mode === 'throw') throw thrown;
      // Not an Error at all.
      if (i.mode === 'string') throw 'no key' as unknown as Error;
      // A message a terminal would obey, and too long to echo.
      if (i.mode === 'hostile') throw new Error(`\u009b31m${'k'.repeat(5_000)}`);
      return i.key;
    },
  },
});
const plain = defineWorkflow({ name: 'ck.plain', machine, input: z.object({}) });

async function failure(start: Promise<unknown>): Promise<unknown> {
  return start.then(
    (id) => new Error(`the start was accepted: run ${String(id)}`),
    (err: unknown) => err,
  );
}

describe.each(['pglite', 'postgres'] as const)('a concurrency key function that throws (%s)', (kind) => {
  const cleanups: (() => Promise<void>)[] = [];
  let engine: Engine;
  beforeAll(async () => {
    engine = createEngine({ workflows: [keyed, plain], database: await engineDatabaseFor(kind, cleanups), concurrency: 20 });
    await engine.startWorker();
  });
  afterAll(async () => {
    await engine?.stop();
    for (const c of cleanups.reverse()) await c();
  });

  async function keyedRuns(): Promise<string[]> {
    return (await engine.list({ workflow: 'ck.throws' })).map((r) => `${r.id} ${JSON.stringify(r.input)}`);
  }

  it('is a ConcurrencyKeyError naming the workflow, with the thrown error as its cause, and stores no run', async () => {
    const err = await failure(engine.start(keyed, { key: 'a', mode: 'throw' }, { idempotencyKey: 'ck-throws-1' }));
    expect(err, (err as Error).message).toBeInstanceOf(ConcurrencyKeyError);
    const e = err as ConcurrencyKeyError;
    expect(e).toBeInstanceOf(WorkflowError);
    expect(e.code).toBe('CONCURRENCY_KEY_THREW');
    expect(e.category).toBe('validation');
    expect(e.cause).toBe(thrown);
    expect(e.message).toBe(
      'The concurrency key function of workflow "ck.throws" threw: "repo is missing". No run was started: fix its concurrency.key (defineWorkflow) or the input it reads.',
    );
    expect(e.details).toEqual({ workflow: 'ck.throws', thrown: 'repo is missing' });
    expect(await keyedRuns(), 'runs of ck.throws after the refused start').toEqual([]);
    // The idempotency key was not taken by a partial run: a start with it now is a new run.
    const id = await engine.start(keyed, { key: 'a', mode: 'ok' }, { idempotencyKey: 'ck-throws-1' });
    expect((await engine.get(id)).input).toEqual({ key: 'a', mode: 'ok' });
  });

  it('quotes a thrown non-Error, and cuts and escapes a thrown message', async () => {
    const text = await failure(engine.start(keyed, { key: 'b', mode: 'string' }));
    expect(text, (text as Error).message).toBeInstanceOf(ConcurrencyKeyError);
    expect((text as Error).message).toContain('threw: "no key".');
    expect((text as Error).cause).toBe('no key');
    const hostile = await failure(engine.start(keyed, { key: 'c', mode: 'hostile' }));
    expect(hostile, (hostile as Error).message).toBeInstanceOf(ConcurrencyKeyError);
    const message = (hostile as Error).message;
    expect(message, 'the C1 control that starts a terminal sequence is escaped').not.toContain('\u009b');
    expect(message).toContain('threw: "\\u009b31mkkk');
    expect(message.length, 'the 5,000-character message is cut').toBeLessThan(400);
  });

  it('fails only its own start among starts that go together, and stores none of its runs', async () => {
    const before = (await keyedRuns()).length;
    const starts = [
      engine.start(plain, {}),
      engine.start(keyed, { key: 'd', mode: 'throw' }),
      engine.start(plain, {}),
      engine.start(keyed, { key: 'e', mode: 'ok' }),
      engine.start(keyed, { key: 'f', mode: 'string' }),
      engine.start(plain, {}),
    ];
    const outcomes = await Promise.allSettled(starts);
    const shape = outcomes.map((o) =>
      o.status === 'fulfilled' ? 'started' : o.reason instanceof ConcurrencyKeyError ? 'ConcurrencyKeyError' : String(o.reason),
    );
    expect(shape).toEqual(['started', 'ConcurrencyKeyError', 'started', 'started', 'ConcurrencyKeyError', 'started']);
    const runs = await keyedRuns();
    expect(runs.length - before, `new runs of ck.throws: ${runs.join(', ')}`).toBe(1);
  });

  it('fails a child start the same way, and the parent gets no child', async () => {
    const parent = await engine.start(plain, {});
    const err = await failure(engine.start(keyed, { key: 'g', mode: 'throw' }, { parentRunId: parent }));
    expect(err, (err as Error).message).toBeInstanceOf(ConcurrencyKeyError);
    expect(await engine.list({ parentRunId: parent }), `children of ${parent}`).toEqual([]);
  });
});
