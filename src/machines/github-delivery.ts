/**
 * GitHubDelivery: one run per accepted webhook delivery (its id is the idempotency key, so a
 * redelivered webhook is one run). `authorizing → acting → done`, or `authorizing → refusing → done`
 * when the author may not steer runs. The webhook handler only stores this run; the checks that call
 * GitHub and the effects (start a workflow, signal, cancel, retry, reply) are steps a worker executes
 * durably, each idempotent with its key. Pure: steps are passed in (`src/actors/github-delivery.ts`).
 */
import { assign, setup, type PromiseActorLogic, type UnknownActorLogic } from 'xstate';
import { z } from 'zod';
import { defineWorkflow } from '../state_machine/definition.ts';
import { stageFailure } from './stage-failure.ts';
import type { ErrorData } from '../state_machine/errors.ts';

/**
 * The delivery run's input: only what the routing needs from a webhook (no tokens, no whole payload).
 * It lives with the machine, not with the webhook handler that fills it (`src/rmapp/webhooks/event.ts`),
 * because a machine may import only `src/state_machine` (README, "Layout").
 */
export const githubEventInput = z.object({
  deliveryId: z.string().min(1).max(100),
  event: z.enum(['issue_comment', 'issues', 'pull_request_review', 'pull_request_review_comment']),
  action: z.string().min(1),
  owner: z.string().min(1),
  repo: z.string().min(1),
  installationId: z.number().int().positive().nullable(),
  /** The issue or pull request number. */
  number: z.number().int().positive(),
  isPullRequest: z.boolean(),
  /** Who wrote the comment or review, or who added the label. */
  author: z.string().min(1),
  body: z.string().max(65_536),
  commentId: z.number().int().positive().nullable(),
  reviewId: z.number().int().positive().nullable(),
  label: z.string().nullable(),
  /**
   * When the comment or review was written (its payload's time, event.ts `eventTime`), if the payload
   * said: an `approve`, `reject` or `cancel` written before the run it would steer existed, or before
   * its plan was posted (a late or redelivered delivery), is not applied to it. Absent in deliveries
   * stored before it existed.
   */
  writtenAt: z.string().datetime().nullable().optional(),
  /**
   * The command a comment gives the bot (`cancel`, `implement`, …: commands.ts `parseCommand`'s kind) as
   * it was received, so that the deliveries of one kind can be found among many (delivery-order.ts
   * `cancelledAfter`). Absent for other events, comments with no command, and deliveries stored before it.
   */
  command: z.string().max(40).optional(),
});
export type GitHubEventInput = z.infer<typeof githubEventInput>;

/** What a delivery did, shown on the dashboard and returned as the run's output. */
export interface DeliveryOutcome {
  action: 'started' | 'signalled' | 'cancelled' | 'retried' | 'replied' | 'ignored';
  /** The run started or steered, if any. */
  runId: string | null;
  message: string;
}

export interface GitHubDeliverySteps {
  /** Checks the author's permission when the command needs it (`needed: false` for help and status). */
  authorize: PromiseActorLogic<{ allowed: boolean; permission: string | null }, GitHubEventInput>;
  act: PromiseActorLogic<DeliveryOutcome, GitHubEventInput>;
  /** The short polite reply to someone without write permission. */
  refuse: PromiseActorLogic<DeliveryOutcome, GitHubEventInput>;
}

interface Context {
  event: GitHubEventInput;
  permission: string | null;
  outcome: DeliveryOutcome | null;
  error: ErrorData | null;
}

export function githubDeliveryMachine(steps: GitHubDeliverySteps) {
  return setup({
    types: {} as { input: GitHubEventInput; context: Context },
    actors: steps as unknown as Record<string, UnknownActorLogic>,
  }).createMachine({
    id: 'githubDelivery',
    context: ({ input }) => ({ event: input, permission: null, outcome: null, error: null }),
    initial: 'authorizing',
    states: {
      authorizing: {
        invoke: {
          src: 'authorize',
          input: ({ context }) => context.event,
          onDone: [
            {
              guard: ({ event }) => (event.output as { allowed: boolean }).allowed,
              target: 'acting',
              actions: assign({ permission: ({ event }) => (event.output as { permission: string | null }).permission }),
            },
            {
              target: 'refusing',
              actions: assign({ permission: ({ event }) => (event.output as { permission: string | null }).permission }),
            },
          ],
          onError: { target: 'failed', actions: assign({ error: stageFailure('authorizing') }) },
        },
      },
      acting: {
        invoke: {
          src: 'act',
          input: ({ context }) => context.event,
          onDone: { target: 'done', actions: assign({ outcome: ({ event }) => event.output as DeliveryOutcome }) },
          onError: { target: 'failed', actions: assign({ error: stageFailure('acting') }) },
        },
      },
      refusing: {
        invoke: {
          src: 'refuse',
          input: ({ context }) => context.event,
          onDone: { target: 'done', actions: assign({ outcome: ({ event }) => event.output as DeliveryOutcome }) },
          onError: { target: 'failed', actions: assign({ error: stageFailure('refusing') }) },
        },
      },
      done: { type: 'final' },
      failed: { type: 'final' },
    },
    output: ({ context }) => ({ outcome: context.outcome, error: context.error }),
  });
}

/** The definition (name `GitHubDelivery`). */
export function githubDeliveryWorkflow(steps: GitHubDeliverySteps) {
  return defineWorkflow({
    name: 'GitHubDelivery',
    machine: githubDeliveryMachine(steps),
    input: githubEventInput,
    failureStates: ['failed'],
  });
}
