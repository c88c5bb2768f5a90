/**
 * A definition registered with a `concurrency` of its own (`{ ...def, concurrency }`, as the GitHub
 * workflows are) never passes through defineWorkflow's checks: createEngine must refuse what defineWorkflow
 * would. A scope `'Global'` was taken for `workflow` (two workflows meant to share a key each ran one run
 * of it at once), a limit of 0 queued every run for ever, 1.5 failed each start with a database error.
 */
import { describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, ValidationError } from '../src/index.ts';

const machine = setup({}).createMachine({ initial: 'idle', states: { idle: {} } });
const base = defineWorkflow({ name: 'Base', machine, input: z.object({ k: z.string() }) });
const key = (i: { k: string }) => i.k;

const bad: [string, unknown, RegExp][] = [
  [
    'a scope that is neither workflow nor global',
    { limit: 1, scope: 'Global', key },
    /concurrency\.scope must be "workflow" or "global" \(got "Global"\)/,
  ],
  ['a limit of 0', { limit: 0 }, /concurrency\.limit must be a positive integer/],
  ['a limit of 1.5', { limit: 1.5, key }, /concurrency\.limit must be a positive integer/],
  ['a limit that is a string', { limit: '2' }, /concurrency\.limit must be a positive integer/],
  ['a key that is no function', { limit: 1, key: 'issue' }, /concurrency\.key must be a function/],
];

describe('createEngine and a spread definition with its own concurrency', () => {
  for (const [what, concurrency, message] of bad) {
    it(`refuses ${what}, as defineWorkflow does`, () => {
      const spread = { ...base, name: 'Spread', concurrency } as unknown as typeof base;
      let thrown: unknown;
      try {
        createEngine({ workflows: [spread], database: { dataDir: 'memory://' } });
      } catch (err) {
        thrown = err;
      }
      expect(thrown, `createEngine with concurrency ${JSON.stringify(concurrency)}`).toBeInstanceOf(ValidationError);
      expect((thrown as Error).message).toMatch(message);
      expect(
        () => defineWorkflow({ name: 'Defined', machine, input: z.object({ k: z.string() }), concurrency: concurrency as never }),
        `defineWorkflow with ${what}`,
      ).toThrow(message);
    });
  }

  it("takes the GitHub workflows' form: a global scope, a key function, limit 1; and none at all", () => {
    const spread = { ...base, name: 'Spread', concurrency: { limit: 1, scope: 'global' as const, key } };
    const none = { ...base, name: 'None', concurrency: undefined };
    expect(() => createEngine({ workflows: [spread, none], database: { dataDir: 'memory://' } })).not.toThrow();
  });
});
