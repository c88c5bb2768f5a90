/**
 * The input of a child persisted while it runs — a step, a promise, a callback or an observable — is
 * what a restore gives it again (docs/xstate-semantics.md, "Resume semantics"): a `Date` there would
 * reach a re-executed step as a string. It is refused as a context's is (docs/xstate-semantics.md,
 * "Refused"), before the step's work starts: the first write that carries it fails the run with
 * `UNDURABLE_SNAPSHOT`, naming the path and the fix.
 */
import { expect, it } from 'vitest';
import { assign, setup } from 'xstate';
import { z } from 'zod';
import { defineWorkflow, step } from '../src/index.ts';
import { createTestKit } from '../src/state_machine/testing/test-kit.ts';

it("a step invoked with a Date in its input is refused before its work, naming the input's path", async () => {
  let ran = 0;
  const since = step(async ({ input }: { input: { since: Date } }) => {
    ran++;
    return input.since.getTime();
  });
  const machine = setup({ actors: { since } }).createMachine({
    context: { ms: 0 },
    initial: 'a',
    states: {
      a: {
        invoke: {
          id: 'p',
          src: 'since',
          input: () => ({ since: new Date(5) }),
          onDone: { target: 'b', actions: assign({ ms: ({ event }) => event.output }) },
        },
      },
      b: { type: 'final' },
    },
  });
  const def = defineWorkflow({ name: 'h219.child-input', machine, input: z.object({}) });
  const kit = await createTestKit({ workflows: [def] });
  try {
    const id = await kit.engine.start(def, {});
    const run = await kit.engine.waitFor(id, { timeoutMs: 10_000 });
    expect(run.status, 'the run is refused, not left to meet a string after a restore').toBe('failed');
    expect(run.error?.code).toBe('UNDURABLE_SNAPSHOT');
    expect(run.error?.message).toMatch(/^children\.p\.input\.since is a Date: .*toISOString/);
    expect(ran, "the step's work never started").toBe(0);
  } finally {
    await kit.close();
  }
}, 60_000);
