/**
 * An object without a prototype in context (`Object.create(null)`, `querystring.parse`'s result — a
 * dictionary keyed by data) is written as JSON writes any object, and a restored run reads it back as a
 * plain object: a lookup of a data key such as `constructor` then finds `Object.prototype`'s member,
 * where plain XState finds nothing. docs/xstate-semantics.md lists it ("Known differences", JSON
 * details); this test holds rmapp to what it says there, and shows plain XState's side.
 */
import { expect, it } from 'vitest';
import { assign, setup } from 'xstate';
import { runDurable, runPlain } from './helpers/xs-differential.ts';

const machine = setup({}).createMachine({
  context: () => ({ words: Object.assign(Object.create(null) as Record<string, number>, { hello: 1 }), seen: [] as unknown[] }),
  on: {
    LOOK: {
      actions: assign({
        seen: ({ context, event }) => {
          const word = (event as unknown as { word: string }).word;
          return [...context.seen, [word, typeof context.words[word], Object.hasOwn(context.words, word)]];
        },
      }),
    },
  },
});

it('a null-prototype dictionary is a plain object after a restore: a data key finds Object.prototype, Object.hasOwn does not', async () => {
  const steps = [
    { send: { type: 'LOOK', word: 'constructor' } },
    { restore: true as const },
    { send: { type: 'LOOK', word: 'constructor' } },
  ];
  const plain = await runPlain(
    machine,
    {},
    steps.filter((s) => !('restore' in s)),
  );
  expect(plain.at(-1)!.context, 'plain XState: no prototype, the key is absent').toMatchObject({
    seen: [
      ['constructor', 'undefined', false],
      ['constructor', 'undefined', false],
    ],
  });
  const restored = await runDurable(machine, {}, steps);
  expect(
    restored.at(-1)!.context,
    "rmapp: as documented, Object.prototype's constructor after the restore; Object.hasOwn the same",
  ).toMatchObject({
    seen: [
      ['constructor', 'function', false],
      ['constructor', 'function', false],
    ],
  });
}, 60_000);
