/**
 * Whether an issue was closed after a run was asked to work on it: the person who closed it decided
 * the work is not wanted (a duplicate, won't fix, done by hand), and a pull request opened, marked ready
 * or reviewed over that decision is noise on a closed issue. An issue that was already closed when the
 * request was written was asked on knowingly (README, "Commands": asking in a comment works on a
 * closed issue), and one reopened since is open: neither stops a run.
 */
import type { GitHubOctokit } from './client.ts';

/**
 * The issue's `closed_at` when it is closed now and was closed after `requestedAt` (GitHub's times on
 * both sides, so no clock of ours is compared), else null. Null too when `requestedAt` is unknown (a run
 * started before it was recorded): nothing tells a close while it worked from one before.
 *
 * @example
 * const closedAt = await closedSince(github, { owner, repo }, 12, input.requestedAt);
 * if (closedAt) throw new WorkflowError(`the issue was closed at ${closedAt} …`, { code: 'ISSUE_CLOSED', category: 'validation' });
 */
export async function closedSince(
  github: GitHubOctokit,
  repo: { owner: string; repo: string },
  issueNumber: number,
  requestedAt: string | null | undefined,
): Promise<string | null> {
  if (!requestedAt) return null;
  const { data: issue } = await github.issues.get({ ...repo, issue_number: issueNumber });
  if (issue.state !== 'closed' || !issue.closed_at) return null;
  return Date.parse(issue.closed_at) > Date.parse(requestedAt) ? issue.closed_at : null;
}
