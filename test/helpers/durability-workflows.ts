/** Workflows for the durability tests: retries, timers, signals, cancellation, sub-workflows. */
import { appendFileSync } from 'node:fs';
import { assign, setup, type AnyStateMachine } from 'xstate';
import { z } from 'zod';
import { defineWorkflow, step, WorkflowError, type ErrorCategory, type RetryPolicy } from '../../src/index.ts';

/** One record per step attempt, in this process. */
export interface AttemptRecord {
  name: string;
  attempt: number;
  at: number;
  runId: string;
}
export const attempts: AttemptRecord[] = [];
/** Abort times of steps, in this process. */
export const aborts = new Map<string, number>();
/** Cleanups that ran, by run id. */
export const cleanups: string[] = [];
const executionCounts = new Map<string, number>();

function note(rec: AttemptRecord): void {
  attempts.push(rec);
  const file = process.env.RMAPP_TEST_COUNTER_FILE;
  if (file) appendFileSync(file, `${JSON.stringify(rec)}\n`);
}

interface WorkInput {
  name: string;
  /** Fail attempts 1..failTimes. */
  failTimes?: number;
  /** Fail the first N executions of this step in this process (survives `engine.retry`'s fresh attempts). */
  failExecutions?: number;
  failCategory?: ErrorCategory;
  retryAfterMs?: number;
  /** Wait until aborted (cancellation tests). */
  hang?: boolean;
}

/** A step that can fail its first attempts, hang, or be slow (RMAPP_TEST_SLOW_STEP in crash tests). */
function workStep(retry?: Partial<RetryPolicy>) {
  return step(
    async ({
      input,
      attempt,
      runId,
      signal,
      progress,
    }: {
      input: WorkInput;
      attempt: number;
      runId: string;
      signal: AbortSignal;
      progress: (m: string) => void;
    }) => {
      note({ name: input.name, attempt, at: Date.now(), runId });
      progress(`${input.name}: attempt ${attempt}`);
      const key = `${runId}:${input.name}`;
      const executions = (executionCounts.get(key) ?? 0) + 1;
      executionCounts.set(key, executions);
      if (attempt <= (input.failTimes ?? 0) || executions <= (input.failExecutions ?? 0)) {
        throw new WorkflowError(`${input.name} failed on attempt ${attempt}`, {
          code: 'FLAKY',
          category: input.failCategory ?? 'transient',
          retryAfterMs: input.retryAfterMs,
        });
      }
      const slowSteps = (process.env.RMAPP_TEST_SLOW_STEP ?? '').split(',');
      const slow = slowSteps.includes(input.name) ? Number(process.env.RMAPP_TEST_SLOW_MS ?? 60_000) : 0;
      if (input.hang || slow) {
        await new Promise<void>((resolve, reject) => {
          const t = input.hang ? undefined : setTimeout(resolve, slow);
          signal.addEventListener('abort', () => {
            clearTimeout(t);
            aborts.set(`${runId}:${input.name}`, Date.now());
            reject(signal.reason);
          });
        });
      }
      return input.name;
    },
    { retry },
  );
}

const flakyInput = z.object({
  failTimes: z.number().int().nonnegative().default(0),
  failExecutions: z.number().int().nonnegative().default(0),
  failCategory: z.enum(['transient', 'rate_limited', 'timeout', 'permanent', 'validation']).default('transient'),
  retryAfterMs: z.number().int().positive().optional(),
});

/** One step `flaky` that fails `failTimes` times, with the given retry policy. */
export function flakyWorkflow(name: string, retry: Partial<RetryPolicy>) {
  const machine = setup({
    types: {} as { input: z.infer<typeof flakyInput>; context: z.infer<typeof flakyInput> },
    actors: { flaky: workStep(retry) },
  }).createMachine({
    id: 'flaky',
    context: ({ input }) => input,
    initial: 'working',
    states: {
      working: {
        invoke: {
          src: 'flaky',
          input: ({ context }) => ({
            name: 'flaky',
            failTimes: context.failTimes,
            failExecutions: context.failExecutions,
            failCategory: context.failCategory,
            retryAfterMs: context.retryAfterMs,
          }),
          onDone: 'done',
        },
      },
      done: { type: 'final' },
    },
  });
  return defineWorkflow({ name, machine, input: flakyInput });
}

/** Waits `delayMs` with an XState `after`, then runs step `mark`. */
export function timerWorkflow() {
  const machine = setup({
    types: {} as { input: { delayMs: number }; context: { delayMs: number } },
    actors: { mark: workStep() },
    delays: { wait: ({ context }) => context.delayMs },
  }).createMachine({
    id: 'timer',
    context: ({ input }) => input,
    initial: 'waiting',
    states: {
      waiting: { after: { wait: 'marking' } },
      marking: { invoke: { src: 'mark', input: { name: 'mark' }, onDone: 'done' } },
      done: { type: 'final' },
    },
  });
  return defineWorkflow({ name: 'test.timer', machine, input: z.object({ delayMs: z.number().int().positive() }) });
}

/** Human in the loop: prepare, then wait for `approve` (or `reject`) with a durable timeout. */
export function approvalWorkflow() {
  const machine = setup({
    types: {} as {
      input: { timeoutMs: number };
      context: { timeoutMs: number; approvals: number; approvedBy?: string };
      events: { type: 'approve'; by: string } | { type: 'reject' } | { type: 'comment' };
    },
    actors: { work: workStep() },
    delays: { approvalTimeout: ({ context }) => context.timeoutMs },
  }).createMachine({
    id: 'approval',
    context: ({ input }) => ({ timeoutMs: input.timeoutMs, approvals: 0 }),
    initial: 'preparing',
    states: {
      preparing: { invoke: { src: 'work', input: { name: 'prepare' }, onDone: 'awaitingApproval' } },
      awaitingApproval: {
        on: {
          approve: {
            target: 'finishing',
            actions: assign({ approvals: ({ context }) => context.approvals + 1, approvedBy: ({ event }) => event.by }),
          },
          reject: 'rejected',
        },
        after: { approvalTimeout: 'expired' },
      },
      finishing: { invoke: { src: 'work', input: { name: 'finish' }, onDone: 'approved' } },
      approved: { type: 'final' },
      rejected: { type: 'final' },
      expired: { type: 'final' },
    },
    output: ({ context }) => ({ approvals: context.approvals, approvedBy: context.approvedBy ?? null }),
  });
  return defineWorkflow({ name: 'test.approval', machine, input: z.object({ timeoutMs: z.number().int().positive() }) });
}

/** A step that hangs until cancelled; the definition's cleanup records the run id. */
export function hangingWorkflow() {
  const machine = setup({ actors: { hang: workStep() } }).createMachine({
    id: 'hanging',
    initial: 'working',
    states: { working: { invoke: { src: 'hang', input: { name: 'hang', hang: true }, onDone: 'done' } }, done: { type: 'final' } },
  });
  return defineWorkflow({
    name: 'test.hanging',
    machine,
    input: z.object({}).passthrough(),
    cleanup: ({ runId }) => {
      cleanups.push(runId);
    },
  });
}

/** A child workflow machine: one step `work-<label>`, failing permanently when asked. */
function childMachine() {
  return setup({
    types: {} as { input: { label: string; fail: boolean }; context: { label: string; fail: boolean } },
    actors: { childWork: workStep() },
  }).createMachine({
    id: 'child',
    context: ({ input }) => input,
    initial: 'working',
    states: {
      working: {
        invoke: {
          src: 'childWork',
          input: ({ context }) => ({ name: `child-${context.label}`, failTimes: context.fail ? 1 : 0, failCategory: 'permanent' as const }),
          onDone: 'done',
        },
      },
      done: { type: 'final' },
    },
    output: ({ context }) => ({ label: context.label }),
  });
}

/** A parent that runs two child machines in parallel; a failing child takes the parent's error path. */
export function parentWorkflow() {
  const child = childMachine();
  type Ctx = { failChild: string | null; results: string[]; childError?: string };
  const region = (label: 'a' | 'b') => ({
    initial: 'running',
    states: {
      running: {
        invoke: {
          id: `child-${label}`,
          src: 'child' as const,
          input: ({ context }: { context: Ctx }) => ({ label, fail: context.failChild === label }),
          onDone: { target: 'finished', actions: assign({ results: ({ context }: { context: Ctx }) => [...context.results, label] }) },
          onError: {
            target: '#parent.childFailed',
            actions: assign({
              childError: ({ event }: { event: { error: unknown } }) => (event.error as { message?: string }).message ?? 'child failed',
            }),
          },
        },
      },
      finished: { type: 'final' as const },
    },
  });
  const machine = setup({
    types: {} as { input: { failChild?: string }; context: Ctx },
    actors: { child },
  }).createMachine({
    id: 'parent',
    context: ({ input }) => ({ failChild: input.failChild ?? null, results: [] }),
    initial: 'children',
    states: {
      children: { type: 'parallel', states: { a: region('a'), b: region('b') } as never, onDone: 'complete' },
      complete: { type: 'final' },
      childFailed: { type: 'final' },
    },
    output: ({ context }) => ({ results: [...context.results].sort(), childError: context.childError ?? null }),
  });
  return defineWorkflow({
    name: 'test.parent',
    machine: machine as unknown as AnyStateMachine,
    input: z.object({ failChild: z.string().optional() }),
  });
}

/** Every durability test workflow, with retry delays short enough for in-process tests. */
export function durabilityWorkflows() {
  return [
    flakyWorkflow('test.flaky', { initialDelayMs: 100, multiplier: 2, maxDelayMs: 1_000, jitter: 0.5, maxAttempts: 4 }),
    flakyWorkflow('test.flaky-slow', { initialDelayMs: 3_000, multiplier: 2, maxDelayMs: 60_000, jitter: 0, maxAttempts: 3 }),
    timerWorkflow(),
    approvalWorkflow(),
    hangingWorkflow(),
    parentWorkflow(),
  ];
}
