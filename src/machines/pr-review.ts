/**
 * PRReview: a review comment that mentions the bot becomes a change on the PR's branch and a reply.
 * parsingComment → locatingCode → generatingFix → testingChange → applyingChanges → responding →
 * complete: the change is pushed only after the repository's tests pass with it. A stage
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
  /**
   * Where the comment is: a review comment (in a thread on the diff), or a comment in the pull
   * request's conversation (`@rmapp <request>` on the PR itself), which has no path or line and is
   * answered with a new comment on the PR.
   */
  source: z.enum(['review', 'conversation']).default('review'),
  /**
   * The issue whose run owns the pull request's branch (`rmapp/issue-<n>`: the draft pull request an
   * issue run opened), when it does: the run then queues behind that issue's runs, not only behind the
   * pull request's (github-workflows.ts `perPull`), as both push to that branch.
   */
  branchIssue: z.number().int().positive().optional(),
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
  /** Runs the repository's tests on the change before anything is pushed (fails with `test_failure` when they fail). */
  testChange: PromiseActorLogic<{ passed: boolean; result: string }, PrReviewInput & { review: ReviewRequest }>;
  applyChanges: PromiseActorLogic<{ commit: string | null; files?: string[] }, PrReviewInput & { review: ReviewRequest }>;
  respond: PromiseActorLogic<
    { replyId: number },
    PrReviewInput & { review: ReviewRequest; commit: string | null; summary: string; files?: string[]; tests?: string | null }
  >;
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
  /**
   * (default true) `testingChange` runs the tests on the change before `applyingChanges` pushes it.
   * The released versions without it (`{ testBeforePush: false }`) are kept for runs in flight.
   * ReviewResponse's children test too: a child machine is not part of its parent's version, so runs
   * of ReviewResponse started before test from then on (a state added, none removed).
   */
  testBeforePush?: boolean;
}

/** The state a failed stage goes to: `reportingFailure`, or straight to `failed` in the old version. */
const FAILURE_REPORT = 'reportingFailure';

interface Context extends PrReviewInput {
  review: ReviewRequest | null;
  snippet: string;
  summary: string;
  commit: string | null;
  files: string[];
  tests: string | null;
  replyId: number | null;
  error: ErrorData | null;
}

/** Which comment the run answers: the part of every stage's input that names it. */
function commentOf(context: Context) {
  return {
    owner: context.owner,
    repo: context.repo,
    pullNumber: context.pullNumber,
    commentId: context.commentId,
    source: context.source,
  };
}

export function prReviewMachine(steps: PrReviewSteps, options: PrReviewOptions = {}) {
  const reply = options.replyOnFailure ?? true;
  const testFirst = options.testBeforePush ?? true;
  const onFailure = reply ? FAILURE_REPORT : 'failed';
  const { reportFailure, testChange, ...stageSteps } = steps;
  const actors = {
    ...stageSteps,
    ...(reply ? { reportFailure } : {}),
    ...(testFirst ? { testChange } : {}),
  } as unknown as PrReviewSteps & Record<string, UnknownActorLogic>;
  return setup({
    types: {} as { input: PrReviewInput; context: Context },
    actors,
  }).createMachine({
    id: 'prReview',
    context: ({ input }) => ({
      ...input,
      source: input.source ?? 'review',
      review: null,
      snippet: '',
      summary: '',
      commit: null,
      files: [],
      tests: null,
      replyId: null,
      error: null,
    }),
    initial: 'parsingComment',
    states: {
      parsingComment: {
        invoke: {
          src: 'parseComment',
          input: ({ context }) => ({
            ...commentOf(context),
          }),
          onDone: { target: 'locatingCode', actions: assign({ review: ({ event }) => event.output }) },
          onError: { target: onFailure, actions: assign({ error: stageFailure('parsingComment') }) },
        },
      },
      locatingCode: {
        invoke: {
          src: 'locateCode',
          input: ({ context }) => ({
            ...commentOf(context),
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
            ...commentOf(context),
            review: context.review as ReviewRequest,
            snippet: context.snippet,
          }),
          onDone: {
            target: testFirst ? 'testingChange' : 'applyingChanges',
            actions: assign({ summary: ({ event }) => event.output.summary }),
          },
          onError: { target: onFailure, actions: assign({ error: stageFailure('generatingFix') }) },
        },
      },
      ...(testFirst
        ? {
            testingChange: {
              invoke: {
                src: 'testChange',
                input: ({ context }: { context: Context }) => ({
                  ...commentOf(context),
                  review: context.review as ReviewRequest,
                }),
                onDone: {
                  target: 'applyingChanges',
                  actions: assign({ tests: ({ event }) => (event.output as { result?: string } | undefined)?.result ?? null }),
                },
                onError: { target: onFailure, actions: assign({ error: stageFailure('testingChange') }) },
              },
            },
          }
        : {}),
      applyingChanges: {
        invoke: {
          src: 'applyChanges',
          input: ({ context }) => ({
            ...commentOf(context),
            review: context.review as ReviewRequest,
          }),
          onDone: {
            target: 'responding',
            // The released versions keep their context exactly (restored snapshots compare equal): no `files` there.
            actions: testFirst
              ? assign({ commit: ({ event }) => event.output.commit, files: ({ event }) => event.output.files ?? [] })
              : assign({ commit: ({ event }) => event.output.commit }),
          },
          onError: { target: onFailure, actions: assign({ error: stageFailure('applyingChanges') }) },
        },
      },
      responding: {
        invoke: {
          src: 'respond',
          input: ({ context }) => ({
            ...commentOf(context),
            review: context.review as ReviewRequest,
            commit: context.commit,
            summary: context.summary,
            files: context.files,
            tests: context.tests,
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
                  ...commentOf(context),
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
