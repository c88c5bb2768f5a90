/**
 * A run started without input. jsonb holds no `undefined`, so the input is stored as `null`; a machine
 * written for plain XState (`context: ({ input = {} }) => …`) then failed at once on `null`. When the
 * workflow's schema refuses `null` and takes `undefined`, the stored null can only be an absent input,
 * and the machine gets `undefined`; an explicit `null` that the schema allows stays `null`.
 */
import { setup } from 'xstate';
import { z } from 'zod';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, defineWorkflow, type Engine } from '../src/index.ts';

type Input = { count?: number } | null | undefined;
const seen = setup({ types: {} as { input: Input; context: { count: number; input: string } } }).createMachine({
  id: 'seen',
  // Plain XState's idiom for an optional input: a default for `undefined`.
  context: ({ input = {} }) => ({ count: input === null ? -1 : (input.count ?? 0), input: input === null ? 'null' : 'object' }),
  initial: 'done',
  states: { done: { type: 'final' } },
  output: ({ context }) => context,
});
const optional = defineWorkflow({ name: 'input.optional', machine: seen, input: z.object({ count: z.number() }).optional() });
const nullable = defineWorkflow({ name: 'input.nullable', machine: seen, input: z.object({ count: z.number() }).nullable() });

let engine: Engine;
beforeAll(async () => {
  engine = createEngine({ database: { url: '', dataDir: 'memory://' }, workflows: [optional, nullable], pollMs: 20 });
  await engine.startWorker();
}, 60_000);
afterAll(() => engine?.stop({ graceMs: 100 }));

it('no input under a schema that refuses null: the machine gets undefined, as in plain XState', async () => {
  const id = await engine.start(optional, undefined);
  const run = await engine.waitFor(id, { timeoutMs: 20_000 });
  expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
  expect(run.output).toEqual({ count: 0, input: 'object' });
  const given = await engine.waitFor(await engine.start(optional, { count: 3 }), { timeoutMs: 20_000 });
  expect(given.output).toEqual({ count: 3, input: 'object' });
});

it('an explicit null under a schema that takes it stays null', async () => {
  const run = await engine.waitFor(await engine.start(nullable, null), { timeoutMs: 20_000 });
  expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
  expect(run.output).toEqual({ count: -1, input: 'null' });
});
