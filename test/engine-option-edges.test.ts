/**
 * Engine options and calls a user gets wrong, or repeats: a lease too short to ever hold a run is
 * refused at `createEngine`, and sending again an event a finished run already took is answered as a
 * duplicate (a program run twice), not an error.
 */
import { beforeAll, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, ValidationError, type Database } from '../src/index.ts';
import { useTestDatabase } from './helpers/postgres.ts';

const store = useTestDatabase();
let db: Database;
beforeAll(() => {
  db = store.db;
});

it('a lease shorter than half a second is refused, naming the minimum', () => {
  expect(() => createEngine({ database: db, workflows: [], leaseMs: 10 })).toThrow(ValidationError);
  expect(() => createEngine({ database: db, workflows: [], leaseMs: 10 })).toThrow(
    'createEngine: leaseMs must be at least 500 (got 10); the default is 30000.',
  );
});

it('an option createEngine does not know is refused at any depth, naming the nearest known one (from JavaScript a typo was ignored)', () => {
  const refused = (options: Record<string, unknown>) => {
    try {
      createEngine({ database: db, workflows: [], ...options } as never);
    } catch (err) {
      expect(err, JSON.stringify(options)).toBeInstanceOf(ValidationError);
      return (err as Error).message;
    }
    return 'accepted';
  };
  expect(refused({ leaseMS: 5000 })).toMatch(
    /^createEngine: unknown option "leaseMS" \(did you mean "leaseMs"\?\)\. Known options: database, /,
  );
  expect(refused({ limits: { snapshotByte: 10 } })).toMatch(
    /unknown option "limits\.snapshotByte" \(did you mean "limits\.snapshotBytes"\?\)\. Known limits options: snapshotBytes,/,
  );
  expect(refused({ history: { keep: 5 } })).toMatch(/unknown option "history\.keep" \(did you mean "history\.keepLast"\?\)/);
  expect(refused({ retention: { policy: { succeeded: 1 } } })).toMatch(
    /unknown option "retention\.policy\.succeeded" \(did you mean "retention\.policy\.succeededMs"\?\)/,
  );
  expect(refused({ taskQueue: 'q' })).toMatch(/^createEngine: unknown option "taskQueue"\. Known options:/);
  // Every option the type has is known.
  expect(
    refused({
      concurrency: 2,
      leaseMs: 5000,
      pollMs: 100,
      evictAfterMs: 1000,
      migrate: false,
      limits: { snapshotBytes: 1 << 20 },
      history: { maxRows: 100, keepLast: 10 },
      retention: { intervalMs: 1000, policy: { succeededMs: 1, failedMs: 1, cancelledMs: 1 } },
    }),
  ).toBe('accepted');
});

it("options that are not an object, and workflow lists that are not arrays, are refused naming what was given (from JavaScript a TypeError of the engine's own file)", () => {
  const refused = (options: unknown) => {
    try {
      createEngine(options as never);
    } catch (err) {
      expect(err, String(options)).toBeInstanceOf(ValidationError);
      return (err as Error).message;
    }
    return 'accepted';
  };
  expect(refused(undefined)).toBe(
    'createEngine takes one options object, e.g. createEngine({ workflows: [order] }); it was given nothing.',
  );
  expect(refused([])).toMatch(/it was given an array of 0\.$/);
  expect(refused({ database: db, workflows: { order: 1 } })).toBe(
    'createEngine: workflows must be an array of defineWorkflow(...) results, e.g. { workflows: [order] }; it is an object with keys order.',
  );
  expect(refused({ database: db })).toMatch(/^createEngine: workflows must be an array .*; it is missing\.$/);
  expect(refused({ database: db, workflows: [], previousVersions: 'v1' })).toMatch(
    /^createEngine: previousVersions must be an array .*; it is a string\.$/,
  );
});

it('a worker id that is empty, too long, or holds spaces or control characters is refused; host names and unicode are not', () => {
  // An empty id named no one; one of 5,000 characters was copied into every lease and history row.
  for (const workerId of ['', 'a b', 'x'.repeat(129), 'tab\there', 'nul\u0000', 'lone\ud800']) {
    expect(() => createEngine({ database: db, workflows: [], workerId }), JSON.stringify(workerId.slice(0, 20))).toThrow(
      /^createEngine: workerId must be 1 to 128 visible characters without spaces \(got /,
    );
  }
  for (const workerId of ['w1', 'node-7.prod.example:9000', 'x'.repeat(128), 'wörker-😀']) {
    expect(() => createEngine({ database: db, workflows: [], workerId }), workerId).not.toThrow();
  }
});

it('a definition that only looks like one is refused at createEngine, in workflows and previousVersions', () => {
  // Registered among the previous versions, its runs failed to start after every lease, taken back by
  // the same worker for ever.
  const fake = { name: 'w', version: 'old', machine: {}, input: {} } as never;
  expect(() => createEngine({ database: db, workflows: [], previousVersions: [fake] })).toThrow(
    'createEngine: previousVersions[0] is not a defineWorkflow(...) result: its machine is not an XState machine.',
  );
  expect(() => createEngine({ database: db, workflows: [fake] })).toThrow(/^createEngine: workflows\[0\] is not a defineWorkflow/);
  const throwing = {
    get name(): string {
      throw new Error('getter exploded');
    },
  } as never;
  expect(() => createEngine({ database: db, workflows: [throwing] })).toThrow(/workflows\[0\] .*reading it threw \(getter exploded\)/);
});

it('an event sent again under its dedupe key after the run finished is a duplicate; a new one is refused', async () => {
  const machine = setup({ types: {} as { events: { type: 'approve' } } }).createMachine({
    id: 'once',
    initial: 'a',
    states: { a: { on: { approve: 'done' } }, done: { type: 'final' } },
  });
  const engine = createEngine({
    database: db,
    workflows: [defineWorkflow({ name: 'edge.once', machine, input: z.object({}) })],
    pollMs: 20,
  });
  await engine.startWorker();
  try {
    const id = await engine.start('edge.once', {}, { idempotencyKey: 'once-1' });
    const first = await engine.send(id, { type: 'approve' }, { dedupeKey: 'approval-1' });
    expect((await engine.waitFor(id, { timeoutMs: 10_000 })).status).toBe('succeeded');
    // The same program again: the same run, the same event.
    expect(await engine.start('edge.once', {}, { idempotencyKey: 'once-1' })).toBe(id);
    expect(await engine.send(id, { type: 'approve' }, { dedupeKey: 'approval-1' })).toEqual({
      delivered: false,
      id: first.id,
      outcome: 'duplicate',
    });
    await expect(engine.send(id, { type: 'approve' }, { dedupeKey: 'approval-2' })).rejects.toThrow(
      `Run ${id} has already finished (succeeded); it accepts no more events.`,
    );
  } finally {
    await engine.stop();
  }
});
