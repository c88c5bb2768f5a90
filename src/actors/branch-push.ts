/**
 * The push of an issue run's branch and the record that guards it. Before each push the run records the
 * commit it pushes (the artifact {@link BRANCH_PUSHES}): a run resumed after the push — in a fresh clone
 * on another worker, before its pull request was opened — proves by that commit that the branch is the
 * one it made (github/issue-branch-owner.ts).
 *
 * The record is written fenced (`ctx.saveArtifact(…, { fenced: true })`, DESIGN.md "Ownership"), every
 * time, right before the push, even when it names the commit already: a worker paused past its lease
 * (a stopped process, a long GC) while another worker took the run over is then refused the write and
 * stops without pushing, instead of rewriting the record the new owner relies on and pushing over it.
 * What the fence cannot stop is a pause between that write's commit and git's push: closing that needs
 * the remote to check the lease, which a git remote cannot.
 */
import type { StepContext } from '../state_machine/step.ts';
import type { Workspace, Workspaces } from '../rmapp/workspace.ts';

/**
 * The artifact holding the commits an issue run pushed to its branch (recorded before each push): the
 * run's own evidence that an existing `rmapp/issue-<n>` is the one it made (github/issue-branch-owner.ts).
 */
export const BRANCH_PUSHES = 'branch-pushes';

/** Commits kept in the record: the newest, enough to find one still in the branch. */
const KEPT_PUSHES = 100;

/**
 * The artifact holding the commits a pull-request review run pushed to the pull request's branch,
 * written fenced before each push as {@link BRANCH_PUSHES} is (actors/pr-review.ts `applyChanges`).
 */
export const REVIEW_PUSHES = 'review-pushes';

/** What {@link pushRecorded} needs of the step's context. */
export type PushContext = Pick<StepContext<unknown>, 'signal' | 'getArtifact' | 'saveArtifact'>;

/**
 * Records the workspace's head among the run's pushes (the artifact `record`), fenced by the run's
 * lease, then pushes the branch.
 *
 * @throws WorkflowError `RUN_LEFT` (category `cancelled`) when this worker no longer holds the run:
 *   nothing recorded, nothing pushed
 */
export async function pushRecorded(
  ctx: PushContext,
  workspaces: Pick<Workspaces, 'head' | 'push'>,
  ws: Workspace,
  record: typeof BRANCH_PUSHES | typeof REVIEW_PUSHES = BRANCH_PUSHES,
): Promise<void> {
  const sha = await workspaces.head(ws, ctx.signal);
  const pushed = (await ctx.getArtifact<string[]>(record)) ?? [];
  const commits = sha && !pushed.includes(sha) ? [...pushed, sha].slice(-KEPT_PUSHES) : pushed;
  await ctx.saveArtifact(record, commits, { fenced: true });
  await workspaces.push(ws, ctx.signal);
}
