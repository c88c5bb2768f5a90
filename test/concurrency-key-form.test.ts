/**
 * The stored concurrency key (request-checks.ts `checkStart`, concurrency-key.ts) is one text per scope,
 * workflow and key, whatever they contain: no two different (scope, workflow, key) triples store the
 * same text — a global key that reads like `<workflow>:<key>` or like the stored form itself, a
 * workflow's name holding `:` or `%` (a definition built by hand, not by `defineWorkflow`) — and the
 * shown form gives back the key as its workflow gave it. No database: the text is what admission counts by.
 */
import { setup } from 'xstate';
import { z } from 'zod';
import { expect, it } from 'vitest';
import { defineWorkflow, type AnyWorkflowDefinition } from '../src/index.ts';
import { checkStart } from '../src/state_machine/request-checks.ts';
import { shownConcurrencyKey } from '../src/state_machine/concurrency-key.ts';

const machine = setup({}).createMachine({ id: 'm', initial: 'a', states: { a: {} } });
const input = z.object({ key: z.string().nullable() });

type Triple = { scope: 'workflow' | 'global' | 'none'; workflow: string; key: string | null };

function definition(t: Triple): AnyWorkflowDefinition {
  const base = defineWorkflow({ name: 'ck.base', machine, input });
  const concurrency =
    t.scope === 'none' ? { limit: 1 } : { limit: 1, scope: t.scope, key: (i: { key: string | null }) => i.key ?? undefined };
  // Spread, as the GitHub workflows build theirs: the name is not checked against defineWorkflow's pattern.
  return { ...base, name: t.workflow, concurrency } as AnyWorkflowDefinition;
}

const names = ['Deploy', 'Deploy:prod', 'w', 'g', 'a%3Ab', 'a:b', 'Deploy%'];
const keys = ['prod', 'Deploy:prod', 'Deploy', 'w:Deploy:prod', 'g:prod', ':', '%3A', 'b:c'];
const triples: Triple[] = [
  ...names.map((workflow) => ({ scope: 'none' as const, workflow, key: null })),
  ...names.flatMap((workflow) => keys.map((key) => ({ scope: 'workflow' as const, workflow, key }))),
  ...keys.map((key) => ({ scope: 'global' as const, workflow: 'Deploy', key })),
];

function stored(t: Triple): string {
  const checked = checkStart(definition(t), { key: t.key }, {});
  if (!checked.concurrency) throw new Error(`no concurrency key for ${JSON.stringify(t)}`);
  return checked.concurrency.key;
}

it('no two scopes, workflows and keys store the same concurrency key', () => {
  const seen = new Map<string, Triple>();
  const collisions: string[] = [];
  for (const t of triples) {
    const text = stored(t);
    const other = seen.get(text);
    if (other) collisions.push(`${JSON.stringify(t)} and ${JSON.stringify(other)} both store ${JSON.stringify(text)}`);
    seen.set(text, t);
  }
  expect(collisions).toEqual([]);
});

it('a global key from any workflow is one key; the shown key is the one the workflow gave', () => {
  expect(stored({ scope: 'global', workflow: 'Deploy', key: 'issue:o/r#1' })).toBe(
    stored({ scope: 'global', workflow: 'Other', key: 'issue:o/r#1' }),
  );
  for (const t of triples) {
    const shown = shownConcurrencyKey(stored(t));
    const expected =
      t.scope === 'global'
        ? { key: t.key, scope: 'global' }
        : { key: t.key === null ? t.workflow : `${t.workflow}:${t.key}`, scope: 'workflow' };
    expect(shown, JSON.stringify(t)).toEqual(expected);
  }
});
