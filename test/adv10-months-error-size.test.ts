/**
 * A step's error is kept to a bounded size wherever it is recorded. Its size was the thrower's: a step
 * failing with a 5 MB message (an HTTP error quoting its response, a command's whole output) wrote its
 * message and stack (10 MB) into the attempt's history row, the step record and the run's row, at every
 * attempt — history is bounded in rows, not bytes — and one of 140 MB failed the run with
 * `WRITE_REJECTED` ("cannot be written as JSON: Invalid string length") instead of its own error (an
 * adversarial pass). Now the message and the stack keep their head and tail (32 KiB each), the details
 * 64 KiB, with how much was left out between them.
 */
import { setup } from 'xstate';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { createEngine, defineWorkflow, step, type Engine } from '../src/index.ts';
import { MAX_ERROR_DETAILS, MAX_ERROR_TEXT } from '../src/state_machine/errors.ts';
import { toErrorData } from '../src/index.ts';
import { createMasker } from '../src/rmapp/masking.ts';
import { cleanupsAfterAll } from './helpers/cleanups.ts';
import { createTestDatabase } from './helpers/postgres.ts';

/** Text a person would read at the start and the end of a long failure, and bulk between. */
const HEAD = 'GET /export failed with 502: ';
const TAIL = ' — the last line of the response';
const bulk = (chars: number) => `${HEAD}${'0123456789abcdef'.repeat(Math.ceil(chars / 16)).slice(0, chars)}${TAIL}`;

type Input = { chars: number; details: 'none' | 'one' | 'many' | 'keys' };
const fails = step(
  async ({ input }: { input: Input }) => {
    const message = bulk(input.chars);
    if (input.details === 'none') throw new Error(message);
    // One long string among short ones; fifty long ones (too many even once each is cut to 4 KiB); or
    // thousands of keys (too many whatever their values are cut to).
    const details =
      input.details === 'one'
        ? { response: message, status: 502, lines: ['first', 'second'] }
        : input.details === 'many'
          ? { lines: Array.from({ length: 50 }, () => message.slice(0, 10_000)) }
          : Object.fromEntries(Array.from({ length: 5_000 }, (_, i) => [`header-${i}`, message.slice(0, 60)]));
    throw Object.assign(new Error('the export failed'), { category: 'permanent', details });
  },
  { retry: { maxAttempts: 2, initialDelayMs: 10, maxDelayMs: 10 } },
);
const machine = setup({
  actors: { fails },
  types: {} as { input: Input; context: Input },
}).createMachine({
  id: 'failsLong',
  context: ({ input }) => input,
  initial: 'exporting',
  states: {
    exporting: { invoke: { src: 'fails', input: ({ context }) => context, onDone: 'done' } },
    done: { type: 'final' },
  },
});
const workflow = defineWorkflow({
  name: 'adv10.failsLong',
  machine,
  input: z.object({ chars: z.number(), details: z.enum(['none', 'one', 'many', 'keys']) }),
});

const cleanups = cleanupsAfterAll();

async function engineOnPostgres(): Promise<Engine> {
  const db = await createTestDatabase();
  cleanups.push(() => db.drop());
  const engine = createEngine({ workflows: [workflow], database: { url: db.url } });
  cleanups.push(() => engine.stop());
  await engine.startWorker();
  return engine;
}

/** Every error the run's history and row hold. */
async function errorsOf(engine: Engine, id: string) {
  const run = await engine.get(id);
  const history = await engine.history(id);
  const inHistory = history.flatMap((e) => {
    const error = (e.data as { error?: { message: string; stack?: string; details?: unknown } } | undefined)?.error;
    return error ? [error] : [];
  });
  return { run, errors: [run.error as NonNullable<typeof run.error>, ...inHistory] };
}

describe("a step's error is kept to a bounded size", () => {
  it('a 5 MB message: its head and tail, and how much was left out, at every attempt', async () => {
    const engine = await engineOnPostgres();
    const id = await engine.start(workflow, { chars: 5_000_000, details: 'none' });
    expect((await engine.waitFor(id, { timeoutMs: 60_000 })).status).toBe('failed');
    const { run, errors } = await errorsOf(engine, id);
    // The run's error, and the two attempts' in the history (retrying, then failed).
    expect(errors.length).toBeGreaterThanOrEqual(3);
    for (const error of errors) {
      expect(error.message.length).toBeLessThanOrEqual(MAX_ERROR_TEXT);
      expect(error.message.startsWith(HEAD)).toBe(true);
      expect(error.message.endsWith(TAIL)).toBe(true);
      expect(error.message).toMatch(/\n… \d+ characters left out …\n/);
      expect(error.stack?.length ?? 0).toBeLessThanOrEqual(MAX_ERROR_TEXT);
    }
    expect(run.error?.code).toBe('ERROR');
  });

  it('details of megabytes: each string kept to its head and tail, shorter when there are many, or the details left out', async () => {
    const engine = await engineOnPostgres();
    const ids = await Promise.all(
      (['one', 'many', 'keys'] as const).map((details) => engine.start(workflow, { chars: 1_000_000, details })),
    );
    for (const id of ids) {
      await engine.waitFor(id, { timeoutMs: 60_000 });
      for (const error of (await errorsOf(engine, id)).errors) {
        expect(JSON.stringify(error.details).length).toBeLessThanOrEqual(MAX_ERROR_DETAILS + 1_000);
        expect(error.message).toBe('the export failed');
      }
    }
    const [one, many, keys] = await Promise.all(ids.map(async (id) => (await engine.get(id)).error?.details));
    const kept = one as { response: string; status: number; lines: string[] };
    expect(kept.status).toBe(502);
    expect(kept.lines).toEqual(['first', 'second']);
    expect(kept.response.startsWith(HEAD)).toBe(true);
    expect(kept.response.endsWith(TAIL)).toBe(true);
    expect(kept.response).toMatch(/characters left out/);
    const lines = (many as { lines: string[] }).lines;
    expect(lines).toHaveLength(50);
    for (const line of lines) {
      expect(line.startsWith(HEAD.slice(0, 10))).toBe(true);
      expect(line).toMatch(/characters left out/);
    }
    expect((keys as { leftOut?: string }).leftOut).toMatch(/characters of details left out/);
  });

  it('a 140 MB message: the run fails with its own error, not with a write the database refused', async () => {
    const engine = await engineOnPostgres();
    const id = await engine.start(workflow, { chars: 140_000_000, details: 'none' });
    const run = await engine.waitFor(id, { timeoutMs: 120_000 });
    expect(run.status).toBe('failed');
    expect(run.error?.code).toBe('ERROR');
    expect(run.error?.message.startsWith(HEAD)).toBe(true);
    expect(run.error?.message.endsWith(TAIL)).toBe(true);
  });

  it('a secret the cut falls in: the piece left at the cut is masked as the rest of the secret would be', () => {
    const secret = 'tok-4f9a1c7e2b8d6035aa';
    // The cut keeps the first (MAX_ERROR_TEXT - 60) / 2 characters: the secret's first 10 are the last kept.
    const before = Math.floor((MAX_ERROR_TEXT - 60) / 2) - 10;
    const error = toErrorData(new Error(`${'a'.repeat(before)}${secret}${'b'.repeat(100_000)}`));
    expect(error.message).toContain(secret.slice(0, 10));
    expect(createMasker([secret]).text(error.message)).not.toContain(secret.slice(0, 10));
  });
});
