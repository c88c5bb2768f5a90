/**
 * An example workflow shipped in the built-in registry so a fresh install has something to run:
 * reserve stock, wait for an `approve` signal (or approve on its own after a durable timeout),
 * then charge. It exercises steps, signals and a durable `after` timer; it touches nothing outside
 * the database.
 */
import { assign, setup } from 'xstate';
import { z } from 'zod';
import { defineWorkflow } from '../state_machine/definition.ts';
import { step } from '../state_machine/step.ts';

const orderInput = z.object({
  orderId: z.string().min(1),
  amountCents: z.number().int().positive(),
  /** How long to wait for `{"type":"approve"}` before approving automatically. */
  approvalTimeoutMs: z.number().int().nonnegative().default(5_000),
});
type OrderInput = z.infer<typeof orderInput>;

const reserve = step(async ({ input, runId, progress }: { input: OrderInput; runId: string; progress: (m: string) => void }) => {
  progress(`reserving stock for ${input.orderId}`);
  return { reservation: `res-${runId}` };
});

const charge = step(async ({ input, runId }: { input: { amountCents: number }; runId: string }) => ({
  receipt: `rcpt-${runId}`,
  amountCents: input.amountCents,
}));

const machine = setup({
  types: {} as {
    input: OrderInput;
    context: OrderInput & { reservation?: string; receipt?: string; approvedBy?: string };
    events: { type: 'approve'; by?: string } | { type: 'reject'; reason?: string };
  },
  actors: { reserve, charge },
  delays: { approvalTimeout: ({ context }) => context.approvalTimeoutMs },
}).createMachine({
  id: 'order',
  context: ({ input }) => ({ ...input }),
  initial: 'reserving',
  states: {
    reserving: {
      invoke: {
        src: 'reserve',
        input: ({ context }) => context,
        onDone: { target: 'awaitingApproval', actions: assign({ reservation: ({ event }) => event.output.reservation }) },
      },
    },
    awaitingApproval: {
      on: {
        approve: { target: 'charging', actions: assign({ approvedBy: ({ event }) => event.by ?? 'someone' }) },
        reject: 'rejected',
      },
      after: { approvalTimeout: { target: 'charging', actions: assign({ approvedBy: 'timeout' }) } },
    },
    charging: {
      invoke: {
        src: 'charge',
        input: ({ context }) => ({ amountCents: context.amountCents }),
        onDone: { target: 'done', actions: assign({ receipt: ({ event }) => event.output.receipt }) },
      },
    },
    done: { type: 'final' },
    rejected: { type: 'final' },
  },
  output: ({ context }) => ({ orderId: context.orderId, receipt: context.receipt ?? null, approvedBy: context.approvedBy ?? null }),
});

/** `example.order`: `rmapp start example.order '{"orderId":"A-1","amountCents":1200}'`. */
export const orderExample = defineWorkflow({ name: 'example.order', machine, input: orderInput });
