/**
 * A concurrency key function's result that is no key — an empty string (an input field left empty), NaN
 * (`Number('x')`), false — is refused at start, as an object is: such a run was admitted with no limit
 * at all, beside the runs of the key it was meant to queue behind, so an input could opt out of its
 * limit (`limit: 1` per account ran two runs of account "" at once). null or undefined still mean a
 * run that no limit holds, as the key's type says.
 */
import { setup } from 'xstate';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, defineWorkflow, ValidationError, type Engine } from '../src/index.ts';
import { engineDatabaseFor } from './helpers/postgres.ts';

const machine = setup({}).createMachine({
  id: 'held',
  initial: 'open',
  states: { open: { on: { close: 'closed' } }, closed: { type: 'final' } },
});
const byAccount = defineWorkflow({
  name: 'hi.by-account',
  machine,
  input: z.object({ account: z.string() }),
  concurrency: { limit: 1, key: (input) => input.account },
});
const byNumber = defineWorkflow({
  name: 'hi.by-number',
  machine,
  input: z.object({ n: z.string() }),
  concurrency: { limit: 1, key: (input) => Number(input.n) as unknown as string },
});

describe.each(['pglite', 'postgres'] as const)('a concurrency key that is no key is refused (%s)', (kind) => {
  const cleanups: (() => Promise<void>)[] = [];
  let engine: Engine;
  beforeAll(async () => {
    engine = createEngine({ workflows: [byAccount, byNumber], database: await engineDatabaseFor(kind, cleanups) });
    await engine.startWorker();
  });
  afterAll(async () => {
    await engine?.stop();
    for (const c of cleanups.reverse()) await c();
  });

  it.each([
    ['an empty string', () => engine.start(byAccount, { account: '' }), 'an empty string'],
    ['NaN', () => engine.start(byNumber, { n: 'x' }), 'NaN'],
  ])('a key function returning %s', async (what, start, named) => {
    const err = await start().then(
      (id) => new Error(`the start with a key of ${what} was accepted: run ${id}, admitted with no limit`),
      (e: unknown) => e,
    );
    expect(err, (err as Error).message).toBeInstanceOf(ValidationError);
    expect((err as Error).message).toContain(`concurrency.key of workflow`);
    expect((err as Error).message).toContain(`returned ${named}`);
  });

  it('a key is still held to its limit, and nothing was started by the refusals', async () => {
    const first = await engine.start(byAccount, { account: 'a' });
    const second = await engine.start(byAccount, { account: 'a' });
    expect((await engine.get(second)).status, `second run of account "a" (first ${first})`).toBe('pending');
    const runs = await engine.list({ workflow: byAccount.name });
    expect(runs.map((r) => r.input)).toEqual([{ account: 'a' }, { account: 'a' }]);
    expect(await engine.list({ workflow: byNumber.name })).toEqual([]);
  });
});
