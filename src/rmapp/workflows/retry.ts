/**
 * What `@bot retry` does with a failed run — decided here, told truthfully to the person who asked.
 *
 * The engine's `retry` re-runs a step that failed without the machine handling it; the GitHub
 * workflows handle every failure themselves by going to their `failed` state (a test failure is the
 * machine's own decision, not a step's), so the engine refuses to "retry" them (it would only fail
 * again). The service instead continues the work in a new run:
 *
 * - an issue run that had a plan (it failed implementing, testing, opening the PR, or its tests never
 *   passed): a new run of the same template on the same branch with that plan, no new analysis or
 *   approval, and a fresh test budget; the agent sees the test output the last run failed with;
 * - an issue run that failed before it had a plan: the same template again from the start;
 * - a review run: the same comment or review answered again;
 * - a rejected plan, an approval that timed out, a fork's pull request, a review refused because the
 *   pull request is not rmapp's (unless the operator has opted its repository in since): not retried —
 *   the reply says why and what to do instead, once. A review started again only to be refused again
 *   answered twice (the retry's "retrying", then the same refusal).
 */
import type { RunInfo } from '../../state_machine/run-info.ts';
import { TEMPLATE_WORKFLOWS, type TemplateName } from '../../machines/issue-templates.ts';
import { mayPushAnyBranch, NOT_OWN_BRANCH } from '../github/head-branch.ts';
import { ISSUE_BRANCH_TAKEN } from '../github/issue-branch-owner.ts';

/** What a retry of a failed run will do. */
export type RetryDecision =
  | { kind: 'continue'; template: TemplateName; plan: string; lastTestOutput: string | null; pushes: string[] }
  | { kind: 'restart-issue'; template: TemplateName }
  | { kind: 'review-comment'; commentId: number; source?: 'conversation' }
  | { kind: 'review'; reviewId: number }
  | { kind: 'refuse'; why: string };

/** Errors whose test output the next run's agent should see (what it has to fix). */
const TEST_FAILURES = new Set(['TESTS_FAILED', 'NO_CHANGE']);

/** The template whose workflow a run ran, or null for another workflow. */
export function templateOfWorkflow(workflow: string): TemplateName | null {
  const found = Object.entries(TEMPLATE_WORKFLOWS).find(([, w]) => w === workflow);
  return found ? (found[0] as TemplateName) : null;
}

/** The commit ids of a stored list (anything else is dropped). */
function shas(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string' && /^[0-9a-f]{40,64}$/.test(v)) : [];
}

/**
 * The commits an issue run and the runs before it pushed to the issue's branch: those it was handed
 * (`branchPushes`, `continueFrom.pushes`) and its own `branch-pushes` record, oldest first and its own
 * last, at most 200 — the newest, the ones the branch is likeliest to hold (its own first, a long chain
 * of retries dropped the run's own pushes for its ancestors'). What the next run of the issue is handed,
 * by `@rmapp retry` and by `@rmapp implement` asked again: its evidence that the branch is rmapp's.
 */
export async function pushesOfRun(run: Pick<RunInfo, 'input'>, artifact: (name: string) => Promise<unknown>): Promise<string[]> {
  const input = run.input as { branchPushes?: unknown; continueFrom?: { pushes?: unknown } } | null;
  const pushes = [...shas(input?.branchPushes), ...shas(input?.continueFrom?.pushes), ...shas(await artifact('branch-pushes'))];
  return [...new Set(pushes)].slice(-200);
}

/** A refusal's own message as a reply quotes it: without the machine's `stage: ` prefix, one full stop. */
function refusalText(message: string | undefined, fallback: string): string {
  return `${(message ?? fallback).replace(/^[a-z][A-Za-z]*: /, '').replace(/\.$/, '')}.`;
}

/**
 * Decides the retry of the failed `run`. `artifact` reads the run's artifacts (`plan`, `test-output`);
 * `bot` is the bot's name for the advice in a refusal; `reviewAnyBranch` the operator's setting now (a
 * review refused as not rmapp's is retried only where it has opted the repository in since).
 */
export async function decideRetry(
  run: Pick<RunInfo, 'workflow' | 'input' | 'error'>,
  artifact: (name: string) => Promise<unknown>,
  bot: string,
  reviewAnyBranch?: readonly string[] | undefined,
): Promise<RetryDecision> {
  const code = run.error?.code ?? '';
  // A branch named like rmapp's that someone else made: the same branch refuses the same way.
  if (code === ISSUE_BRANCH_TAKEN)
    return {
      kind: 'refuse',
      why: `${refusalText(run.error?.message, 'the branch is not one rmapp created')} A retry would stop the same way: delete or rename the branch first, then ask again.`,
    };
  const template = templateOfWorkflow(run.workflow);
  if (template) {
    const again = `\`@${bot} implement${template === 'simple' ? '' : ` ${template}`}\``;
    if (code === 'PLAN_REJECTED')
      return { kind: 'refuse', why: `the plan was rejected, so there is nothing to retry. Ask ${again} for a new plan.` };
    if (code === 'APPROVAL_TIMEOUT')
      return {
        kind: 'refuse',
        why: `nobody approved the plan in time, so there is nothing to retry. Ask ${again} for a new plan, and approve it with \`@${bot} approve\`.`,
      };
    const input = run.input as { continueFrom?: { plan?: string } } | null;
    const saved = await artifact('plan');
    const plan = typeof saved === 'string' && saved ? saved : input?.continueFrom?.plan;
    if (!plan) return { kind: 'restart-issue', template };
    const output = TEST_FAILURES.has(code) ? await artifact('test-output') : null;
    // What the failed run pushed (and the runs it continued): the new run's evidence that the branch is
    // rmapp's when the failed run pushed before its draft opened (github/issue-branch-owner.ts).
    return {
      kind: 'continue',
      template,
      plan,
      lastTestOutput: typeof output === 'string' ? output : null,
      pushes: await pushesOfRun(run, artifact),
    };
  }
  // Refused by what the pull request or the comment is, not by what happened: a retry reads the same
  // and stops the same way (a fork's branch, the default branch, an author who cannot steer).
  if (code === 'FORK_PULL_REQUEST' || code === 'DEFAULT_BRANCH_HEAD' || code === 'NOT_ALLOWED')
    return {
      kind: 'refuse',
      why: `${refusalText(run.error?.message, 'the pull request comes from a fork')} A retry would stop the same way.`,
    };
  // Someone else's pull request: refused again unless the operator has opted the repository in since.
  const at = run.input as { owner?: unknown; repo?: unknown } | null;
  if (
    code === NOT_OWN_BRANCH &&
    !(typeof at?.owner === 'string' && typeof at.repo === 'string' && mayPushAnyBranch(reviewAnyBranch, at.owner, at.repo))
  )
    return {
      kind: 'refuse',
      why: `${refusalText(run.error?.message, "this pull request's branch is not one rmapp created")} A retry would stop the same way unless the operator sets \`reviewAnyBranch\` first.`,
    };
  const i = run.input as { commentId?: unknown; reviewId?: unknown; source?: unknown } | null;
  if (run.workflow === 'PRReview' && typeof i?.commentId === 'number')
    // A request in the PR's conversation is an issue comment, numbered apart from review comments.
    return { kind: 'review-comment', commentId: i.commentId, ...(i.source === 'conversation' ? { source: 'conversation' as const } : {}) };
  if (run.workflow === 'ReviewResponse' && typeof i?.reviewId === 'number') return { kind: 'review', reviewId: i.reviewId };
  return { kind: 'refuse', why: `runs of ${run.workflow} are not retried from GitHub; ask again as you did the first time.` };
}
