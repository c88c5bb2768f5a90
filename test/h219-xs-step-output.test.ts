/**
 * A `step()` is an invoked promise (README, "Using the engine"): its output goes to the machine in its
 * done event, as a plain `fromPromise`'s does. A step that returned an object holding a BigInt (a
 * counter from a driver, `process.hrtime.bigint()`) or a cycle failed after its work — rmapp measured the
 * output's size with JSON.stringify, which threw ("Do not know how to serialize a BigInt") — where plain
 * XState delivers it and the machine takes what it needs (`Number(event.output.n)`). What reaches the
 * context is checked as ever (docs/xstate-semantics.md, "Refused").
 */
import { describe, expect, it } from 'vitest';
import { assign, setup } from 'xstate';
import { z } from 'zod';
import { defineWorkflow, step } from '../src/index.ts';
import { createTestKit } from '../src/state_machine/testing/test-kit.ts';
import { describeDifferential, effect, type XsCase } from './helpers/xs-differential.ts';

const counted = step(async ({ input }: { input: { kind: string } }) => {
  effect(`count ${input.kind}`);
  if (input.kind === 'bigint') return { n: 12n, label: 'twelve' };
  const o: Record<string, unknown> = { n: 7, label: 'seven' };
  o.self = o;
  return o;
});

const cases: XsCase[] = ['bigint', 'cycle'].map((kind) => ({
  name: `a step whose output holds a ${kind}`,
  evict: true,
  machine: setup({ actors: { counted } }).createMachine({
    context: { n: 0, label: '' },
    initial: 'idle',
    states: {
      idle: { on: { GO: 'counting' } },
      counting: {
        invoke: {
          id: 'c',
          src: 'counted',
          input: { kind },
          onDone: {
            target: 'counted',
            actions: assign({
              n: ({ event }) => Number((event.output as { n: unknown }).n),
              label: ({ event }) => (event.output as { label: string }).label,
            }),
          },
          onError: { target: 'failed' },
        },
      },
      counted: { on: { AGAIN: 'counting' } },
      failed: {},
    },
  }),
  steps: [{ send: { type: 'GO' } }, { restore: true }, { send: { type: 'AGAIN' } }],
}));

// The step held after it finished (its onDone keeps the state): its output is stored as a held output is.
cases.push({
  name: 'a step whose output holds a BigInt, held',
  evict: true,
  machine: setup({ actors: { counted } }).createMachine({
    context: { n: 0 },
    initial: 'counting',
    states: {
      counting: {
        invoke: {
          id: 'c',
          src: 'counted',
          input: { kind: 'bigint' },
          onDone: { actions: assign({ n: ({ event }) => Number((event.output as { n: unknown }).n) }) },
        },
        on: { NEXT: 'next' },
      },
      next: {},
    },
  }),
  steps: [{ restore: true }, { send: { type: 'NEXT' } }],
});

describeDifferential('h219: a step output JSON cannot write', cases);

describe('h219: a step output JSON cannot write, over the inline limit', () => {
  it('fails the step with a ValidationError naming the step and the reason, not a bare TypeError', async () => {
    const big = step(async () => ({ n: 1n, pad: 'x'.repeat(2_000) }));
    const machine = setup({ actors: { big } }).createMachine({
      context: { error: '' },
      initial: 'a',
      states: {
        a: {
          invoke: {
            id: 'b',
            src: 'big',
            onError: { target: 'failed', actions: assign({ error: ({ event }) => String((event.error as Error).message) }) },
          },
        },
        failed: { type: 'final' },
      },
      output: ({ context }) => context,
    });
    const def = defineWorkflow({ name: 'h219.step-output-over', machine, input: z.object({}) });
    const kit = await createTestKit({ workflows: [def], engine: { limits: { stepOutputInlineBytes: 1_024 } } });
    try {
      const id = await kit.engine.start(def, {});
      const run = await kit.engine.waitFor(id, { timeoutMs: 10_000 });
      expect(run.status).toBe('succeeded');
      expect((run.output as { error: string }).error).toMatch(
        /^The output of step b is over limits\.stepOutputInlineBytes \(\d+ bytes\), so it is stored as an artifact, and JSON cannot write it \(.*BigInt.*\)/,
      );
    } finally {
      await kit.close();
    }
  }, 60_000);
});
