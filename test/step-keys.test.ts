/**
 * Every execution of a step gets an idempotency key no other execution of the run gets
 * (`<run>/<path>`, then `<run>/<path>#2`, …), in the cases an adversarial pass found broken: a retried
 * run whose earlier executions failed or were stopped, a step its machine stopped while the engine was
 * draining, and a step id that holds `#`. Each execution's key is counted in a ledger outside the engine.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { assign, sendParent, sendTo, setup, spawnChild, stopChild, type AnyStateMachine } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, silentLogger, step, type Database } from '../src/index.ts';
import { openTestStore } from './helpers/postgres.ts';

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

const stores = new Map<'postgres' | 'pglite', ReturnType<typeof openTestStore>>();

/**
 * One store of `kind` for the file, opened at its first use and closed after every engine on it
 * stopped. The tests share it without meeting: each runs its own workflow (its own name), and a worker
 * claims only the runs of the workflows it has (src/persistence/claims.ts). A store per test opened 17
 * PGlite instances (~3 s of CPU each on the shared 2-core machine) and 17 Postgres databases.
 */
function sharedStore(kind: 'postgres' | 'pglite') {
  let store = stores.get(kind);
  if (!store) {
    store = openTestStore(kind);
    stores.set(kind, store);
    const opened = store;
    cleanups.push(async () => (await opened).close());
  }
  return store;
}

/** Executions by the name the machine gave each (its input), with the key each got. */
function ledger() {
  const entries: { exec: string; key: string }[] = [];
  return {
    entries,
    add: (exec: string, key: string) => void entries.push({ exec, key }),
    /** Keys given to two different executions, with the executions. */
    shared(): string[] {
      const by = new Map<string, Set<string>>();
      for (const e of entries) by.set(e.key, (by.get(e.key) ?? new Set()).add(e.exec));
      return [...by].filter(([, execs]) => execs.size > 1).map(([key, execs]) => `${key}: ${[...execs].join(', ')}`);
    },
  };
}

/** A step that records its execution's key in `keys` under its input's name, and returns 1. */
function recording(keys: ReturnType<typeof ledger>) {
  return step(async ({ input, idempotencyKey }: { input: { exec: string }; idempotencyKey: string }) => {
    keys.add(input.exec, idempotencyKey);
    return 1;
  });
}

/** A store of `kind`, an engine running `machine` as the workflow `name`, and a run of it started. */
async function startRun(kind: 'postgres' | 'pglite', name: string, machine: AnyStateMachine) {
  const store = await sharedStore(kind);
  const workflow = defineWorkflow({ name, machine, input: z.object({}) });
  const engine = createEngine({ database: store.db, workflows: [workflow], logger: silentLogger });
  cleanups.push(() => engine.stop());
  await engine.startWorker();
  return { engine, runId: await engine.start(workflow, {}) };
}

const untilAborted = (signal: AbortSignal) =>
  new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }));

/** Waits (polling, up to 10 s) until `check` holds, and fails naming `what` if it never does. */
async function until(what: string, check: () => boolean | Promise<boolean>) {
  for (let i = 0; i < 500 && !(await check()); i++) await new Promise((resolve) => setTimeout(resolve, 20));
  expect(await check(), what).toBe(true);
}

describe.each(['postgres', 'pglite'] as const)('step idempotency keys (%s)', (kind) => {
  it('engine.retry runs the failed step again under its own key; earlier failed and stopped executions count as finished', async () => {
    const keys = ledger();
    let boomFails = true;
    const work = step(
      async ({ input, idempotencyKey, signal }: { input: { exec: string }; idempotencyKey: string; signal: AbortSignal }) => {
        keys.add(input.exec, idempotencyKey);
        if (input.exec === 'handled-1') throw new Error('handled failure');
        if (input.exec === 'boom' && boomFails) {
          boomFails = false;
          throw new Error('unhandled failure');
        }
        if (input.exec.startsWith('stopped')) return untilAborted(signal);
        return 1;
      },
      { retry: { maxAttempts: 1 } },
    );
    const machine = setup({ types: {} as { context: { round: number } }, actors: { work } }).createMachine({
      context: { round: 0 },
      initial: 'slow',
      states: {
        // `s`: stopped by its machine; `h`: fails, handled; `b`: fails, unhandled (the run fails).
        slow: {
          invoke: { id: 's', src: 'work', input: ({ context }) => ({ exec: `stopped-${context.round}` }) },
          // Sent by the test once the step runs: a timer could stop it before it starts on a loaded machine.
          on: { next: 'handled' },
        },
        handled: {
          invoke: {
            id: 'h',
            src: 'work',
            input: ({ context }) => ({ exec: `handled-${context.round + 1}` }),
            onError: 'check',
            onDone: 'check',
          },
        },
        check: { always: [{ guard: ({ context }) => context.round > 0, target: 'done' }, { target: 'boom' }] },
        boom: { invoke: { id: 'b', src: 'work', input: { exec: 'boom' }, onDone: { target: 'slow', actions: assign({ round: 1 }) } } },
        done: { type: 'final' },
      },
    });
    const { engine, runId } = await startRun(kind, 'test.keys-retry', machine);
    const stopWhenRunning = async (exec: string) => {
      await until(`${exec} started`, () => keys.entries.some((e) => e.exec === exec));
      await engine.send(runId, { type: 'next' });
    };
    await stopWhenRunning('stopped-0');
    expect((await engine.waitFor(runId, { timeoutMs: 30_000 })).status).toBe('failed');
    await engine.retry(runId);
    await stopWhenRunning('stopped-1');
    expect((await engine.waitFor(runId, { timeoutMs: 30_000 })).status).toBe('succeeded');

    expect(keys.shared(), 'keys given to two executions').toEqual([]);
    const keyOf = (exec: string) => keys.entries.filter((e) => e.exec === exec).map((e) => e.key.slice(runId.length + 1));
    expect(keyOf('boom'), 'the failed step, then its retry').toEqual(['b', 'b']);
    expect([...keyOf('stopped-0'), ...keyOf('stopped-1'), ...keyOf('handled-1'), ...keyOf('handled-2')]).toEqual(['s', 's#2', 'h', 'h#2']);
  });

  it('a step its machine stops while the engine drains is over: the next execution at its path gets a new key', async () => {
    const store = await sharedStore(kind);
    const keys = ledger();
    const work = step(
      async ({ input, idempotencyKey, signal }: { input: { exec: string; ms: number }; idempotencyKey: string; signal: AbortSignal }) => {
        keys.add(input.exec, idempotencyKey);
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(resolve, input.ms);
          signal.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason as Error)), { once: true });
        });
        return 1;
      },
    );
    const machine = setup({ actors: { work } }).createMachine({
      initial: 'a',
      states: {
        // The timer starts once the test saw the step run: started earlier, on a loaded machine, it could
        // stop the step before it ran.
        a: { entry: spawnChild('work', { id: 'x', input: { exec: 'first', ms: 5_000 } }), on: { started: 'a2' } },
        a2: { after: { 300: { target: 'b', actions: stopChild('x') } } },
        b: { on: { go: 'c' } },
        c: { entry: spawnChild('work', { id: 'x', input: { exec: 'second', ms: 10 } }), on: { 'xstate.done.actor.x': 'done' } },
        done: { type: 'final' },
      },
    });
    const workflow = defineWorkflow({ name: 'test.keys-drain', machine, input: z.object({}) });
    const first = createEngine({ database: store.db, workflows: [workflow], logger: silentLogger });
    await first.startWorker();
    const runId = await first.start(workflow, {});
    await until('the first execution started', () => keys.entries.length === 1);
    const started = await first.send(runId, { type: 'started' }, { waitMs: 20_000 });
    expect(started.outcome, 'the run took "started"').toBe('received');
    // Drains: the step runs on, and the machine's 300 ms timer stops it meanwhile.
    await first.stop();
    expect((await first.get(runId)).state, 'the state the stop was made in').toBe('b');
    const second = createEngine({ database: store.db, workflows: [workflow], logger: silentLogger });
    cleanups.push(() => second.stop());
    await second.startWorker();
    await second.send(runId, { type: 'go' });
    expect((await second.waitFor(runId, { timeoutMs: 30_000 })).status).toBe('succeeded');
    expect(keys.entries.map((e) => [e.exec, e.key.slice(runId.length + 1)])).toEqual([
      ['first', 'x'],
      ['second', 'x#2'],
    ]);
  });

  it('a step id holding # never shares a key with another path’s execution', async () => {
    const keys = ledger();
    const work = recording(keys);
    const machine = setup({ actors: { work } }).createMachine({
      initial: 'a',
      states: {
        a: { invoke: { id: 'x', src: 'work', input: { exec: 'x first' }, onDone: 'b' } },
        b: { invoke: { id: 'x', src: 'work', input: { exec: 'x second' }, onDone: 'c' } },
        c: { invoke: { id: 'x#2', src: 'work', input: { exec: 'x#2 first' }, onDone: 'd' } },
        d: { invoke: { id: 'x#2', src: 'work', input: { exec: 'x#2 second' }, onDone: 'done' } },
        done: { type: 'final' },
      },
    });
    const { engine, runId } = await startRun(kind, 'test.keys-hash', machine);
    expect((await engine.waitFor(runId, { timeoutMs: 30_000 })).status).toBe('succeeded');
    expect(keys.shared(), 'keys given to two executions').toEqual([]);
    expect(keys.entries.map((e) => e.key.slice(runId.length + 1))).toEqual(['x', 'x#2', 'x#2#1', 'x#2#2']);
  });

  it('a step id holding / never shares a path or key with a step of a child machine', async () => {
    const keys = ledger();
    const work = recording(keys);
    const child = setup({ actors: { work } }).createMachine({
      initial: 'run',
      states: { run: { invoke: { id: 'b', src: 'work', input: { exec: 'b in child a' }, onDone: 'done' } }, done: { type: 'final' } },
    });
    const machine = setup({ actors: { work, child } }).createMachine({
      initial: 'root',
      states: {
        root: { invoke: { id: 'a/b', src: 'work', input: { exec: 'a/b at the root' }, onDone: 'nested' } },
        nested: { invoke: { id: 'a', src: 'child', onDone: 'percent' } },
        // An id spelling the escape of "/" is a third path.
        percent: { invoke: { id: 'a%2Fb', src: 'work', input: { exec: 'a%2Fb at the root' }, onDone: 'done' } },
        done: { type: 'final' },
      },
    });
    const { engine, runId } = await startRun(kind, 'test.keys-slash', machine);
    expect((await engine.waitFor(runId, { timeoutMs: 30_000 })).status).toBe('succeeded');
    expect(keys.shared(), 'keys given to two executions').toEqual([]);
    expect(keys.entries.map((e) => e.key.slice(runId.length + 1))).toEqual(['a%2Fb', 'a/b', 'a%252Fb']);
    const started = (await engine.history(runId)).filter((h) => h.type === 'step.started').map((h) => h.path);
    expect(started, 'paths of the started steps').toEqual(['a%2Fb', 'a/b', 'a%252Fb']);
  });

  it('a delayed event inside a child whose id holds / fires after the run moves to a new engine', async () => {
    const keys = ledger();
    const store = await sharedStore(kind);
    const work = recording(keys);
    const child = setup({ actors: { work } }).createMachine({
      initial: 'waiting',
      states: {
        waiting: { after: { 300: 'run' } },
        run: { invoke: { id: 's', src: 'work', input: { exec: 'after the delay' }, onDone: 'done' } },
        done: { type: 'final' },
      },
    });
    const machine = setup({ actors: { child } }).createMachine({
      initial: 'nested',
      states: { nested: { invoke: { id: 'c/d', src: 'child', onDone: 'done' } }, done: { type: 'final' } },
    });
    const workflow = defineWorkflow({ name: 'test.keys-slash-timer', machine, input: z.object({}) });
    const first = createEngine({ database: store.db, workflows: [workflow], logger: silentLogger });
    await first.startWorker();
    const runId = await first.start(workflow, {});
    await first.stop();
    const second = createEngine({ database: store.db, workflows: [workflow], logger: silentLogger });
    cleanups.push(() => second.stop());
    await second.startWorker();
    expect((await second.waitFor(runId, { timeoutMs: 30_000 })).status, 'the run, its timer re-armed by path').toBe('succeeded');
    expect(keys.entries.map((e) => e.key.slice(runId.length + 1))).toEqual(['c%2Fd/s']);
  });

  it('a child with the empty id is not the root: its delayed event reaches it after the run moves to a new engine', async () => {
    const keys = ledger();
    const store = await sharedStore(kind);
    const work = recording(keys);
    const child = setup({ actors: { work } }).createMachine({
      initial: 'idle',
      states: {
        idle: { on: { PING: 'run' } },
        run: { invoke: { id: 's', src: 'work', input: { exec: 's in the child' }, onDone: 'done' } },
        done: { type: 'final' },
      },
    });
    const machine = setup({ actors: { child } }).createMachine({
      initial: 'nested',
      states: {
        nested: {
          invoke: { id: '', src: 'child', onDone: 'done' },
          initial: 'armed',
          // A child state's entry runs once the invoked child exists (as in plain XState).
          states: { armed: { entry: sendTo('', { type: 'PING' }, { delay: 300 }) } },
          // Sent to the root instead, the event ends the run at once rather than leaving it waiting.
          on: { PING: 'misdelivered' },
        },
        done: { type: 'final' },
        misdelivered: { type: 'final' },
      },
    });
    const workflow = defineWorkflow({ name: 'test.keys-empty-id', machine, input: z.object({}) });
    const first = createEngine({ database: store.db, workflows: [workflow], logger: silentLogger });
    await first.startWorker();
    const runId = await first.start(workflow, {});
    await first.stop();
    const second = createEngine({ database: store.db, workflows: [workflow], logger: silentLogger });
    cleanups.push(() => second.stop());
    await second.startWorker();
    const run = await second.waitFor(runId, { timeoutMs: 15_000 });
    expect([run.status, run.state], 'the run, its timer re-armed to the child').toEqual(['succeeded', 'done']);
    expect(keys.entries.map((e) => `${e.exec}: ${e.key.slice(runId.length + 1)}`)).toEqual(['s in the child: %/s']);
  });

  it('step ids named like what every object inherits (constructor, toString) get keys of their own', async () => {
    const keys = ledger();
    const work = recording(keys);
    const machine = setup({ types: {} as { context: { n: number } }, actors: { work } }).createMachine({
      context: { n: 0 },
      initial: 'a',
      states: {
        a: {
          invoke: { id: 'constructor', src: 'work', input: ({ context }) => ({ exec: `constructor ${context.n}` }), onDone: 'b' },
        },
        b: {
          invoke: {
            id: 'toString',
            src: 'work',
            input: ({ context }) => ({ exec: `toString ${context.n}` }),
            onDone: { target: 'check', actions: assign({ n: ({ context }) => context.n + 1 }) },
          },
        },
        check: { always: [{ guard: ({ context }) => context.n < 3, target: 'a' }, { target: 'done' }] },
        done: { type: 'final' },
      },
    });
    const { engine, runId } = await startRun(kind, 'test.keys-inherited-names', machine);
    expect((await engine.waitFor(runId, { timeoutMs: 30_000 })).status).toBe('succeeded');
    expect(keys.shared(), 'keys given to two executions').toEqual([]);
    expect(keys.entries.map((e) => e.key.slice(runId.length + 1))).toEqual([
      'constructor',
      'toString',
      'constructor#2',
      'toString#2',
      'constructor#3',
      'toString#3',
    ]);
    expect(Object.prototype.hasOwnProperty.call(Object, 'attempt'), 'a step record written onto the global Object').toBe(false);
  });

  it('a child machine replaced by its parent while its own step finishes: the new step runs under a new key, not refused', async () => {
    const keys = ledger();
    const long = step(
      async ({ input, idempotencyKey, signal }: { input: { exec: string }; idempotencyKey: string; signal: AbortSignal }) => {
        keys.add(input.exec, idempotencyKey);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 300);
          signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
        });
        return 1;
      },
    );
    const quick = step(async ({ input, idempotencyKey }: { input: { exec: string }; idempotencyKey: string }) => {
      keys.add(input.exec, idempotencyKey);
      return 1;
    });
    const child = setup({ types: {} as { input: { round: number } }, actors: { long, quick } }).createMachine({
      context: ({ input }) => ({ round: input.round }),
      initial: 'run',
      states: {
        run: {
          invoke: [
            { id: 'x', src: 'long', input: ({ context }) => ({ exec: `x of child ${context.round}` }), onDone: 'fin' },
            // Its parent replaces this machine while the machine itself handles y's completion.
            {
              id: 'y',
              src: 'quick',
              input: ({ context }) => ({ exec: `y of child ${context.round}` }),
              onDone: { actions: sendParent({ type: 'RESTART' }) },
            },
          ],
        },
        fin: { type: 'final' },
      },
    });
    const machine = setup({ types: {} as { context: { n: number } }, actors: { child } }).createMachine({
      context: { n: 0 },
      initial: 'work',
      states: {
        work: {
          invoke: { id: 'c', src: 'child', input: ({ context }) => ({ round: context.n }), onDone: 'done' },
          on: {
            RESTART: {
              guard: ({ context }) => context.n < 1,
              target: 'work',
              reenter: true,
              actions: assign({ n: ({ context }) => context.n + 1 }),
            },
          },
        },
        done: { type: 'final' },
      },
    });
    const { engine, runId } = await startRun(kind, 'test.keys-replaced-child', machine);
    const run = await engine.waitFor(runId, { timeoutMs: 30_000 });
    expect([run.status, run.error?.message ?? ''], 'the run (plain XState finishes it)').toEqual(['succeeded', '']);
    expect(keys.shared(), 'keys given to two executions').toEqual([]);
    expect(new Set(keys.entries.map((e) => `${e.exec}: ${e.key.slice(runId.length + 1)}`))).toEqual(
      new Set(['x of child 0: c/x', 'y of child 0: c/y', 'x of child 1: c/x#2', 'y of child 1: c/y#2']),
    );
  });

  it('a stopped step that sleeps anyway is refused the sleep, and the next execution at its path keeps its own', async () => {
    const keys = ledger();
    const outcomes: string[] = [];
    const gate = () => {
      let open!: () => void;
      const opened = new Promise<void>((resolve) => (open = resolve));
      return { open, opened };
    };
    const zombie = gate();
    const second = gate();
    const work = step(
      async ({ input, idempotencyKey, sleep }: { input: { n: number }; idempotencyKey: string; sleep(ms: number): Promise<void> }) => {
        keys.add(`execution ${input.n}`, idempotencyKey);
        if (input.n === 0) {
          await zombie.opened; // ignores its abort signal
          await sleep(50).then(
            () => outcomes.push('the stopped execution slept'),
            (err: Error) => outcomes.push(`the stopped execution's sleep threw: ${err.name}`),
          );
          return 'first';
        }
        await second.opened;
        await sleep(600_000);
        return 'second';
      },
    );
    const machine = setup({ types: {} as { context: { n: number } }, actors: { work } }).createMachine({
      context: { n: 0 },
      initial: 'a',
      states: {
        a: {
          invoke: { id: 'x', src: 'work', input: ({ context }) => ({ n: context.n }), onDone: 'done' },
          on: { NEXT: { target: 'a', reenter: true, actions: assign({ n: ({ context }) => context.n + 1 }) } },
        },
        done: { type: 'final' },
      },
    });
    const { engine, runId } = await startRun(kind, 'test.keys-stopped-sleep', machine);
    await until('the first execution started', () => keys.entries.length === 1);
    await engine.send(runId, { type: 'NEXT' });
    await until('the second execution started', () => keys.entries.length === 2);
    // The stopped execution sleeps while the second runs, before the second's own sleep.
    zombie.open();
    await until('the stopped execution tried to sleep', () => outcomes.length === 1);
    expect(outcomes).toEqual(["the stopped execution's sleep threw: AbortError"]);
    second.open();
    const sleeps = async () => (await engine.history(runId)).filter((h) => h.type === 'step.sleeping');
    await until('the second execution sleeps', async () => (await sleeps()).length > 0);
    const recorded = (await sleeps()).map((h) => Date.parse((h.data as { until: string }).until) - Date.now());
    expect(recorded.length, 'sleeps recorded').toBe(1);
    expect(recorded[0], 'ms left of the one sleep recorded: the second execution’s ten minutes').toBeGreaterThan(300_000);
    expect((await engine.get(runId)).status, 'the run while the second execution sleeps').not.toBe('succeeded');
    expect(keys.entries.map((e) => `${e.exec}: ${e.key.slice(runId.length + 1)}`)).toEqual(['execution 0: x', 'execution 1: x#2']);
    await engine.cancel(runId);
  });

  it('offloaded outputs are named like their executions: x#2’s first and x’s second are two artifacts', async () => {
    const store = await sharedStore(kind);
    const work = step(async ({ input }: { input: { exec: string } }) => ({ exec: input.exec, pad: 'x'.repeat(500) }));
    const machine = setup({ types: {} as { context: Record<string, unknown> }, actors: { work } }).createMachine({
      context: {},
      initial: 'a',
      states: {
        a: {
          invoke: {
            id: 'x#2',
            src: 'work',
            input: { exec: 'x#2 first' },
            onDone: { target: 'b', actions: assign({ a: ({ event }) => event.output }) },
          },
        },
        b: {
          invoke: {
            id: 'x',
            src: 'work',
            input: { exec: 'x first' },
            onDone: { target: 'c', actions: assign({ b: ({ event }) => event.output }) },
          },
        },
        c: {
          invoke: {
            id: 'x',
            src: 'work',
            input: { exec: 'x second' },
            onDone: { target: 'done', actions: assign({ c: ({ event }) => event.output }) },
          },
        },
        done: { type: 'final' },
      },
      output: ({ context }) => context,
    });
    const workflow = defineWorkflow({ name: 'test.keys-offloaded', machine, input: z.object({}) });
    const engine = createEngine({
      database: store.db,
      workflows: [workflow],
      logger: silentLogger,
      limits: { stepOutputInlineBytes: 100 },
    });
    cleanups.push(() => engine.stop());
    await engine.startWorker();
    const runId = await engine.start(workflow, {});
    const run = await engine.waitFor(runId, { timeoutMs: 30_000 });
    expect(run.status).toBe('succeeded');
    const refs = run.output as Record<string, { $artifact: string }>;
    const read: Record<string, string> = {};
    for (const k of ['a', 'b', 'c']) {
      const ref = refs[k] as { $artifact: string };
      read[`${k} ${ref.$artifact}`] = ((await engine.getArtifact(runId, ref.$artifact)) as { exec: string }).exec;
    }
    expect(read).toEqual({
      'a step-output/x#2#1': 'x#2 first',
      'b step-output/x': 'x first',
      'c step-output/x#2': 'x second',
    });
  });

  it('a step spawned under the id of one that still runs is refused before its work starts', async () => {
    const keys = ledger();
    const work = step(async ({ input, idempotencyKey }: { input: { exec: string }; idempotencyKey: string }) => {
      keys.add(input.exec, idempotencyKey);
      await new Promise((resolve) => setTimeout(resolve, 200));
      return input.exec;
    });
    const machine = setup({
      types: {} as { context: { refused: string[]; got: string[] } },
      actors: { work },
    }).createMachine({
      context: { refused: [], got: [] },
      initial: 'go',
      states: {
        go: {
          entry: [spawnChild('work', { id: 'x', input: { exec: 'first' } }), spawnChild('work', { id: 'x', input: { exec: 'second' } })],
          on: {
            'xstate.error.actor.x': {
              actions: assign({ refused: ({ context, event }) => [...context.refused, (event.error as { code?: string }).code ?? '?'] }),
            },
            'xstate.done.actor.x': {
              target: 'done',
              actions: assign({ got: ({ context, event }) => [...context.got, String(event.output)] }),
            },
          },
        },
        done: { type: 'final' },
      },
      output: ({ context }) => context,
    });
    const { engine, runId } = await startRun(kind, 'test.keys-duplicate-id', machine);
    const run = await engine.waitFor(runId, { timeoutMs: 30_000 });
    expect(run.status).toBe('succeeded');
    // XState starts the two in its own order: whichever starts second is refused.
    const ran = keys.entries.map((e) => `${e.exec}: ${e.key.slice(runId.length + 1)}`);
    expect(ran.length, `executions that ran: ${ran.join(', ')}`).toBe(1);
    expect(ran[0]).toMatch(/^(first|second): x$/);
    expect(run.output, 'one spawn refused, the other finished').toEqual({ refused: ['DUPLICATE_ACTOR_ID'], got: [keys.entries[0]?.exec] });
  });

  it.each(['its onDone action throws', 'a parallel step fails as it finishes'] as const)(
    'a step that finished before the run failed (%s) runs again after engine.retry under its own key',
    async (how) => {
      const keys = ledger();
      let failOnce = true;
      let open!: () => void;
      const gate = new Promise<void>((resolve) => (open = resolve));
      const work = step(
        async ({ input, idempotencyKey }: { input: { exec: string }; idempotencyKey: string }) => {
          keys.add(input.exec, idempotencyKey);
          if (how !== 'its onDone action throws') await gate;
          if (input.exec === 'Y' && failOnce) {
            failOnce = false;
            throw new Error('Y fails');
          }
          return 1;
        },
        { retry: { maxAttempts: 1 } },
      );
      const throwOnce = () => {
        if (!failOnce) return;
        failOnce = false;
        throw new Error('the action throws');
      };
      const machine =
        how === 'its onDone action throws'
          ? setup({ actors: { work } }).createMachine({
              initial: 'a',
              states: {
                a: { invoke: { id: 'X', src: 'work', input: { exec: 'X' }, onDone: { target: 'done', actions: throwOnce } } },
                done: { type: 'final' },
              },
            })
          : setup({ actors: { work } }).createMachine({
              type: 'parallel',
              states: {
                r1: {
                  initial: 'a',
                  states: { a: { invoke: { id: 'X', src: 'work', input: { exec: 'X' }, onDone: 'done' } }, done: { type: 'final' } },
                },
                r2: {
                  initial: 'a',
                  states: { a: { invoke: { id: 'Y', src: 'work', input: { exec: 'Y' }, onDone: 'done' } }, done: { type: 'final' } },
                },
              },
            });
      // A name per case: the first case's engine still runs on the shared store and would claim this run.
      const name = how === 'its onDone action throws' ? 'test.keys-finished-action' : 'test.keys-finished-parallel';
      const { engine, runId } = await startRun(kind, name, machine);
      // Both parallel steps have started (their starts are durable) before either settles.
      while (keys.entries.length < (how === 'its onDone action throws' ? 1 : 2)) await new Promise((resolve) => setTimeout(resolve, 10));
      open();
      expect((await engine.waitFor(runId, { timeoutMs: 30_000 })).status).toBe('failed');
      await engine.retry(runId);
      expect((await engine.waitFor(runId, { timeoutMs: 30_000 })).status).toBe('succeeded');
      const keysOf = (exec: string) => new Set(keys.entries.filter((e) => e.exec === exec).map((e) => e.key.slice(runId.length + 1)));
      expect(keysOf('X'), 'keys of the step that had finished').toEqual(new Set(['X']));
      expect(keys.shared(), 'keys given to two executions').toEqual([]);
    },
  );

  it('a stopped step that finishes anyway leaves the next execution at its path its key', async () => {
    const keys = ledger();
    const work = step(
      async ({ input, idempotencyKey, attempt }: { input: { exec: string }; idempotencyKey: string; attempt: number }) => {
        keys.add(`${input.exec} attempt ${attempt}`, idempotencyKey);
        // E1 ignores its abort signal and finishes after its machine stopped it; E2's first attempt fails
        // after that, and its second runs.
        if (input.exec === 'E1') return new Promise<number>((resolve) => setTimeout(() => resolve(1), 800));
        if (attempt === 1)
          await new Promise((resolve) => setTimeout(resolve, 1_500)).then(() => Promise.reject(new Error('E2 fails once')));
        return 2;
      },
      { retry: { maxAttempts: 3, initialDelayMs: 50, maxDelayMs: 50, jitter: 0, retryOn: ['transient', 'permanent'] } },
    );
    const machine = setup({ actors: { work } }).createMachine({
      initial: 'a',
      states: {
        a: { invoke: { id: 'x', src: 'work', input: { exec: 'E1' } }, on: { go: 'b' } },
        b: { invoke: { id: 'x', src: 'work', input: { exec: 'E2' }, onDone: 'done' } },
        done: { type: 'final' },
      },
    });
    const { engine, runId } = await startRun(kind, 'test.keys-late', machine);
    await until('E1 started', () => keys.entries.length === 1);
    await engine.send(runId, { type: 'go' });
    expect((await engine.waitFor(runId, { timeoutMs: 30_000 })).status).toBe('succeeded');
    expect(keys.entries.map((e) => [e.exec, e.key.slice(runId.length + 1)])).toEqual([
      ['E1 attempt 1', 'x'],
      ['E2 attempt 1', 'x#2'],
      ['E2 attempt 2', 'x#2'],
    ]);
  });
  it('a stopped step whose large output is being saved leaves the next execution at its path its key', async () => {
    const store = await sharedStore(kind);
    let openSave!: () => void;
    const saveHeld = new Promise<void>((resolve) => (openSave = resolve));
    let saving = false;
    // The first execution's output is offloaded to an artifact; that insert waits until the test says.
    const db: Database = {
      kind: store.db.kind,
      description: store.db.description,
      query: async (text, params, options) => {
        if (/insert into rmapp_run_artifacts/.test(text) && !saving) {
          saving = true;
          await saveHeld;
        }
        return store.db.query(text, params, options);
      },
      script: (list) => store.db.script(list),
      listen: (channel, fn, options) => store.db.listen(channel, fn, options),
      close: () => store.db.close(),
    };
    const keys = ledger();
    const work = step(
      async ({ input, idempotencyKey, attempt }: { input: { exec: string }; idempotencyKey: string; attempt: number }) => {
        keys.add(`${input.exec} attempt ${attempt}`, idempotencyKey);
        if (input.exec === 'E1') return { pad: 'x'.repeat(2_000) };
        if (attempt === 1) {
          openSave();
          await new Promise((resolve) => setTimeout(resolve, 300));
          throw new Error('E2 fails once');
        }
        return 2;
      },
      { retry: { maxAttempts: 3, initialDelayMs: 50, maxDelayMs: 50, jitter: 0, retryOn: ['transient', 'permanent'] } },
    );
    const machine = setup({ actors: { work } }).createMachine({
      initial: 'a',
      states: {
        a: { invoke: { id: 'x', src: 'work', input: { exec: 'E1' }, onDone: 'done' }, on: { NEXT: 'b' } },
        b: { invoke: { id: 'x', src: 'work', input: { exec: 'E2' }, onDone: 'done' } },
        done: { type: 'final' },
      },
    });
    const workflow = defineWorkflow({ name: 'test.keys-offload-race', machine, input: z.object({}) });
    const engine = createEngine({ database: db, workflows: [workflow], logger: silentLogger, limits: { stepOutputInlineBytes: 100 } });
    cleanups.push(() => engine.stop());
    await engine.startWorker();
    const runId = await engine.start(workflow, {});
    while (!saving) await new Promise((resolve) => setTimeout(resolve, 10));
    await engine.send(runId, { type: 'NEXT' });
    expect((await engine.waitFor(runId, { timeoutMs: 30_000 })).status).toBe('succeeded');
    expect(keys.entries.map((e) => [e.exec, e.key.slice(runId.length + 1)])).toEqual([
      ['E1 attempt 1', 'x'],
      ['E2 attempt 1', 'x#2'],
      ['E2 attempt 2', 'x#2'],
    ]);
  });
  it('a step spawned in a later turn under the id of one still running is refused, and the first keeps its signal', async () => {
    const keys = ledger();
    const ended: string[] = [];
    // The first execution runs until the test has seen the run take AGAIN.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const work = step(
      async ({ input, idempotencyKey, signal }: { input: { exec: string }; idempotencyKey: string; signal: AbortSignal }) => {
        keys.add(input.exec, idempotencyKey);
        await released;
        ended.push(`${input.exec} ended, aborted: ${signal.aborted}`);
        return input.exec;
      },
    );
    const machine = setup({ types: {} as { context: { refused: string[]; got: string[] } }, actors: { work } }).createMachine({
      context: { refused: [], got: [] },
      initial: 'go',
      states: {
        go: {
          entry: spawnChild('work', { id: 'x', input: { exec: 'first' } }),
          on: {
            AGAIN: { actions: spawnChild('work', { id: 'x', input: { exec: 'second' } }) },
            'xstate.error.actor.x': {
              actions: assign({ refused: ({ context, event }) => [...context.refused, (event.error as { code?: string }).code ?? '?'] }),
            },
            'xstate.done.actor.x': {
              target: 'done',
              actions: assign({ got: ({ context, event }) => [...context.got, String(event.output)] }),
            },
          },
        },
        done: { type: 'final' },
      },
      output: ({ context }) => context,
    });
    const { engine, runId } = await startRun(kind, 'test.keys-duplicate-later', machine);
    await until('the first execution started', () => keys.entries.length === 1);
    expect((await engine.send(runId, { type: 'AGAIN' }, { waitMs: 20_000 })).outcome, 'the run took AGAIN').toBe('received');
    release();
    const run = await engine.waitFor(runId, { timeoutMs: 30_000 });
    expect(run.output, 'the later spawn refused, the first finished').toEqual({ refused: ['DUPLICATE_ACTOR_ID'], got: ['first'] });
    expect(keys.entries.map((e) => `${e.exec}: ${e.key.slice(runId.length + 1)}`)).toEqual(['first: x']);
    expect(ended).toEqual(['first ended, aborted: false']);
  });

  it('a draining engine waits for the newest execution at a path even when a stopped older one ends first', async () => {
    const store = await sharedStore(kind);
    const runs: string[] = [];
    const work = step(async ({ input, idempotencyKey, signal }: { input: { n: number }; idempotencyKey: string; signal: AbortSignal }) => {
      runs.push(`execution ${input.n}: ${idempotencyKey.slice(idempotencyKey.indexOf('/') + 1)}`);
      // The first ignores its abort signal; the second works for a while (and stops if aborted).
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, input.n === 0 ? 300 : 1_500);
        if (input.n > 0) signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
      });
      if (signal.aborted && input.n > 0) throw new Error('aborted');
      return input.n;
    });
    const machine = setup({ types: {} as { context: { n: number } }, actors: { work } }).createMachine({
      context: { n: 0 },
      initial: 'a',
      states: {
        a: {
          invoke: { id: 'x', src: 'work', input: ({ context }) => ({ n: context.n }), onDone: 'done' },
          on: { GO: { target: 'a', reenter: true, actions: assign({ n: ({ context }) => context.n + 1 }) } },
        },
        done: { type: 'final' },
      },
    });
    const workflow = defineWorkflow({ name: 'test.keys-drain-newest', machine, input: z.object({}) });
    const first = createEngine({ database: store.db, workflows: [workflow], logger: silentLogger });
    await first.startWorker();
    const runId = await first.start(workflow, {});
    while (runs.length < 1) await new Promise((resolve) => setTimeout(resolve, 10));
    await first.send(runId, { type: 'GO' });
    while (runs.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    await first.stop({ graceMs: 10_000 });
    const second = createEngine({ database: store.db, workflows: [workflow], logger: silentLogger });
    cleanups.push(() => second.stop());
    await second.startWorker();
    expect((await second.waitFor(runId, { timeoutMs: 30_000 })).status).toBe('succeeded');
    expect(runs, 'executions (the second must not run again after the drain)').toEqual(['execution 0: x', 'execution 1: x#2']);
  });
});
