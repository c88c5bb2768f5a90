/**
 * Adversarial: a step that throws an error carrying hostile `details` (src/state_machine/errors.ts,
 * `writableDetails`) or calls `ctx.progress` with hostile data (step-execution.ts) must leave its run
 * finished — failed with its error recorded — never `running` with a write the database keeps refusing.
 */
import { assign, setup } from 'xstate';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, defineWorkflow, step, type Database, type Engine } from '../src/index.ts';
import { openTestStore } from './helpers/postgres.ts';
import { storableText, toErrorData } from '../src/state_machine/errors.ts';

function deep(n: number): unknown {
  let v: unknown = { leaf: true };
  for (let i = 0; i < n; i++) v = { d: v };
  return v;
}

/** Each scenario builds the `details` (or progress data) a step uses. */
const hostile: Record<string, () => unknown> = {
  getterThrows: () => ({
    ok: 1,
    get bad(): never {
      throw new Error('getter says no');
    },
  }),
  toJSONThrows: () => ({
    toJSON() {
      throw new Error('toJSON says no');
    },
  }),
  nestedToJSONThrowsWithCycle: () => {
    const o: Record<string, unknown> = { x: 1n };
    o.self = o;
    o.bad = {
      toJSON() {
        throw new Error('nested toJSON says no');
      },
    };
    return o;
  },
  proxyOwnKeysThrows: () =>
    new Proxy(
      {},
      {
        ownKeys() {
          throw new Error('ownKeys says no');
        },
      },
    ),
  tooDeepForStringify: () => deep(200_000),
  tooDeepForPostgres: () => deep(20_000),
  nulAndLoneSurrogate: () => ({ text: 'a\u0000b', ['k\ud800']: '\udc00x' }),
  bigintAndNul: () => ({ n: 10n, text: 'a\u0000b' }),
  symbolKeysAndFunctions: () => ({ [Symbol('s')]: 1, f: () => 1, u: undefined, ok: 'yes' }),
  hugeArray: () => ({ items: Array.from({ length: 300_000 }, (_, i) => i) }),
  topLevelBigint: () => 5n,
  topLevelString: () => 'just a string',
  toJSONReturnsThis: () => ({
    a: 'a\u0000',
    toJSON() {
      return this;
    },
  }),
};

const names = Object.keys(hostile);

const throwsWithDetails = step(
  async ({ input }: { input: { scenario: string } }) => {
    const details = hostile[input.scenario]!();
    throw Object.assign(new Error(`hostile details: ${input.scenario}`), { category: 'permanent', code: 'HOSTILE', details });
  },
  { retry: { maxAttempts: 1 } },
);

const progressWithData = step(
  async ({ input, progress }: { input: { scenario: string }; progress: (m: string, d?: Record<string, unknown>) => void }) => {
    progress('hostile progress', hostile[input.scenario]!() as Record<string, unknown>);
    return 'done';
  },
  { retry: { maxAttempts: 1 } },
);

function machineFor(actor: typeof throwsWithDetails | typeof progressWithData, id: string) {
  return setup({
    actors: { act: actor },
    types: { context: {} as { scenario: string }, input: {} as { scenario: string } },
  }).createMachine({
    id,
    initial: 'working',
    context: ({ input }) => ({ scenario: input.scenario }),
    states: {
      working: { invoke: { src: 'act', input: ({ context }) => ({ scenario: context.scenario }), onDone: 'done' } },
      done: { type: 'final' },
    },
  });
}

const detailsWorkflow = defineWorkflow({
  name: 'adv3.details',
  machine: machineFor(throwsWithDetails, 'adv3Details'),
  input: z.object({ scenario: z.string() }),
});
const progressWorkflow = defineWorkflow({
  name: 'adv3.progress',
  machine: machineFor(progressWithData as never, 'adv3Progress'),
  input: z.object({ scenario: z.string() }),
});

for (const kind of ['postgres', 'pglite'] as const) {
  describe(`hostile error details and progress data (${kind})`, () => {
    let db: Database;
    let close: (() => Promise<void>) | undefined;
    let engine: Engine;
    beforeAll(async () => {
      ({ db, close } = await openTestStore(kind));
      // A lease no neighbour's load can make lapse within a case: a take-over in the history then means a
      // write of the run was refused again and again (what these cases guard against), not a slow machine.
      engine = createEngine({ database: db, workflows: [detailsWorkflow, progressWorkflow], pollMs: 50, leaseMs: 20_000 });
      await engine.startWorker();
    }, 60_000);
    afterAll(async () => {
      await engine?.stop();
      await close?.();
    });

    for (const scenario of names) {
      it(`a step error whose details are '${scenario}' fails the run with its error (toErrorData/writableDetails)`, async () => {
        const id = await engine.start('adv3.details', { scenario });
        await expect
          .poll(async () => (await engine.get(id)).status, { timeout: 20_000, message: `run ${id} (${scenario}) never finished` })
          .toBe('failed');
        const run = await engine.get(id);
        const history = await engine.history(id);
        expect(
          history.map((e) => e.type),
          `history of ${scenario}`,
        ).not.toContain('lease.taken_over');
        expect(
          JSON.stringify(run.error),
          `the run's error for ${scenario} (the step's own error, not one raised reading its details)`,
        ).toContain('HOSTILE');
      }, 30_000);

      it(`ctx.progress with '${scenario}' data finishes the run (succeeded, or failed at the call)`, async () => {
        const id = await engine.start('adv3.progress', { scenario });
        await expect
          .poll(async () => (await engine.get(id)).status, { timeout: 20_000, message: `run ${id} (${scenario}) never finished` })
          .toMatch(/^(succeeded|failed)$/);
        const history = await engine.history(id);
        expect(
          history.map((e) => e.type),
          `history of ${scenario}`,
        ).not.toContain('lease.taken_over');
      }, 30_000);
    }
  });
}

describe('toErrorData: hostile details (writableDetails)', () => {
  for (const scenario of names) {
    it(`keeps the error's own name and code and gives details JSON writes without NUL or lone surrogates: '${scenario}'`, () => {
      const err = Object.assign(new Error('mine'), { category: 'permanent', code: 'HOSTILE', details: hostile[scenario]!() });
      const data = toErrorData(err);
      expect(data.code).toBe('HOSTILE');
      expect(data.message).toBe('mine');
      const text = JSON.stringify(data.details);
      expect(text, `details of ${scenario}`).not.toMatch(/\\u(?:0000|d[89a-f])/i);
    });
  }

  it('keeps what it can read next to what it cannot', () => {
    const data = toErrorData(Object.assign(new Error('x'), { category: 'permanent', details: hostile.getterThrows!() }));
    expect(data.details).toEqual({ ok: 1, bad: '[Unreadable: getter says no]' });
  });
});

describe('a thrown value that is no Error, and that JSON cannot write (a cycle, a BigInt, a throwing toJSON or getter)', () => {
  for (const scenario of names) {
    it(`toErrorData turns '${scenario}' thrown as it is into text, without throwing`, () => {
      let thrown: unknown;
      try {
        thrown = hostile[scenario]!();
      } catch (err) {
        thrown = err;
      }
      const data = toErrorData(thrown);
      expect(typeof data.message, `message of ${scenario}`).toBe('string');
      expect(storableText(data.message), `the message of ${scenario} holds no NUL or lone surrogate`).toBe(data.message);
    });
  }

  it('an action or a step throwing one fails the run with it (the step retried as configured), and nothing escapes to the process', async () => {
    const cyclic = () => {
      const o: Record<string, unknown> = { a: 1, n: 2n };
      o.self = o;
      return o;
    };
    let attempts = 0;
    const work = step(
      async () => {
        attempts++;
        throw cyclic();
      },
      { retry: { maxAttempts: 3, initialDelayMs: 10 } },
    );
    const machine = setup({ actors: { work }, types: { events: {} as { type: 'go' } } }).createMachine({
      id: 'thrownValues',
      initial: 'idle',
      states: {
        idle: {
          on: {
            go: {
              target: 'done',
              actions: () => {
                throw cyclic();
              },
            },
          },
        },
        working: { invoke: { src: 'work', onDone: 'done' } },
        done: { type: 'final' },
      },
    });
    const inStep = setup({ actors: { work } }).createMachine({
      id: 'thrownInStep',
      initial: 'working',
      states: { working: { invoke: { src: 'work', onDone: 'done' } }, done: { type: 'final' } },
    });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    process.on('uncaughtException', onUnhandled);
    const { db, close } = await openTestStore('postgres');
    const engine = createEngine({
      database: db,
      workflows: [
        defineWorkflow({ name: 'adv3.thrown-action', machine, input: z.object({}) }),
        defineWorkflow({ name: 'adv3.thrown-step', machine: inStep, input: z.object({}) }),
      ],
      pollMs: 50,
    });
    try {
      await engine.startWorker();
      const byAction = await engine.start('adv3.thrown-action', {});
      await engine.send(byAction, { type: 'go' });
      const a = await engine.waitFor(byAction, { timeoutMs: 20_000 });
      expect({ status: a.status, code: a.error?.code }, 'the run whose action threw').toEqual({ status: 'failed', code: 'MACHINE_ERROR' });
      expect(a.error?.message).toMatch(/\[Circular\]/);
      const byStep = await engine.waitFor(await engine.start('adv3.thrown-step', {}), { timeoutMs: 20_000 });
      expect(byStep.status, 'the run whose step threw').toBe('failed');
      expect(attempts, 'attempts of the step (maxAttempts 3)').toBe(3);
      expect(unhandled.map(String), 'errors that escaped to the process (they end a worker)').toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      process.off('uncaughtException', onUnhandled);
      await engine.stop();
      await close?.();
    }
  }, 60_000);
});

describe('a context whose reading throws, and an error code holding a NUL', () => {
  let flip = false;
  // A proxy, not a getter: a getter in context is refused at the write (durable-values.test.ts), a
  // proxy reads as plain data until `flip`.
  const unreadable = (thrown: unknown) =>
    new Proxy(
      { x: 1 },
      {
        get(target, key, receiver) {
          if (flip) throw thrown;
          return Reflect.get(target, key, receiver) as unknown;
        },
        getOwnPropertyDescriptor(target, key) {
          if (flip) throw thrown;
          return Reflect.getOwnPropertyDescriptor(target, key);
        },
        ownKeys(target) {
          if (flip) throw thrown;
          return Reflect.ownKeys(target);
        },
      },
    );
  const slow = step(async () => {
    await new Promise((r) => setTimeout(r, 1_500));
    return 1;
  });
  type Events = { type: 'set'; thrown: 'undefined' | 'error' } | { type: 'fin' } | { type: 'work' } | { type: 'code' };
  const machine = setup({ actors: { slow }, types: {} as { context: { bad?: unknown }; events: Events } }).createMachine({
    id: 'unreadableContext',
    initial: 'idle',
    context: {},
    states: {
      idle: {
        on: {
          set: {
            actions: assign({ bad: ({ event }) => unreadable(event.thrown === 'undefined' ? undefined : new Error('getter says no')) }),
          },
          fin: { target: 'done', actions: assign({ bad: () => unreadable(undefined) }) },
          work: { target: 'working', actions: assign({ bad: () => unreadable(null) }) },
          code: {
            actions: () => {
              throw Object.assign(new Error('coded'), { code: 'a\u0000b', category: 'permanent' });
            },
          },
        },
      },
      working: { invoke: { src: 'slow', onDone: 'done' } },
      done: { type: 'final' },
    },
  });
  const workflow = defineWorkflow({ name: 'adv3.unreadable-context', machine, input: z.object({}) });
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  let engine: Engine;
  let close: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    process.on('uncaughtException', onUnhandled);
    const store = await openTestStore('postgres');
    close = store.close;
    engine = createEngine({ database: store.db, workflows: [workflow], pollMs: 50 });
    await engine.startWorker();
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    process.off('uncaughtException', onUnhandled);
    await engine?.stop();
    await close?.();
  });
  const started = async (event: Events | null, unreadableBeforeEvent: boolean) => {
    flip = false;
    const id = await engine.start(workflow, {});
    flip = unreadableBeforeEvent;
    if (event) await engine.send(id, event);
    return id;
  };

  for (const thrown of ['undefined', 'error'] as const) {
    it(`a macrostep whose snapshot cannot be read (a getter throwing ${thrown}) fails the run naming it`, async () => {
      const run = await engine.waitFor(await started({ type: 'set', thrown }, true), { timeoutMs: 20_000 });
      expect({ status: run.status, code: run.error?.code }).toEqual({ status: 'failed', code: 'UNDURABLE_SNAPSHOT' });
      expect(unhandled.map(String), 'errors that escaped to the process (they end a worker)').toEqual([]);
    }, 30_000);
  }

  it('a final state reached in the macrostep that made the context unreadable fails the run naming it', async () => {
    const run = await engine.waitFor(await started({ type: 'fin' }, true), { timeoutMs: 20_000 });
    expect({ status: run.status, code: run.error?.code }).toEqual({ status: 'failed', code: 'UNDURABLE_SNAPSHOT' });
    expect(unhandled.map(String), 'errors that escaped to the process (they end a worker)').toEqual([]);
  }, 30_000);

  it('a run cancelled while a step works, after its context became unreadable, is cancelled at once (not when its lease runs out)', async () => {
    const id = await started({ type: 'work' }, false);
    await expect.poll(async () => (await engine.get(id)).state, { timeout: 20_000 }).toBe('working');
    flip = true;
    await engine.cancel(id);
    expect((await engine.waitFor(id, { timeoutMs: 20_000 })).status).toBe('cancelled');
    expect(unhandled.map(String), 'errors that escaped to the process (they end a worker)').toEqual([]);
  }, 30_000);

  it('an error whose code holds a NUL fails its run with it (the write carrying it was refused)', async () => {
    const run = await engine.waitFor(await started({ type: 'code' }, false), { timeoutMs: 20_000 });
    expect({ status: run.status, message: run.error?.message }).toEqual({ status: 'failed', message: 'coded' });
  }, 30_000);
});
