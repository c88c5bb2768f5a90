/**
 * An unknown workflow name is quoted, not echoed (errors.ts `UnknownWorkflowError`): a start naming a
 * 1 MiB workflow got all of it back in the error's message and details — through the HTTP API, a 1 MiB
 * answer to a 1 MiB mistake — where an unknown run id is cut at 200 characters; a trailing CR or a
 * look-alike letter left nothing to see. Now the name is cut and quoted as JSON, and the registered name
 * it is nearest to is offered.
 */
import { setup } from 'xstate';
import { z } from 'zod';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, defineWorkflow, UnknownWorkflowError } from '../src/index.ts';

const machine = setup({}).createMachine({ id: 'order', initial: 'done', states: { done: { type: 'final' } } });
const order = defineWorkflow({ name: 'example.order', machine, input: z.object({}) });

describe('an unknown workflow name in a start', () => {
  // No database is opened: the name is refused before the engine's first statement.
  const engine = createEngine({ workflows: [order], database: { url: '', dataDir: 'memory://' } });
  afterAll(() => engine.stop());

  async function refusal(name: string): Promise<UnknownWorkflowError> {
    const err = await engine.start(name, {}).then(
      (id) => new Error(`start(${JSON.stringify(name.slice(0, 40))}) was accepted as run ${id}`),
      (e: unknown) => e,
    );
    expect(err, (err as Error).message.slice(0, 300)).toBeInstanceOf(UnknownWorkflowError);
    return err as UnknownWorkflowError;
  }

  it('of 1 MiB is quoted cut short, in the message and the details', async () => {
    const err = await refusal('x'.repeat(1 << 20));
    expect(err.message.length, `message of ${err.message.length} characters`).toBeLessThan(1_000);
    const details = err.details as { name: string; known: string[] };
    expect(details.name.length, `details.name of ${details.name.length} characters`).toBeLessThanOrEqual(201);
    expect(details.known).toEqual(['example.order']);
  });

  it('with a trailing CR, a look-alike letter or a typo names the registered one', async () => {
    for (const [typed, shown] of [
      ['example.order\r', '"example.order\\r"'],
      ['\u0435xample.order', '"\u0435xample.order"'],
      ['exmaple.order', '"exmaple.order"'],
    ] as const) {
      const err = await refusal(typed);
      expect(err.message, `start(${JSON.stringify(typed)})`).toBe(
        `Unknown workflow ${shown} (did you mean "example.order"?). Registered workflows: example.order.`,
      );
    }
  });

  it('far from every registered name offers none', async () => {
    const err = await refusal('billing.refund');
    expect(err.message).toBe('Unknown workflow "billing.refund". Registered workflows: example.order.');
  });
});
