/**
 * ReviewResponse: a pull-request review with several comments for the bot. One PRReview child
 * machine per comment (invoked in turn: they share the PR branch's workspace), each persisted inside
 * this run's snapshot and visible on its own; then one summary reply on the pull request.
 */
import { assign, setup, type PromiseActorLogic, type UnknownActorLogic } from 'xstate';
import { z } from 'zod';
import { defineWorkflow } from '../state_machine/definition.ts';
import type { ErrorData } from '../state_machine/errors.ts';
import { prReviewMachine, type PrReviewSteps } from './pr-review.ts';

export const reviewResponseInput = z.object({
  owner: z.string().min(1),
  repo: z.string().min(1),
  pullNumber: z.number().int().positive(),
  reviewId: z.number().int().positive(),
});
export type ReviewResponseInput = z.infer<typeof reviewResponseInput>;

export interface CommentResult {
  commentId: number;
  commit: string | null;
  error: ErrorData | null;
}

export interface ReviewResponseSteps extends PrReviewSteps {
  /** The review's comments that mention the bot. */
  listComments: PromiseActorLogic<{ commentIds: number[] }, ReviewResponseInput>;
  summarize: PromiseActorLogic<{ commentId: number }, ReviewResponseInput & { results: CommentResult[] }>;
}

interface Context extends ReviewResponseInput {
  commentIds: number[];
  index: number;
  results: CommentResult[];
  error: ErrorData | null;
}

export function reviewResponseMachine(steps: ReviewResponseSteps) {
  const { listComments, summarize, ...perComment } = steps;
  return setup({
    types: {} as { input: ReviewResponseInput; context: Context },
    actors: { listComments, summarize, comment: prReviewMachine(perComment) } as unknown as Record<string, UnknownActorLogic>,
    guards: { moreComments: ({ context }: { context: Context }) => context.index < context.commentIds.length },
  }).createMachine({
    id: 'reviewResponse',
    context: ({ input }) => ({ ...input, commentIds: [], index: 0, results: [], error: null }),
    initial: 'collecting',
    states: {
      collecting: {
        invoke: {
          src: 'listComments',
          input: ({ context }) => ({ owner: context.owner, repo: context.repo, pullNumber: context.pullNumber, reviewId: context.reviewId }),
          onDone: { target: 'next', actions: assign({ commentIds: ({ event }) => (event.output as { commentIds: number[] }).commentIds }) },
          onError: {
            target: 'failed',
            actions: assign({ error: ({ event }) => ({ ...(event.error as ErrorData), message: `collecting: ${(event.error as ErrorData).message}` }) }),
          },
        },
      },
      next: { always: [{ guard: 'moreComments', target: 'addressing' }, { target: 'summarizing' }] },
      addressing: {
        invoke: {
          id: 'comment',
          src: 'comment',
          input: ({ context }) => ({ owner: context.owner, repo: context.repo, pullNumber: context.pullNumber, commentId: context.commentIds[context.index] as number }),
          // A child that fails (its `failed` state) is recorded, and the others still get their turn.
          onDone: {
            target: 'next',
            actions: assign({
              results: ({ context, event }) => [
                ...context.results,
                { commentId: context.commentIds[context.index] as number, ...(event.output as { commit: string | null; error: ErrorData | null }) },
              ],
              index: ({ context }) => context.index + 1,
            }),
          },
          onError: {
            target: 'next',
            actions: assign({
              results: ({ context, event }) => [...context.results, { commentId: context.commentIds[context.index] as number, commit: null, error: event.error as ErrorData }],
              index: ({ context }) => context.index + 1,
            }),
          },
        },
      },
      summarizing: {
        invoke: {
          src: 'summarize',
          input: ({ context }) => ({ owner: context.owner, repo: context.repo, pullNumber: context.pullNumber, reviewId: context.reviewId, results: context.results }),
          onDone: 'complete',
          onError: {
            target: 'failed',
            actions: assign({ error: ({ event }) => ({ ...(event.error as ErrorData), message: `summarizing: ${(event.error as ErrorData).message}` }) }),
          },
        },
      },
      complete: { type: 'final' },
      failed: { type: 'final' },
    },
    output: ({ context }) => ({ results: context.results, error: context.error }),
  });
}

export function reviewResponseWorkflow(steps: ReviewResponseSteps) {
  return defineWorkflow({ name: 'ReviewResponse', machine: reviewResponseMachine(steps), input: reviewResponseInput, failureStates: ['failed'] });
}
