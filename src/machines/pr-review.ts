/**
 * PRReview: a review comment that mentions the bot becomes a change on the PR's branch and a reply.
 * parsingComment → locatingCode → generatingFix → applyingChanges → responding → complete; a stage
 * that fails goes to reportingFailure (the reviewer gets the reason as a reply) and then `failed`,
 * carrying the reason and category. Pure: the steps are passed in.
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
  /** Tells the reviewer why nothing was done (a reply in the comment's thread). */
  reportFailure: PromiseActorLogic<{ replyId: number }, PrReviewInput & { error: ErrorData; author: string | null }>;
}

/**
 * Options of {@link prReviewMachine}. `replyOnFailure` (default true): a failed stage goes through
 * `reportingFailure`, which answers the reviewer with the reason, before `failed`. The released
 * version without it (`{ replyOnFailure: false }`) is kept so runs started on it finish on it.
 */
export interface PrReviewOptions {
  replyOnFailure?: boolean;
}

/** The state a failed stage goes to: `reportingFailure`, or straight to `failed` in the old version. */
const FAILURE_REPORT = 'reportingFailure';

interface Context extends PrReviewInput {
  review: ReviewRequest | null;
  snippet: string;
  summary: string;
  commit: string | null;
  replyId: number | null;
  error: ErrorData | null;
}

export function prReviewMachine(steps: PrReviewSteps, options: PrReviewOptions = {}) {
  const reply = options.replyOnFailure ?? true;
  const onFailure = reply ? FAILURE_REPORT : 'failed';
  const { reportFailure, ...stageSteps } = steps;
  const actors = (reply ? steps : stageSteps) as unknown as PrReviewSteps & Record<string, UnknownActorLogic>;
  return setup({
    types: {} as { input: PrReviewInput; context: Context },
    actors,
  }).createMachine({
    id: 'prReview',
    context: ({ input }) => ({ ...input, review: null, snippet: '', summary: '', commit: null, replyId: null, error: null }),
    initial: 'parsingComment',
    states: {
      parsingComment: {
        invoke: {
          src: 'parseComment',
          input: ({ context }) => ({
            owner: context.owner,
            repo: context.repo,
            pullNumber: context.pullNumber,
            commentId: context.commentId,
          }),
          onDone: { target: 'locatingCode', actions: assign({ review: ({ event }) => event.output }) },
          onError: { target: onFailure, actions: assign({ error: stageFailure('parsingComment') }) },
        },
      },
      locatingCode: {
        invoke: {
          src: 'locateCode',
          input: ({ context }) => ({
            owner: context.owner,
            repo: context.repo,
            pullNumber: context.pullNumber,
            commentId: context.commentId,
            review: context.review as ReviewRequest,
          }),
          onDone: { target: 'generatingFix', actions: assign({ snippet: ({ event }) => event.output.snippet }) },
          onError: { target: onFailure, actions: assign({ error: stageFailure('locatingCode') }) },
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
          onError: { target: onFailure, actions: assign({ error: stageFailure('generatingFix') }) },
        },
      },
      applyingChanges: {
        invoke: {
          src: 'applyChanges',
          input: ({ context }) => ({
            owner: context.owner,
            repo: context.repo,
            pullNumber: context.pullNumber,
            commentId: context.commentId,
            review: context.review as ReviewRequest,
          }),
          onDone: { target: 'responding', actions: assign({ commit: ({ event }) => event.output.commit }) },
          onError: { target: onFailure, actions: assign({ error: stageFailure('applyingChanges') }) },
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
      ...(reply
        ? {
            [FAILURE_REPORT]: {
              invoke: {
                src: 'reportFailure',
                input: ({ context }: { context: Context }) => ({
                  owner: context.owner,
                  repo: context.repo,
                  pullNumber: context.pullNumber,
                  commentId: context.commentId,
                  error: context.error as ErrorData,
                  author: context.review?.author ?? null,
                }),
                onDone: {
                  target: 'failed',
                  actions: assign({ replyId: ({ event }) => (event.output as { replyId?: number } | undefined)?.replyId ?? null }),
                },
                // The reason stays the stage's: a reply that cannot be written changes nothing about why.
                onError: 'failed',
              },
            },
          }
        : {}),
      complete: { type: 'final' },
      failed: { type: 'final' },
    },
    output: ({ context }) => ({ commit: context.commit, replyId: context.replyId, error: context.error }),
  });
}

export function prReviewWorkflow(steps: PrReviewSteps, options: PrReviewOptions = {}) {
  return defineWorkflow({ name: 'PRReview', machine: prReviewMachine(steps, options), input: prReviewInput, failureStates: ['failed'] });
}
