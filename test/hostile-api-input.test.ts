/**
 * What the engine's API refuses before the database sees it, found by an adversarial pass: each call
 * fails with a ValidationError (or a SizeLimitError) naming the field, the database keeps no partial row,
 * and a cancellation cannot be blocked by an event held under the engine's own dedupe key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assign, setup } from 'xstate';
import { z } from 'zod';
import {
  createEngine,
  defineWorkflow,
  silentLogger,
  SizeLimitError,
  step,
  ValidationError,
  type Database,
  type Engine,
} from '../src/index.ts';
import { openTestStore } from './helpers/postgres.ts';

const waiting = defineWorkflow({
  name: 'test.hostile-waiting',
  input: z.object({ k: z.string().optional(), blob: z.string().optional() }),
  concurrency: { key: (i) => i.k ?? 'default', limit: 100 },
  machine: setup({}).createMachine({ initial: 'waiting', states: { waiting: { on: { go: 'done' } }, done: { type: 'final' } } }),
  signals: { buffer: true },
});

const objectKeyed = defineWorkflow({
  name: 'test.hostile-object-key',
  input: z.object({ n: z.number() }),
  concurrency: { key: (i) => (i.n === 0 ? ({ n: i.n } as unknown as string) : (i.n as unknown as string)), limit: 1 },
  machine: setup({}).createMachine({ initial: 'waiting', states: { waiting: { on: { go: 'done' } }, done: { type: 'final' } } }),
});

/** A step that tries what the test names (in its input) and returns what happened. */
const tryIt = step(
  async (ctx: {
    input: { what: string };
    saveArtifact(n: string, v: unknown): Promise<void>;
    progress(m: string, d?: Record<string, unknown>): void;
  }) => {
    const attempt = async (fn: () => unknown) => {
      try {
        await fn();
        return 'ok';
      } catch (err) {
        return `${(err as Error).name}: ${(err as Error).message}`;
      }
    };
    switch (ctx.input.what) {
      case 'artifact names':
        return [
          await attempt(() => ctx.saveArtifact('a\ud800', 1)),
          await attempt(() => ctx.saveArtifact('a\u0000b', 1)),
          await attempt(() => ctx.saveArtifact('n'.repeat(2000), 1)),
          await attempt(() => ctx.saveArtifact('step-output/x', 1)),
          await attempt(() => ctx.saveArtifact('fine', 1)),
          await attempt(() => ctx.saveArtifact('fn', () => 1)),
          await attempt(() => ctx.saveArtifact('sym', Symbol('s'))),
          await attempt(() => ctx.saveArtifact('nothing', { toJSON: () => undefined })),
        ];
      case 'dot names':
        return [await attempt(() => ctx.saveArtifact('..', 1)), await attempt(() => ctx.saveArtifact('.', 1))];
      case 'progress':
        return [
          await attempt(() => ctx.progress(10n as unknown as string)),
          await attempt(() => ctx.progress('m', 'text' as unknown as Record<string, unknown>)),
          await attempt(() => ctx.progress('the message', { message: 'from data', n: 1 })),
          await attempt(() => ctx.progress('no data', null as unknown as Record<string, unknown>)),
        ];
      default:
        // An output large enough to be offloaded, holding a NUL.
        return { text: `${'x'.repeat(2000)}\u0000` };
    }
  },
);

const trying = defineWorkflow({
  name: 'test.hostile-trying',
  input: z.object({ what: z.string() }),
  machine: setup({
    types: {} as { context: { what: string; result?: unknown }; input: { what: string } },
    actors: { tryIt },
  }).createMachine({
    context: ({ input }) => ({ what: input.what }),
    initial: 'trying',
    states: {
      trying: {
        invoke: {
          src: 'tryIt',
          input: ({ context }) => ({ what: context.what }),
          onDone: { target: 'done', actions: assign({ result: ({ event }) => event.output }) },
        },
      },
      done: { type: 'final' },
    },
    output: ({ context }) => context.result,
  }),
});

describe.each(['postgres', 'pglite'] as const)('hostile input through the engine API (%s)', (kind) => {
  let store: { db: Database; close(): Promise<void> };
  let engine: Engine;
  beforeAll(async () => {
    store = await openTestStore(kind);
    engine = createEngine({
      database: store.db,
      workflows: [waiting, objectKeyed, trying],
      logger: silentLogger,
      limits: { snapshotBytes: 64 * 1024, stepOutputInlineBytes: 1024 },
    });
    await engine.startWorker();
  });
  afterAll(async () => {
    await engine.stop();
    await store.close();
  });
  const count = async () => Number((await store.db.query<{ n: number }>('select count(*)::int as n from rmapp_runs'))[0]?.n);

  it('an event held under the dedupe key of the engine’s cancellation is refused, and cancel still cancels', async () => {
    const id = await engine.start(waiting, {});
    await expect(engine.send(id, { type: 'later' }, { dedupeKey: 'rmapp.cancel', buffer: true })).rejects.toThrow(
      /dedupeKey "rmapp.cancel" is reserved/,
    );
    await engine.send(id, { type: 'later' }, { dedupeKey: 'mine', buffer: true });
    expect((await engine.cancel(id)).cancelled).toBe(true);
    expect((await engine.waitFor(id, { timeoutMs: 30_000 })).status, 'the run after cancel').toBe('cancelled');
  });

  it('keys too long to index, and text Postgres refuses, are refused with the field named', async () => {
    const before = await count();
    const long = 'k'.repeat(3000);
    await expect(engine.start(waiting, {}, { idempotencyKey: long })).rejects.toThrow(
      /Invalid idempotencyKey: idempotencyKey is 3000 bytes of UTF-8; at most 1000/,
    );
    await expect(engine.start(waiting, { k: long })).rejects.toThrow(/The concurrency key is \d+ bytes of UTF-8/);
    await expect(engine.start(waiting, {}, { concurrencyKey: 'a\u0000b' })).rejects.toThrow(ValidationError);
    await expect(engine.start(objectKeyed, { n: 0 })).rejects.toThrow(
      /concurrency.key of workflow "test.hostile-object-key" returned object/,
    );
    await expect(engine.start(waiting, {}, { parentRunId: "x'; drop table rmapp_runs; --" })).rejects.toThrow(/Invalid parentRunId/);
    await expect(engine.start(waiting, {}, { runId: 'self-1', parentRunId: 'self-1' })).rejects.toThrow(/its own parent/);
    // A parent that does not exist: a dangling link, and two runs naming each other were never pruned.
    await expect(engine.start(waiting, {}, { runId: 'orphan-1', parentRunId: 'no-such-parent' })).rejects.toThrow(
      /Invalid parentRunId: there is no run with id "no-such-parent"; start the parent first/,
    );
    const err = await engine.start(waiting, { blob: 'b'.repeat(70 * 1024) }).catch((e: unknown) => e);
    expect(err, 'an input over the snapshot limit').toBeInstanceOf(SizeLimitError);
    expect(await count(), 'rows written by refused starts').toBe(before);
    // A number key is a key: runs of two numbers are admitted under their own keys.
    const a = await engine.start(objectKeyed, { n: 1 });
    const b = await engine.start(objectKeyed, { n: 2 });
    expect([(await engine.get(a)).status, (await engine.get(b)).status]).not.toContain('failed');

    const id = await engine.start(waiting, {});
    while ((await engine.get(id)).status !== 'waiting') await new Promise((resolve) => setTimeout(resolve, 20));
    await expect(engine.send(id, { type: 'go' }, { dedupeKey: 'd'.repeat(3000) })).rejects.toThrow(/dedupeKey is 3000 bytes/);
    await expect(engine.send(id, { type: 'go' }, { dedupeKey: 'd\ud800' })).rejects.toThrow(ValidationError);
    const hidden = Object.defineProperty({}, 'type', { value: 'go', enumerable: false }) as { type: string };
    await expect(engine.send(id, hidden)).rejects.toThrow(/own, enumerable property/);
    await expect(engine.cancel(id, 'why\u0000')).rejects.toThrow(/The cancellation reason/);
    await expect(engine.cancel(id, 'r'.repeat(5000))).rejects.toThrow(/at most 4000/);
    await expect(engine.cancel(id, 42 as unknown as string)).rejects.toThrow(/must be a string/);
    expect((await engine.get(id)).status, 'the run after refused sends and cancels').toBe('waiting');
    await engine.send(id, { type: 'go' });
    expect((await engine.waitFor(id, { timeoutMs: 30_000 })).status).toBe('succeeded');

    for (const limit of [-1, 0, 1.5, Number.NaN, 1e20])
      await expect(engine.list({ limit }), `limit ${limit}`).rejects.toThrow(/limit must be an integer/);
    await expect(engine.list({ workflow: 'w\u0000' })).rejects.toThrow(ValidationError);
    await expect(engine.list({ status: 'running\u0000' as never })).rejects.toThrow(/list: status must be one of/);
    // The limit counts the caller's key, not the workflow name put before it: 1,000 bytes are admitted.
    const full = await engine.start(waiting, {}, { concurrencyKey: '€'.repeat(333) });
    expect((await engine.get(full)).status).not.toBe('failed');
    await expect(engine.getArtifact(id, 'a\u0000')).rejects.toThrow(ValidationError);
  });

  it('list filters Postgres would refuse (text in inputContains it cannot hold, an instant outside years 1–9999) are refused naming the filter', async () => {
    // Each was a raw database error (22P05, 22P02, 22007, 22009): through the HTTP API, a 500.
    await expect(engine.list({ inputContains: { a: '\u0000' } })).rejects.toThrow(/^list: inputContains\.a holds a NUL character/);
    await expect(engine.list({ inputContains: { a: { b: ['\ud800'] } } })).rejects.toThrow(
      /^list: inputContains\.a\.b\[0\] holds a lone UTF-16 surrogate/,
    );
    await expect(engine.list({ inputContains: { ['k\u0000']: 1 } })).rejects.toThrow(
      /^list: inputContains\["k\\u0000"\] has a key that holds a NUL/,
    );
    for (const instant of ['-000001-01-01T00:00:00Z', '0000-12-31T23:59:59Z', '+010000-01-01T00:00:00Z', '+275760-09-13T00:00:00Z'])
      await expect(engine.list({ createdAfter: new Date(instant) }), instant).rejects.toThrow(
        /^list: createdAfter must be a Date from year 1 to 9999/,
      );
    for (const instant of ['0001-01-01T00:00:00Z', '9999-12-31T23:59:59.999Z'])
      expect(await engine.list({ createdAfter: new Date(instant), limit: 1 }), instant).toBeInstanceOf(Array);
    expect(await engine.list({ inputContains: { a: 'ok' } })).toEqual([]);
  });

  it('artifact names and progress messages a step passes are checked in the step; an offloaded output holding a NUL fails with its path', async () => {
    const names = await engine.start(trying, { what: 'artifact names' });
    const named = (await engine.waitFor(names, { timeoutMs: 30_000 })).output as string[];
    expect(
      named.slice(0, 4).map((r) => r.split(':')[0]),
      named.join('\n'),
    ).toEqual(['ValidationError', 'ValidationError', 'ValidationError', 'ValidationError']);
    expect(named[3]).toMatch(/"step-output\/" hold the engine's offloaded step outputs/);
    expect(named[4]).toBe('ok');
    // Values JSON writes as nothing: a clear refusal, not Buffer's ERR_INVALID_ARG_TYPE.
    expect(named.slice(5), named.join('\n')).toEqual([
      'ValidationError: Artifact "fn": the value is a function, which JSON writes as nothing; save data (null for none).',
      'ValidationError: Artifact "sym": the value is a symbol, which JSON writes as nothing; save data (null for none).',
      'ValidationError: Artifact "nothing": the value is an object whose toJSON gives undefined, which JSON writes as nothing; save data (null for none).',
    ]);

    // A URL path reads a name of dots as "." or "..": GET …/artifacts/.. answered the run itself.
    const dots = await engine.start(trying, { what: 'dot names' });
    expect((await engine.waitFor(dots, { timeoutMs: 30_000 })).output).toEqual([
      'ValidationError: Artifact "..": dots alone are no name a URL can hold; choose another.',
      'ValidationError: Artifact ".": dots alone are no name a URL can hold; choose another.',
    ]);

    const progress = await engine.start(trying, { what: 'progress' });
    const told = (await engine.waitFor(progress, { timeoutMs: 30_000 })).output as string[];
    expect(told, told.join('\n')).toEqual([
      'ValidationError: ctx.progress: the message must be a string (got bigint).',
      'ValidationError: ctx.progress("m"): data must be an object of named values.',
      'ok',
      'ok',
    ]);
    const entry = (await engine.history(progress)).find((h) => h.type === 'progress');
    expect(entry?.data, 'the progress entry').toMatchObject({ message: 'the message', n: 1 });

    const output = await engine.start(trying, { what: 'output' });
    const run = await engine.waitFor(output, { timeoutMs: 30_000 });
    expect(run.status).toBe('failed');
    expect(run.error?.message).toMatch(/The output of step .*: output\.text .*NUL/);
  });
});
