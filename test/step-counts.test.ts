/**
 * A run that loops over items, a step per item under the item's id, keeps every path's count of
 * finished executions (it makes the next execution's idempotency key new) without writing them all at
 * every commit: finished paths move from `rmapp_runs.steps` to `steps_done` a batch at a time
 * (src/state_machine/step-book.ts). What must hold whatever moved where: each execution's key is new,
 * across a new engine restoring the run from its row, and across a moving write whose reply was lost
 * or that failed before it was sent.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { assign, setup, spawnChild, stopChild } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, silentLogger, step, type Database } from '../src/index.ts';
import { openTestStore } from './helpers/postgres.ts';

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

const ITEMS = 200;

type How = 'succeeded' | 'stopped' | 'failed';

/**
 * Two passes over `n` items, the same ids each pass, with a wait for `again` between them. Each item's
 * step succeeds, or never finishes and is stopped by its machine after 20 ms (`stopped`), or fails at
 * once and the machine handles the failure (`failed`); the machine then goes on to the next item.
 */
function loopWorkflow(keys: string[], how: How = 'succeeded') {
  const work = step(
    async ({ input, idempotencyKey, signal }: { input: { i: number }; idempotencyKey: string; signal: AbortSignal }) => {
      keys.push(idempotencyKey);
      if (how === 'failed') throw new Error('this item fails');
      if (how === 'stopped')
        return new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error)));
      return input.i;
    },
    { retry: { maxAttempts: 1 } },
  );
  type Context = { i: number; n: number; pass: number };
  const item = ({ context }: { context: Context }) => `item-${context.i}`;
  const onward = { target: 'next', actions: [stopChild(item), assign({ i: ({ context }: { context: Context }) => context.i + 1 })] };
  const machine = setup({ types: {} as { context: Context; input: { n: number } }, actors: { work } }).createMachine({
    id: 'loop',
    context: ({ input }) => ({ i: 0, n: input.n, pass: 1 }),
    initial: 'next',
    states: {
      next: {
        always: [
          { guard: ({ context }) => context.i < context.n, target: 'working' },
          { guard: ({ context }) => context.pass === 1, target: 'between' },
          { target: 'done' },
        ],
      },
      working: {
        entry: spawnChild('work', { id: item, input: ({ context }) => ({ i: context.i }) }),
        // Typed loosely: one transition object shared by three kinds of trigger.
        ...((how === 'stopped'
          ? { after: { 20: onward } }
          : { on: { [how === 'failed' ? 'xstate.error.actor.*' : 'xstate.done.actor.*']: onward } }) as object),
      },
      between: { on: { again: { target: 'next', actions: assign({ i: 0, pass: 2 }) } } },
      done: { type: 'final' },
    },
  });
  return defineWorkflow({ name: `test.step-counts-${how}`, machine, input: z.object({ n: z.number() }) });
}

/** The run row's step columns: records in `steps`, counts moved to `steps_done`. */
async function stepColumns(db: Database, runId: string) {
  const [row] = await db.query<{ steps: Record<string, unknown>; steps_done: Record<string, number> | null }>(
    'select steps, steps_done from rmapp_runs where id = $1',
    [runId],
  );
  return row as { steps: Record<string, unknown>; steps_done: Record<string, number> | null };
}

/** Every path's count of finished executions, as a new session reads them (an entry of `steps` wins). */
function countsOf(c: { steps: Record<string, unknown>; steps_done: Record<string, number> | null }): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...c.steps_done };
  for (const [path, r] of Object.entries(c.steps)) merged[path] = typeof r === 'number' ? r : (r as { done: number }).done;
  return merged;
}

async function waitUntil(what: string, ok: () => Promise<boolean>): Promise<void> {
  const until = Date.now() + 60_000;
  while (!(await ok())) {
    if (Date.now() > until) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe.each(['postgres', 'pglite'] as const)('step counts of a long loop (%s)', (kind) => {
  it(
    `${ITEMS} items twice: the steps column stays small, and every execution's key is new across a new engine`,
    { timeout: 120_000 },
    async () => {
      const store = await openTestStore(kind);
      cleanups.push(() => store.close());
      const keys: string[] = [];
      const workflow = loopWorkflow(keys);
      const first = createEngine({ database: store.db, workflows: [workflow], logger: silentLogger });
      await first.startWorker();
      const runId = await first.start(workflow, { n: ITEMS });
      await waitUntil('the first pass is done', async () => (await first.get(runId)).state === 'between');
      await first.stop();

      const afterFirst = await stepColumns(store.db, runId);
      expect(Object.keys(afterFirst.steps).length, 'paths the steps column still carries after the first pass').toBeLessThanOrEqual(64);
      expect(Object.keys(afterFirst.steps_done ?? {}).length, 'paths moved to steps_done').toBeGreaterThanOrEqual(ITEMS - 64);
      const firstCounts = countsOf(afterFirst);
      expect(Object.keys(firstCounts)).toHaveLength(ITEMS);
      expect(new Set(Object.values(firstCounts)), 'each path finished once').toEqual(new Set([1]));

      // A new engine restores the run from its row: the counts come from both columns.
      const second = createEngine({ database: store.db, workflows: [workflow], logger: silentLogger });
      cleanups.push(() => second.stop());
      await second.send(runId, { type: 'again' });
      await second.startWorker();
      expect((await second.waitFor(runId, { timeoutMs: 100_000 })).status).toBe('succeeded');

      expect(keys).toHaveLength(2 * ITEMS);
      const repeated = keys.filter((k, i) => keys.indexOf(k) !== i);
      expect(repeated, 'idempotency keys given to two executions').toEqual([]);
      expect(
        keys.slice(ITEMS).filter((k) => !k.endsWith('#2')),
        'second-pass keys that are not the second execution’s',
      ).toEqual([]);
      const last = await stepColumns(store.db, runId);
      expect(new Set(Object.values(countsOf(last))), 'each path finished twice').toEqual(new Set([2]));
      expect(Object.keys(last.steps).length).toBeLessThanOrEqual(64);
    },
  );

  it.each(['its reply lost after it was applied', 'failing before it was sent'] as const)(
    'a write that moves counts %s: the run goes on with every key new',
    { timeout: 120_000 },
    async (fault) => {
      const store = await openTestStore(kind);
      cleanups.push(() => store.close());
      let moving = 0;
      const broken: string[] = [];
      // The first two writes that move counts to steps_done break off like a connection lost mid-statement.
      const db = new Proxy(store.db, {
        get(target, prop, receiver) {
          if (prop !== 'query') return Reflect.get(target, prop, receiver) as unknown;
          return async (sql: string, params?: unknown[]) => {
            const moves = sql.includes('rmapp_commit_runs') && String(params?.[0]).includes('"steps_done":{');
            if (moves) moving += 1;
            const lose = moves && moving <= 2;
            if (lose) broken.push(fault);
            if (lose && fault === 'failing before it was sent')
              throw Object.assign(new Error('injected: connection lost'), { code: 'ECONNRESET' });
            const rows = await target.query(sql, params);
            if (lose) throw Object.assign(new Error('injected: connection lost'), { code: 'ECONNRESET' });
            return rows;
          };
        },
      }) as Database;
      const keys: string[] = [];
      const workflow = loopWorkflow(keys);
      const engine = createEngine({ database: db, workflows: [workflow], logger: silentLogger });
      cleanups.push(() => engine.stop());
      await engine.startWorker();
      const runId = await engine.start(workflow, { n: ITEMS });
      await waitUntil('the first pass is done', async () => (await engine.get(runId)).state === 'between');
      await engine.send(runId, { type: 'again' });
      expect((await engine.waitFor(runId, { timeoutMs: 100_000 })).status).toBe('succeeded');

      expect(broken, 'moving writes broken off').toHaveLength(2);
      expect(moving, 'moving writes sent, the two broken ones included').toBeGreaterThanOrEqual(4);
      expect(keys).toHaveLength(2 * ITEMS);
      expect(
        keys.filter((k, i) => keys.indexOf(k) !== i),
        'idempotency keys given to two executions',
      ).toEqual([]);
      expect(new Set(Object.values(countsOf(await stepColumns(store.db, runId)))), 'each path finished twice').toEqual(new Set([2]));
    },
  );

  it.each(['stopped', 'failed'] as const)(
    'steps that never succeed (%s) move too, and their next executions get new keys',
    { timeout: 120_000 },
    async (how) => {
      const store = await openTestStore(kind);
      cleanups.push(() => store.close());
      const keys: string[] = [];
      const workflow = loopWorkflow(keys, how);
      const engine = createEngine({ database: store.db, workflows: [workflow], logger: silentLogger });
      cleanups.push(() => engine.stop());
      await engine.startWorker();
      const items = 150;
      const runId = await engine.start(workflow, { n: items });
      await waitUntil('the first pass is done', async () => (await engine.get(runId)).state === 'between');
      const afterFirst = await stepColumns(store.db, runId);
      expect(Object.keys(afterFirst.steps_done ?? {}).length, `${how} paths moved to steps_done`).toBeGreaterThanOrEqual(items - 64);
      expect(Object.keys(afterFirst.steps).length).toBeLessThanOrEqual(64);
      await engine.send(runId, { type: 'again' });
      expect((await engine.waitFor(runId, { timeoutMs: 100_000 })).status).toBe('succeeded');
      expect(keys.length, 'executions that started').toBeGreaterThan(items);
      expect(
        keys.filter((k, i) => keys.indexOf(k) !== i),
        'idempotency keys given to two executions',
      ).toEqual([]);
    },
  );
});
