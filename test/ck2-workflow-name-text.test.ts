/**
 * A definition registered under a name of its own (`{ ...def, name }`) never passes defineWorkflow's
 * name check. A name Postgres cannot store as given is refused by createEngine: with a NUL each start
 * failed with a database error (a 500 from the HTTP API); two names with different lone surrogates were
 * stored as one (U+FFFD), so the two workflows' runs shared one concurrency limit.
 */
import { describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, ValidationError } from '../src/index.ts';

const machine = setup({}).createMachine({ initial: 'idle', states: { idle: {} } });
const base = defineWorkflow({ name: 'Base', machine, input: z.object({}), concurrency: { limit: 1 } });

function refusal(name: string, version = base.version): unknown {
  try {
    createEngine({ workflows: [{ ...base, name, version }], database: { dataDir: 'memory://' } });
  } catch (err) {
    return err;
  }
  return undefined;
}

describe('createEngine and a spread definition named with text Postgres cannot store', () => {
  const cases: [string, string, string, RegExp][] = [
    ['a lone surrogate in the name', 'a\uD800', base.version, /its name holds a lone UTF-16 surrogate/],
    ['a NUL in the name', 'n\0ul', base.version, /its name holds a NUL character/],
    ['an empty name', '', base.version, /its name is empty/],
    ['a NUL in the version', 'Named', 'v\0', /its version holds a NUL character/],
  ];
  for (const [what, name, version, message] of cases) {
    it(`refuses ${what}`, () => {
      const err = refusal(name, version);
      expect(err, `createEngine with workflow ${JSON.stringify(name)}@${JSON.stringify(version)}`).toBeInstanceOf(ValidationError);
      expect((err as Error).message).toMatch(message);
    });
  }

  it("takes a name defineWorkflow refuses but Postgres stores (':' and '%')", () => {
    expect(refusal('a:b%')).toBeUndefined();
  });
});
