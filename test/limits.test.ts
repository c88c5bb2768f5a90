/** Size limits: each gives its own clear error naming the limit and the size; large outputs become artifacts. */
import { assign, setup } from 'xstate';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, defineWorkflow, isArtifactRef, SizeLimitError, step, type Database, type Engine } from '../src/index.ts';
import { openTestStore } from './helpers/postgres.ts';
import { until } from './helpers/processes.ts';
import { unpersistableSnapshotError } from '../src/state_machine/session-write.ts';

const limits = { snapshotBytes: 4096, stepOutputInlineBytes: 1024, stepOutputBytes: 8192, signalBytes: 512, artifactBytes: 2048 };

/** One step returning `size` characters, then the output (or its reference) is kept in context. */
const produce = defineWorkflow({
  name: 'test.produce',
  input: z.object({ size: z.number().int().nonnegative() }),
  machine: setup({
    types: {} as { input: { size: number }; context: { size: number; result?: unknown } },
    actors: { make: step(async ({ input }: { input: { size: number } }) => ({ text: 'x'.repeat(input.size) })) },
  }).createMachine({
    id: 'produce',
    context: ({ input }) => ({ ...input }),
    initial: 'making',
    states: {
      making: {
        invoke: {
          src: 'make',
          input: ({ context }) => ({ size: context.size }),
          onDone: { target: 'done', actions: assign({ result: ({ event }) => event.output }) },
        },
      },
      done: { type: 'final' },
    },
    output: ({ context }) => ({ result: context.result }),
  }),
});

/** Saves an artifact of `size` characters. */
const saver = defineWorkflow({
  name: 'test.saver',
  input: z.object({ size: z.number().int().nonnegative(), bad: z.enum(['nul', 'surrogate']).optional() }),
  machine: setup({
    types: {} as { input: { size: number; bad?: 'nul' | 'surrogate' }; context: { size: number; bad?: 'nul' | 'surrogate' } },
    actors: {
      save: step(async ({ input, saveArtifact, getArtifact }) => {
        const { size, bad } = input as { size: number; bad?: 'nul' | 'surrogate' };
        if (bad) await saveArtifact('output', { lines: ['ok', bad === 'nul' ? 'a\u0000b' : 'a\uD800b'] });
        await saveArtifact('plan', 'p'.repeat(size));
        return (await getArtifact<string>('plan'))?.length ?? -1;
      }),
    },
  }).createMachine({
    id: 'saver',
    initial: 'saving',
    context: ({ input }) => ({ ...input }),
    states: {
      saving: { invoke: { src: 'save', input: ({ context }: { context: { size: number } }) => context, onDone: 'done' } },
      done: { type: 'final' },
    },
  }),
});

/**
 * Appends a 1,100-byte note to its context on each `note` event: 3 notes fit in 4 KiB, 4 do not.
 * `finishLarge` ends it with a 5,000-byte note, which its output carries too.
 */
const growing = defineWorkflow({
  name: 'test.growing',
  input: z.object({}).passthrough(),
  machine: setup({
    types: {} as { context: { notes: string[] }; events: { type: 'note' } | { type: 'finish' } | { type: 'finishLarge' } },
  }).createMachine({
    id: 'growing',
    context: { notes: [] },
    initial: 'open',
    states: {
      open: {
        on: {
          note: { actions: assign({ notes: ({ context }) => [...context.notes, 'n'.repeat(1100)] }) },
          finish: 'done',
          finishLarge: { target: 'done', actions: assign({ notes: ({ context }) => [...context.notes, 'f'.repeat(5000)] }) },
        },
      },
      done: { type: 'final' },
    },
    output: ({ context }) => ({ notes: context.notes }),
  }),
});

/** Keeps its input's text in context and hands it to a step: a snapshot holds it twice. */
const echo = defineWorkflow({
  name: 'test.echo',
  input: z.object({ text: z.string() }),
  machine: setup({
    types: {} as { input: { text: string }; context: { text: string } },
    actors: { echo: step(async ({ input }: { input: { text: string } }) => input.text.length) },
  }).createMachine({
    id: 'echo',
    context: ({ input }) => ({ text: input.text }),
    initial: 'echoing',
    states: {
      echoing: { invoke: { src: 'echo', input: ({ context }) => ({ text: context.text }), onDone: 'done' } },
      done: { type: 'final' },
    },
  }),
});

/** A first state large without its input: a context default. */
const padded = defineWorkflow({
  name: 'test.padded',
  input: z.object({}),
  machine: setup({}).createMachine({ id: 'padded', context: { pad: 'p'.repeat(5000) }, initial: 'open', states: { open: {} } }),
});

describe.each(['postgres', 'pglite'] as const)('size limits on %s', (kind) => {
  let store: { db: Database; close(): Promise<void> };
  let db: Database;
  let engine: Engine;

  beforeAll(async () => {
    store = await openTestStore(kind);
    db = store.db;
    engine = createEngine({ database: db, workflows: [produce, saver, growing, echo, padded], limits, pollMs: 50 });
    await engine.startWorker();
  });
  afterAll(async () => {
    await engine.stop();
    await store.close();
  });

  it('keeps a small step output inline', async () => {
    const run = await engine.waitFor(await engine.start('test.produce', { size: 10 }), { timeoutMs: 20_000 });
    expect(run.output).toEqual({ result: { text: 'x'.repeat(10) } });
  });

  it('moves a large step output to an artifact; the snapshot keeps a reference', async () => {
    const id = await engine.start('test.produce', { size: 3000 });
    const run = await engine.waitFor(id, { timeoutMs: 20_000 });
    expect(run.status).toBe('succeeded');
    const ref = (run.output as { result: unknown }).result;
    expect(isArtifactRef(ref)).toBe(true);
    expect(ref).toMatchObject({ $artifact: 'step-output/0.produce.making', bytes: 3000 + '{"text":""}'.length });
    expect(await engine.getArtifact(id, 'step-output/0.produce.making')).toEqual({ text: 'x'.repeat(3000) });
    expect((await engine.artifacts(id)).map((a) => a.name)).toEqual(['step-output/0.produce.making']);
  });

  it('fails the step whose output is over stepOutputBytes', async () => {
    const run = await engine.waitFor(await engine.start('test.produce', { size: 9000 }), { timeoutMs: 20_000 });
    expect(run.status).toBe('failed');
    expect(run.error).toMatchObject({
      code: 'SIZE_LIMIT_EXCEEDED',
      category: 'permanent',
      details: { limit: 'stepOutputBytes', max: 8192 },
    });
    expect(run.error?.message).toMatch(/is 90\d\d bytes, over the limit of 8192 bytes \(limits\.stepOutputBytes\)/);
  });

  it('stores artifacts within artifactBytes and refuses a larger one', async () => {
    const ok = await engine.waitFor(await engine.start('test.saver', { size: 100 }), { timeoutMs: 20_000 });
    expect(ok.status).toBe('succeeded');
    const big = await engine.waitFor(await engine.start('test.saver', { size: 5000 }), { timeoutMs: 20_000 });
    expect(big.status).toBe('failed');
    expect(big.error).toMatchObject({ code: 'SIZE_LIMIT_EXCEEDED', details: { limit: 'artifactBytes' } });
    expect(big.error?.message).toMatch(/Artifact "plan" is 5002 bytes, over the limit of 2048 bytes/);
  });

  it('refuses an artifact holding a NUL or a lone surrogate with a validation error naming where', async () => {
    for (const [bad, problem] of [
      ['nul', /holds a NUL character/],
      ['surrogate', /holds a lone UTF-16 surrogate/],
    ] as const) {
      const run = await engine.waitFor(await engine.start('test.saver', { size: 1, bad }), { timeoutMs: 20_000 });
      expect(run.status, bad).toBe('failed');
      expect(run.error, bad).toMatchObject({ code: 'VALIDATION', category: 'validation' });
      expect(run.error?.message, bad).toMatch(/^Artifact "output": value\.lines\[1\] /);
      expect(run.error?.message, bad).toMatch(problem);
    }
  });

  it('refuses a signal over signalBytes before storing it', async () => {
    const id = await engine.start('test.growing', {});
    const err = await engine.send(id, { type: 'note', text: 'y'.repeat(600) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SizeLimitError);
    expect((err as Error).message).toMatch(/The event "note" is 6\d\d bytes, over the limit of 512 bytes \(limits\.signalBytes\)/);
    const inbox = await db.query(`select id from rmapp_run_inbox where run_id = $1`, [id]);
    expect(inbox).toHaveLength(0);
    await engine.send(id, { type: 'finish' });
    expect((await engine.waitFor(id, { timeoutMs: 20_000 })).status).toBe('succeeded');
  });

  it('fails a run whose snapshot grows over snapshotBytes, keeping the last snapshot that fit', async () => {
    const id = await engine.start('test.growing', {});
    // One note first, persisted, so the run has a snapshot that fits before it outgrows the limit.
    await engine.send(id, { type: 'note' });
    await until(async () => (await engine.history(id)).some((h) => h.type === 'signal.received'), 20_000, 'the first note');
    // Exactly enough to cross the limit: a send after the run has failed would be refused.
    for (let i = 0; i < 3; i++) await engine.send(id, { type: 'note' });
    const run = await engine.waitFor(id, { timeoutMs: 20_000 });
    expect(run.status).toBe('failed');
    expect(run.error).toMatchObject({ code: 'SIZE_LIMIT_EXCEEDED', details: { limit: 'snapshotBytes', max: 4096 } });
    expect(run.error?.message).toMatch(/The run's snapshot is \d+ bytes, over the limit of 4096 bytes/);
    const row = await db.query<{ n: number }>(`select length(snapshot::text)::int as n from rmapp_runs where id = $1`, [id]);
    expect(row[0]?.n).toBeLessThanOrEqual(4096);
  });

  it('fails a run whose final transition makes its snapshot larger than snapshotBytes, as any other write (the last write was not checked)', async () => {
    const id = await engine.start('test.growing', {});
    await engine.send(id, { type: 'finishLarge' });
    const run = await engine.waitFor(id, { timeoutMs: 20_000 });
    expect(run.status, JSON.stringify(run.output)?.slice(0, 200)).toBe('failed');
    expect(run.error).toMatchObject({ code: 'SIZE_LIMIT_EXCEEDED', details: { limit: 'snapshotBytes', max: 4096 } });
    expect(run.output).toBeNull();
    const row = await db.query<{ n: number; status: string }>(
      `select length(snapshot::text)::int as n, status from rmapp_runs where id = $1`,
      [id],
    );
    expect(row[0]).toMatchObject({ status: 'failed' });
    expect(row[0]?.n).toBeLessThanOrEqual(4096);
  });

  it('refuses a start whose input fits but whose first state does not, storing nothing', async () => {
    // An adversarial pass: such a start was accepted (the API's 201) and its run stored already failed.
    const err = await engine.start('test.echo', { text: 't'.repeat(2500) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SizeLimitError);
    expect((err as Error).message).toMatch(
      /^The run's first state \(its snapshot, with the input copied into its context and steps\) is \d+ bytes, over the limit of 4096 bytes \(limits\.snapshotBytes\)\. Send less input/,
    );
    const stored = await db.query<{ id: string }>(`select id from rmapp_runs where workflow = 'test.echo'`);
    expect(stored, 'runs stored').toEqual([]);
    const run = await engine.waitFor(await engine.start('test.echo', { text: 'short' }), { timeoutMs: 20_000 });
    expect(run.status, 'a start that fits, after').toBe('succeeded');
  });

  it('refuses a start whose first state is large without its input, naming the machine, not the input', async () => {
    // An adversarial pass: a first state made large by a spawned child's error was answered "Send less input".
    const err = await engine.start('test.padded', {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SizeLimitError);
    expect((err as Error).message).toMatch(
      /^The run's first state \(its snapshot; its input is only 2 bytes\) is \d+ bytes, over the limit of 4096 bytes \(limits\.snapshotBytes\)\. The machine's first macrostep makes it large/,
    );
  });

  it('a start naming a stored run (its idempotency key, its id) gets that run back, even with an input whose first state would not fit', async () => {
    // An adversarial pass: the refusal came before the key was looked up, so a retried start got a 413.
    const key = `echo-key-${kind}`;
    const first = await engine.start('test.echo', { text: 'small' }, { idempotencyKey: key, runId: `echo-run-${kind}` });
    await engine.waitFor(first, { timeoutMs: 20_000 });
    const big = { text: 't'.repeat(2500) };
    expect(await engine.start('test.echo', big, { idempotencyKey: key }), 'by key').toBe(first);
    expect(await engine.start('test.echo', big, { runId: `echo-run-${kind}` }), 'by id').toBe(first);
    const stored = await db.query<{ id: string }>(`select id from rmapp_runs where workflow = 'test.echo' and id <> $1`, [first]);
    expect(stored.length, 'other runs stored').toBe(1); // the earlier test's small start
  });

  it('rejects invalid limits at creation with the name of the limit', () => {
    expect(() => createEngine({ workflows: [], limits: { signalBytes: -1 } })).toThrow(/limits\.signalBytes must be a positive integer/);
  });
});

it("names a snapshot past JavaScript's longest string as too large, not as V8's bare RangeError", () => {
  // 1,000 held child errors of 1 MB each failed the run with "cannot be persisted: Invalid string length."
  // (an adversarial pass); JSON.stringify throws this RangeError past ~512 MB of text.
  let thrown: unknown;
  try {
    JSON.stringify({ a: 'x'.repeat(2 ** 28), b: 'y'.repeat(2 ** 28) });
  } catch (err) {
    thrown = err;
  }
  expect(String(thrown)).toBe('RangeError: Invalid string length');
  expect(unpersistableSnapshotError(thrown)).toMatchObject({
    code: 'UNDURABLE_SNAPSHOT',
    message: expect.stringMatching(
      /^snapshot cannot be persisted: its JSON is longer than JavaScript can build as one string .* Keep large data in artifacts/,
    ),
  });
});
