/**
 * IssueImplementation: analyzing → planning → openingDraftPR → implementing → testing → creatingPR →
 * complete. As soon as the plan is committed a draft pull request is open (its description follows the
 * run); `creatingPR` marks it ready for review and asks the requester for a review. A stage that fails
 * goes to `reportingFailure` (a comment that mentions the requester, the draft keeps the reason) and
 * then `failed`, carrying the reason and category. When the tests fail, the run goes back to
 * implementing with the failure output, at most `maxTestAttempts` times, then fails.
 *
 * The machine is pure: its steps are passed in (`src/actors/issue-implementation.ts` builds them from
 * the GitHub, workspace, agent and test adapters; tests pass scripted ones). Their names and the
 * structure here make the definition's version.
 */
import { assign, setup, type PromiseActorLogic } from 'xstate';
import { z } from 'zod';
import { defineWorkflow } from '../state_machine/definition.ts';
import { stageFailure } from './stage-failure.ts';
import { issueBranch } from './issue-branch.ts';
import { TEMPLATE_WORKFLOWS, type IssueWorkflowName } from './issue-templates.ts';
import type { ErrorData } from '../state_machine/errors.ts';

export const issueImplementationInput = z.object({
  owner: z.string().min(1),
  repo: z.string().min(1),
  issueNumber: z.number().int().positive(),
  /** Who asked (for the PR body); permission was checked before the run started. */
  requestedBy: z.string().min(1).optional(),
  /**
   * When the request was written on GitHub (its comment's `created_at`, its labelling's time): an issue
   * closed after it was closed while the run worked, and the run stops before it opens or readies a
   * pull request; one closed before was asked on knowingly. A `cancel`, a close or a label's removal
   * written after it applies to the run even if it was delivered first. Absent: not known (runs started
   * before it was recorded, or by `rmapp run`).
   */
  requestedAt: z.string().datetime({ offset: true }).optional(),
  /** The label that started the run (labels mapped to templates): removing it cancels the run. */
  label: z.string().min(1).optional(),
  maxTestAttempts: z.number().int().min(1).max(10).default(3),
  /** For templates that wait for `approve` after posting the plan. Default 7 days. */
  approvalTimeoutMs: z
    .number()
    .int()
    .positive()
    .default(7 * 24 * 3600_000),
  /**
   * A run that continues a failed one on the same branch (`@bot retry`): the plan it had, and the test
   * output it failed with. Analysis and planning are skipped; the test budget is fresh.
   */
  /**
   * The commits earlier runs of the issue pushed to its branch (their `branch-pushes` records), handed on
   * by `@rmapp implement` asked again: a run that pushed and failed before its draft opened made the
   * branch, and the next run — with no record of its own and no draft of rmapp's to show — was refused
   * it as one rmapp "did not create" (github/issue-branch-owner.ts).
   */
  branchPushes: z
    .array(z.string().regex(/^[0-9a-f]{40,64}$/))
    .max(200)
    .optional(),
  continueFrom: z
    .object({
      runId: z.string().min(1),
      plan: z.string().min(1),
      lastTestOutput: z.string().nullable().default(null),
      /**
       * The commits the continued run (and the runs it continued) pushed to the branch: its evidence that
       * the branch is rmapp's when no pull request of rmapp's comes from it (github/issue-branch-owner.ts).
       */
      pushes: z
        .array(z.string().regex(/^[0-9a-f]{40,64}$/))
        .max(200)
        .optional(),
    })
    .optional(),
});
export type IssueImplementationInput = z.infer<typeof issueImplementationInput>;

export interface IssueFacts {
  title: string;
  body: string;
  defaultBranch: string;
}

export interface TestOutcome {
  passed: boolean;
  output: string;
}

/** The steps, each a promise actor (use `step()`), by name. */
export interface IssueImplementationSteps {
  /** `skipAnalysis`: the run continues a plan (`continueFrom`), so only the issue's facts are needed. */
  analyze: PromiseActorLogic<
    IssueFacts,
    { owner: string; repo: string; issueNumber: number; skipAnalysis?: boolean; priorPushes?: string[] | undefined }
  >;
  /** `plan` is rmplan YAML (validated by the step; kept a string so the machine stays format-agnostic). */
  plan: PromiseActorLogic<{ plan: string }, { issue: IssueFacts; issueNumber: number }>;
  implement: PromiseActorLogic<ImplementOutcome, ImplementInput>;
  /** Posts the plan on the issue and asks for `@bot approve` (complex feature). */
  postPlan: PromiseActorLogic<
    { commentId: number },
    { owner: string; repo: string; issueNumber: number; plan: string; requestedBy?: string | null }
  >;
  test: PromiseActorLogic<TestOutcome, TestInput>;
  createPR: PromiseActorLogic<{ number: number; url: string }, CreatePrInput>;
  /** Commits the plan and opens the draft pull request ("Closes #n") whose description follows the run. */
  openDraftPR: PromiseActorLogic<{ number: number; url: string }, CreatePrInput>;
  /** Tells the requester why the run stopped (a new comment that mentions them) and marks the draft with the reason. */
  reportFailure: PromiseActorLogic<{ commentId: number }, FailureReportInput>;
}

/** What the failure report needs: where, who asked, and the run's error. */
export interface FailureReportInput {
  owner: string;
  repo: string;
  issueNumber: number;
  requestedBy: string | null;
  error: ErrorData;
  pr: { number: number; url: string } | null;
  template: string;
  plan: string;
}

/** What an implementing attempt did. */
export interface ImplementOutcome {
  commit: string | null;
  /** False when the attempt changed no file (older steps leave it out: taken as changed). */
  changed?: boolean | undefined;
  /** The end of what the agent said, shown when an attempt that changed nothing ends the run. */
  agentMessage?: string | null | undefined;
}

/**
 * Structure options of {@link issueImplementationMachine}: what later versions added, all off for the
 * released versions that runs in flight may still be on (src/rmapp/workflows/github-workflows.ts keeps
 * them registered), so runs started on one finish on it.
 */
export interface IssueMachineOptions {
  /**
   * The plan is committed and a draft pull request opened before implementing, and a failure goes
   * through `reportingFailure` (a comment that mentions the requester) before `failed` (default true).
   */
  draftPR?: boolean;
  /** `continueFrom` in the input skips analysis, planning and approval (default true). */
  continueFromPlan?: boolean;
  /** An attempt after a failed test run that changes nothing ends the run with the agent's message (default true). */
  stopWhenUnchanged?: boolean;
}

export interface ImplementInput {
  /** The commits the run this one continues pushed to the branch (`continueFrom.pushes`). */
  priorPushes?: string[] | undefined;
  owner: string;
  repo: string;
  issueNumber: number;
  branch: string;
  base: string;
  issue: IssueFacts;
  plan: string;
  /** Output of the failed test run this attempt must fix (absent the first time). */
  previousFailure: string | null;
  attempt: number;
  /** The most attempts the run makes (for "attempt 2 of 3"); absent in runs started before it was passed. */
  maxAttempts?: number;
  /** Who asked: the commits' `Co-authored-by`. */
  requestedBy?: string | null;
  /** `reproduce`: write a test that fails because of the bug, no fix (bug-fix template). */
  mode: 'implement' | 'reproduce';
}

/** Where the tests run, and which round this is (absent in runs started before rounds were passed). */
export interface TestInput {
  /** The commits the run this one continues pushed to the branch (`continueFrom.pushes`). */
  priorPushes?: string[] | undefined;
  owner: string;
  repo: string;
  issueNumber: number;
  branch: string;
  base: string;
  round?: number;
  maxRounds?: number;
}

/** Which stages a template has (the IssueImplementation default: plan, implement, test, PR). */
export interface IssueTemplate {
  name: string;
  /** Post the plan and wait for `approve` (or `reject`) with a durable timeout. */
  approval?: boolean;
  /** First a failing test that reproduces the bug, then the fix, then the tests pass. */
  reproduceFirst?: boolean;
  /** Run the repository's tests (default true; the docs template skips them). */
  runTests?: boolean;
}

export interface CreatePrInput {
  /** The commits the run this one continues pushed to the branch (`continueFrom.pushes`). */
  priorPushes?: string[] | undefined;
  owner: string;
  repo: string;
  issueNumber: number;
  branch: string;
  base: string;
  title: string;
  plan: string;
  requestedBy: string | null;
  /** When the request was written (the input's `requestedAt`): an issue closed since stops the step. */
  requestedAt?: string | undefined;
}

interface Context extends IssueImplementationInput {
  branch: string;
  issue: IssueFacts | null;
  plan: string | null;
  testAttempts: number;
  lastTestOutput: string | null;
  pr: { number: number; url: string } | null;
  error: ErrorData | null;
  mode: 'implement' | 'reproduce';
}

/** Builds the machine of a template around the given steps. */
export function issueImplementationMachine(
  steps: IssueImplementationSteps,
  template: IssueTemplate = { name: TEMPLATE_WORKFLOWS.simple },
  options: IssueMachineOptions = {},
) {
  const draft = options.draftPR ?? true;
  const onFailure = draft ? 'reportingFailure' : 'failed';
  const runTests = template.runTests ?? true;
  const continueFromPlan = options.continueFromPlan ?? true;
  const stopWhenUnchanged = options.stopWhenUnchanged ?? true;
  const work = template.reproduceFirst ? 'reproducing' : 'implementing';
  const afterApproval = draft ? 'openingDraftPR' : work;
  const afterPlan = template.approval ? 'awaitingApproval' : afterApproval;
  const { openDraftPR, reportFailure, ...released } = steps;
  void openDraftPR;
  void reportFailure;
  const afterImplement = runTests || template.reproduceFirst ? 'testing' : 'creatingPR';
  return setup({
    types: {} as { input: IssueImplementationInput; context: Context },
    actors: (draft ? steps : released) as unknown as { [K in keyof IssueImplementationSteps]: IssueImplementationSteps[K] } & Record<
      string,
      import('xstate').UnknownActorLogic
    >,
    delays: { approvalTimeout: ({ context }: { context: Context }) => context.approvalTimeoutMs },
    guards: {
      testsPassed: ({ event }: { event: unknown }) => (event as { output: TestOutcome }).output.passed,
      canRetryTests: ({ context }: { context: Context }) => context.testAttempts < context.maxTestAttempts,
      hasPlan: ({ context }: { context: Context }) => context.plan !== null,
      // Only after a failed test run: the same tree would fail the same tests again.
      changedNothing: ({ context, event }: { context: Context; event: unknown }) =>
        context.lastTestOutput !== null && (event as { output: ImplementOutcome }).output.changed === false,
    },
  }).createMachine({
    id: 'issueImplementation',
    context: ({ input }) => ({
      ...input,
      maxTestAttempts: input.maxTestAttempts ?? 3,
      branch: issueBranch(input.issueNumber),
      issue: null,
      plan: input.continueFrom?.plan ?? null,
      testAttempts: 0,
      lastTestOutput: input.continueFrom?.lastTestOutput ?? null,
      pr: null,
      error: null,
      mode: template.reproduceFirst ? ('reproduce' as const) : ('implement' as const),
    }),
    initial: 'analyzing',
    states: {
      analyzing: {
        invoke: {
          src: 'analyze',
          input: ({ context }) => ({
            owner: context.owner,
            repo: context.repo,
            issueNumber: context.issueNumber,
            ...(context.plan !== null ? { skipAnalysis: true } : {}),
            ...priorPushesOf(context),
          }),
          onDone: continueFromPlan
            ? [
                { guard: 'hasPlan', target: afterApproval, actions: assign({ issue: ({ event }) => event.output }) },
                { target: 'planning', actions: assign({ issue: ({ event }) => event.output }) },
              ]
            : { target: 'planning', actions: assign({ issue: ({ event }) => event.output }) },
          onError: { target: onFailure, actions: assign({ error: stageFailure('analyzing') }) },
        },
      },
      planning: {
        invoke: {
          src: 'plan',
          input: ({ context }) => ({ issue: context.issue as IssueFacts, issueNumber: context.issueNumber }),
          onDone: { target: template.approval ? 'postingPlan' : afterPlan, actions: assign({ plan: ({ event }) => event.output.plan }) },
          onError: { target: onFailure, actions: assign({ error: stageFailure('planning') }) },
        },
      },
      ...(template.approval
        ? {
            postingPlan: {
              invoke: {
                src: 'postPlan',
                input: ({ context }: { context: Context }) => ({
                  owner: context.owner,
                  repo: context.repo,
                  issueNumber: context.issueNumber,
                  plan: context.plan ?? '',
                  requestedBy: context.requestedBy ?? null,
                }),
                onDone: 'awaitingApproval',
                onError: { target: onFailure, actions: assign({ error: stageFailure('postingPlan') }) },
              },
            },
            awaitingApproval: {
              on: {
                approve: afterApproval,
                reject: {
                  target: onFailure,
                  actions: assign({
                    error: () => ({
                      name: 'Rejected',
                      message: 'awaitingApproval: the plan was rejected',
                      code: 'PLAN_REJECTED',
                      category: 'permanent' as const,
                    }),
                  }),
                },
              },
              after: {
                approvalTimeout: {
                  target: onFailure,
                  actions: assign({
                    error: () => ({
                      name: 'ApprovalTimeout',
                      message: 'awaitingApproval: nobody approved the plan in time',
                      code: 'APPROVAL_TIMEOUT',
                      category: 'timeout' as const,
                    }),
                  }),
                },
              },
            },
          }
        : {}),
      ...(draft
        ? {
            openingDraftPR: {
              invoke: {
                src: 'openDraftPR',
                input: ({ context }: { context: Context }) => createPrInput(context),
                onDone: { target: work, actions: assign({ pr: ({ event }) => event.output as { number: number; url: string } }) },
                onError: { target: onFailure, actions: assign({ error: stageFailure('openingDraftPR') }) },
              },
            },
            reportingFailure: {
              invoke: {
                src: 'reportFailure',
                input: ({ context }: { context: Context }) => ({
                  owner: context.owner,
                  repo: context.repo,
                  issueNumber: context.issueNumber,
                  requestedBy: context.requestedBy ?? null,
                  error: context.error as ErrorData,
                  pr: context.pr,
                  template: template.name,
                  plan: context.plan ?? '',
                }),
                // The reason stays the stage's: a report that cannot be written changes nothing about why.
                onDone: 'failed',
                onError: 'failed',
              },
            },
          }
        : {}),
      ...(template.reproduceFirst
        ? {
            reproducing: {
              invoke: {
                src: 'implement',
                input: ({ context }: { context: Context }) => implementInput(context, 'reproduce'),
                onDone: 'verifyingReproduction',
                onError: { target: onFailure, actions: assign({ error: stageFailure('reproducing') }) },
              },
            },
            verifyingReproduction: {
              invoke: {
                src: 'test',
                input: ({ context }: { context: Context }) => testInput(context),
                onDone: [
                  {
                    guard: 'testsPassed',
                    target: onFailure,
                    actions: assign({
                      error: () => ({
                        name: 'NotReproduced',
                        message: 'verifyingReproduction: the tests pass before the fix, so the bug is not reproduced',
                        code: 'NOT_REPRODUCED',
                        category: 'test_failure' as const,
                      }),
                    }),
                  },
                  {
                    target: 'implementing',
                    actions: assign({ mode: 'implement' as const, lastTestOutput: ({ event }) => event.output.output }),
                  },
                ],
                onError: { target: onFailure, actions: assign({ error: stageFailure('verifyingReproduction') }) },
              },
            },
          }
        : {}),
      implementing: {
        invoke: {
          src: 'implement',
          input: ({ context }) => implementInput(context, 'implement'),
          onDone: stopWhenUnchanged
            ? [
                {
                  guard: 'changedNothing',
                  target: onFailure,
                  actions: assign({
                    error: ({ event }) => {
                      const said = event.output.agentMessage?.trim();
                      return {
                        name: 'NoChangeError',
                        message: `implementing: the agent changed nothing after the failed test run, so the tests were not run again.${said ? ` The agent said: ${said}` : ' The agent said nothing.'}`,
                        code: 'NO_CHANGE',
                        category: 'agent' as const,
                      };
                    },
                  }),
                },
                { target: afterImplement },
              ]
            : afterImplement,
          onError: { target: onFailure, actions: assign({ error: stageFailure('implementing') }) },
        },
      },
      testing: {
        entry: assign({ testAttempts: ({ context }) => context.testAttempts + 1 }),
        invoke: {
          src: 'test',
          input: ({ context }) => testInput(context),
          onDone: [
            { guard: 'testsPassed', target: 'creatingPR', actions: assign({ lastTestOutput: null }) },
            { guard: 'canRetryTests', target: 'implementing', actions: assign({ lastTestOutput: ({ event }) => event.output.output }) },
            {
              target: onFailure,
              actions: assign({
                lastTestOutput: ({ event }) => event.output.output,
                error: ({ context }) => ({
                  name: 'TestFailureError',
                  message: `testing: the tests still fail after ${context.testAttempts} attempts`,
                  code: 'TESTS_FAILED',
                  category: 'test_failure' as const,
                }),
              }),
            },
          ],
          onError: { target: onFailure, actions: assign({ error: stageFailure('testing') }) },
        },
      },
      creatingPR: {
        invoke: {
          src: 'createPR',
          input: ({ context }) => createPrInput(context),
          onDone: { target: 'complete', actions: assign({ pr: ({ event }) => event.output }) },
          onError: { target: onFailure, actions: assign({ error: stageFailure('creatingPR') }) },
        },
      },
      complete: { type: 'final' },
      failed: { type: 'final' },
    },
    output: ({ context }) => ({ pr: context.pr, testAttempts: context.testAttempts, error: context.error }),
  });
}

/**
 * The commits earlier runs pushed to the branch, as a step's `priorPushes`: those of the run a retry
 * continues (`continueFrom.pushes`) and of the issue's earlier runs (`branchPushes`).
 */
function priorPushesOf(context: Context): { priorPushes?: string[] } {
  const pushes = [...(context.branchPushes ?? []), ...(context.continueFrom?.pushes ?? [])];
  return pushes.length ? { priorPushes: pushes } : {};
}

function createPrInput(context: Context): CreatePrInput {
  return {
    ...priorPushesOf(context),
    owner: context.owner,
    repo: context.repo,
    issueNumber: context.issueNumber,
    branch: context.branch,
    base: (context.issue as IssueFacts).defaultBranch,
    title: (context.issue as IssueFacts).title,
    plan: context.plan ?? '',
    requestedBy: context.requestedBy ?? null,
    ...(context.requestedAt ? { requestedAt: context.requestedAt } : {}),
  };
}

function implementInput(context: Context, mode: 'implement' | 'reproduce'): ImplementInput {
  return {
    ...priorPushesOf(context),
    maxAttempts: context.maxTestAttempts,
    requestedBy: context.requestedBy ?? null,
    owner: context.owner,
    repo: context.repo,
    issueNumber: context.issueNumber,
    branch: context.branch,
    base: (context.issue as IssueFacts).defaultBranch,
    issue: context.issue as IssueFacts,
    plan: context.plan ?? '',
    previousFailure: context.lastTestOutput,
    attempt: context.testAttempts + 1,
    mode,
  };
}

function testInput(context: Context): TestInput {
  return {
    ...priorPushesOf(context),
    round: context.testAttempts,
    maxRounds: context.maxTestAttempts,
    owner: context.owner,
    repo: context.repo,
    issueNumber: context.issueNumber,
    branch: context.branch,
    base: (context.issue as IssueFacts).defaultBranch,
  };
}

/** The templates: chosen by command (`@bot implement bugfix`) or label. */
export const ISSUE_TEMPLATES = {
  /** simple issue: plan, implement, test (looping back on failure), PR. */
  IssueImplementation: { name: TEMPLATE_WORKFLOWS.simple },
  /** complex feature: the plan is posted and the run waits for `approve`, with a durable timeout. */
  ComplexFeature: { name: TEMPLATE_WORKFLOWS.feature, approval: true },
  /** bug fix: a failing test that reproduces the bug first, then the fix, then the tests pass. */
  BugFix: { name: TEMPLATE_WORKFLOWS.bugfix, reproduceFirst: true },
  /** documentation update: no test step. */
  DocsUpdate: { name: TEMPLATE_WORKFLOWS.docs, runTests: false },
} as const satisfies Record<IssueWorkflowName, IssueTemplate>;

/** A template's workflow around the given steps. */
export function issueWorkflow(
  steps: IssueImplementationSteps,
  template: IssueTemplate = ISSUE_TEMPLATES.IssueImplementation,
  options: IssueMachineOptions = {},
) {
  return defineWorkflow({
    name: template.name,
    machine: issueImplementationMachine(steps, template, options),
    input: issueImplementationInput,
    failureStates: ['failed'],
  });
}

/** The IssueImplementation workflow around the given steps. */
export function issueImplementationWorkflow(steps: IssueImplementationSteps) {
  return issueWorkflow(steps, ISSUE_TEMPLATES.IssueImplementation);
}
