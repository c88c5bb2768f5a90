/**
 * ReviewResponse: a pull-request review with several comments for the bot. One PRReview child
 * machine per comment (invoked in turn: they share the PR branch's workspace), each persisted inside
 * this run's snapshot and visible on its own; then one summary reply on the pull request. The
 * children do not answer their own failures: the summary answers the reviewer for each comment,
 * done or not and why.
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
  /**
   * The issue whose run owns the pull request's branch (`rmapp/issue-<n>`: the draft pull request an
   * issue run opened), when it does: the run then queues behind that issue's runs, not only behind the
   * pull request's (github-workflows.ts `perPull`), as both push to that branch.
   */
  branchIssue: z.number().int().positive().optional(),
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

/**
 * Options of {@link reviewResponseMachine}. `acceptNewComments` (default true): a `review.comment`
 * signal `{ commentId }` — a new review comment on the PR while the run goes — joins the run's list,
 * also while it summarizes (it goes back to address it, and the summary is rewritten). Version 1 of
 * the machine had no such signal: `{ acceptNewComments: false }` builds it exactly, so runs started
 * on it can finish on it (`previousVersions`).
 */
export interface ReviewResponseOptions {
  acceptNewComments?: boolean;
  /**
   * Each comment's change passes the repository's tests before it is pushed, as a lone PRReview's does
   * (default true). The versions before it (`{ testBeforePush: false }`) pushed untested and are kept
   * for runs in flight.
   */
  testBeforePush?: boolean;
}

/** The signal that adds a review comment to a running ReviewResponse. */
export interface ReviewCommentSignal {
  type: 'review.comment';
  commentId: number;
}

export function reviewResponseMachine(steps: ReviewResponseSteps, options: ReviewResponseOptions = {}) {
  const { listComments, summarize, ...perComment } = steps;
  const accept = options.acceptNewComments ?? true;
  return setup({
    types: {} as { input: ReviewResponseInput; context: Context },
    actors: {
      listComments,
      summarize,
      comment: prReviewMachine(perComment, { replyOnFailure: false, testBeforePush: options.testBeforePush ?? true }),
    } as unknown as Record<string, UnknownActorLogic>,
    guards: { moreComments: ({ context }: { context: Context }) => context.index < context.commentIds.length },
    actions: {
      addComment: assign({
        commentIds: ({ context, event }) => {
          const id = (event as Partial<ReviewCommentSignal>).commentId;
          return typeof id === 'number' && !context.commentIds.includes(id) ? [...context.commentIds, id] : context.commentIds;
        },
      }),
    },
  }).createMachine({
    id: 'reviewResponse',
    context: ({ input }) => ({ ...input, commentIds: [], index: 0, results: [], error: null }),
    ...(accept ? { on: { 'review.comment': { actions: 'addComment' as const } } } : {}),
    initial: 'collecting',
    states: {
      collecting: {
        invoke: {
          src: 'listComments',
          input: ({ context }) => ({
            owner: context.owner,
            repo: context.repo,
            pullNumber: context.pullNumber,
            reviewId: context.reviewId,
          }),
          // Comments signalled while collecting are kept (after the review's own).
          onDone: {
            target: 'next',
            actions: assign({
              commentIds: ({ context, event }) => [
                ...new Set([...(event.output as { commentIds: number[] }).commentIds, ...(accept ? context.commentIds : [])]),
              ],
            }),
          },
          onError: {
            target: 'failed',
            actions: assign({
              error: ({ event }) => ({ ...(event.error as ErrorData), message: `collecting: ${(event.error as ErrorData).message}` }),
            }),
          },
        },
      },
      next: { always: [{ guard: 'moreComments', target: 'addressing' }, { target: 'summarizing' }] },
      addressing: {
        invoke: {
          id: 'comment',
          src: 'comment',
          input: ({ context }) => ({
            owner: context.owner,
            repo: context.repo,
            pullNumber: context.pullNumber,
            commentId: context.commentIds[context.index] as number,
          }),
          // A child that fails (its `failed` state) is recorded, and the others still get their turn.
          onDone: {
            target: 'next',
            actions: assign({
              results: ({ context, event }) => [
                ...context.results,
                {
                  commentId: context.commentIds[context.index] as number,
                  ...(event.output as { commit: string | null; error: ErrorData | null }),
                },
              ],
              index: ({ context }) => context.index + 1,
            }),
          },
          onError: {
            target: 'next',
            actions: assign({
              results: ({ context, event }) => [
                ...context.results,
                { commentId: context.commentIds[context.index] as number, commit: null, error: event.error as ErrorData },
              ],
              index: ({ context }) => context.index + 1,
            }),
          },
        },
      },
      summarizing: {
        ...(accept ? { on: { 'review.comment': { target: 'next', actions: 'addComment' as const } } } : {}),
        invoke: {
          src: 'summarize',
          input: ({ context }) => ({
            owner: context.owner,
            repo: context.repo,
            pullNumber: context.pullNumber,
            reviewId: context.reviewId,
            results: context.results,
          }),
          onDone: 'complete',
          onError: {
            target: 'failed',
            actions: assign({
              error: ({ event }) => ({ ...(event.error as ErrorData), message: `summarizing: ${(event.error as ErrorData).message}` }),
            }),
          },
        },
      },
      complete: { type: 'final' },
      failed: { type: 'final' },
    },
    output: ({ context }) => ({ results: context.results, error: context.error }),
  });
}

export function reviewResponseWorkflow(steps: ReviewResponseSteps, options: ReviewResponseOptions = {}) {
  return defineWorkflow({
    name: 'ReviewResponse',
    machine: reviewResponseMachine(steps, options),
    input: reviewResponseInput,
    failureStates: ['failed'],
  });
}
