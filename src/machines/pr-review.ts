/**
 * PRReview: a review comment that mentions the bot becomes a change on the PR's branch and a reply.
 * parsingComment → locatingCode → generatingFix → applyingChanges → responding → complete, each with a
 * path to `failed` carrying the reason and category. Pure: the steps are passed in.
 */
import { assign, setup, type PromiseActorLogic, type UnknownActorLogic } from 'xstate';
import { z } from 'zod';
import { defineWorkflow } from '../state_machine/definition.ts';
import { stageFailure } from './stage-failure.ts';
import type { ErrorData } from '../state_machine/errors.ts';

export const prReviewInput = z.object({
  owner: z.string().min(1),
  repo: z.string().min(1),
  pullNumber: z.number().int().positive(),
  commentId: z.number().int().positive(),
});
export type PrReviewInput = z.infer<typeof prReviewInput>;

export interface ReviewRequest {
  request: string;
  path: string | null;
  line: number | null;
  author: string;
  branch: string;
}

export interface PrReviewSteps {
  parseComment: PromiseActorLogic<ReviewRequest, PrReviewInput>;
  locateCode: PromiseActorLogic<{ snippet: string }, PrReviewInput & { review: ReviewRequest }>;
  generateFix: PromiseActorLogic<{ summary: string }, PrReviewInput & { review: ReviewRequest; snippet: string }>;
  applyChanges: PromiseActorLogic<{ commit: string | null }, PrReviewInput & { review: ReviewRequest }>;
  respond: PromiseActorLogic<{ replyId: number }, PrReviewInput & { review: ReviewRequest; commit: string | null; summary: string }>;
}

interface Context extends PrReviewInput {
  review: ReviewRequest | null;
  snippet: string;
  summary: string;
  commit: string | null;
  replyId: number | null;
  error: ErrorData | null;
}


export function prReviewMachine(steps: PrReviewSteps) {
  return setup({
    types: {} as { input: PrReviewInput; context: Context },
    actors: steps as unknown as PrReviewSteps & Record<string, UnknownActorLogic>,
  }).createMachine({
    id: 'prReview',
    context: ({ input }) => ({ ...input, review: null, snippet: '', summary: '', commit: null, replyId: null, error: null }),
    initial: 'parsingComment',
    states: {
      parsingComment: {
        invoke: {
          src: 'parseComment',
          input: ({ context }) => ({ owner: context.owner, repo: context.repo, pullNumber: context.pullNumber, commentId: context.commentId }),
          onDone: { target: 'locatingCode', actions: assign({ review: ({ event }) => event.output }) },
          onError: { target: 'failed', actions: assign({ error: stageFailure('parsingComment') }) },
        },
      },
      locatingCode: {
        invoke: {
          src: 'locateCode',
          input: ({ context }) => ({ owner: context.owner, repo: context.repo, pullNumber: context.pullNumber, commentId: context.commentId, review: context.review as ReviewRequest }),
          onDone: { target: 'generatingFix', actions: assign({ snippet: ({ event }) => event.output.snippet }) },
          onError: { target: 'failed', actions: assign({ error: stageFailure('locatingCode') }) },
        },
      },
      generatingFix: {
        invoke: {
          src: 'generateFix',
          input: ({ context }) => ({
            owner: context.owner,
            repo: context.repo,
            pullNumber: context.pullNumber,
            commentId: context.commentId,
            review: context.review as ReviewRequest,
            snippet: context.snippet,
          }),
          onDone: { target: 'applyingChanges', actions: assign({ summary: ({ event }) => event.output.summary }) },
          onError: { target: 'failed', actions: assign({ error: stageFailure('generatingFix') }) },
        },
      },
      applyingChanges: {
        invoke: {
          src: 'applyChanges',
          input: ({ context }) => ({ owner: context.owner, repo: context.repo, pullNumber: context.pullNumber, commentId: context.commentId, review: context.review as ReviewRequest }),
          onDone: { target: 'responding', actions: assign({ commit: ({ event }) => event.output.commit }) },
          onError: { target: 'failed', actions: assign({ error: stageFailure('applyingChanges') }) },
        },
      },
      responding: {
        invoke: {
          src: 'respond',
          input: ({ context }) => ({
            owner: context.owner,
            repo: context.repo,
            pullNumber: context.pullNumber,
            commentId: context.commentId,
            review: context.review as ReviewRequest,
            commit: context.commit,
            summary: context.summary,
          }),
          onDone: { target: 'complete', actions: assign({ replyId: ({ event }) => event.output.replyId }) },
          onError: { target: 'failed', actions: assign({ error: stageFailure('responding') }) },
        },
      },
      complete: { type: 'final' },
      failed: { type: 'final' },
    },
    output: ({ context }) => ({ commit: context.commit, replyId: context.replyId, error: context.error }),
  });
}

export function prReviewWorkflow(steps: PrReviewSteps) {
  return defineWorkflow({ name: 'PRReview', machine: prReviewMachine(steps), input: prReviewInput, failureStates: ['failed'] });
}
