/**
 * The branch an issue's run works on and opens its pull request from. One function, because the
 * machine's context, the analysing step's workspace, the progress comment's link and the demo all
 * name it, and a second spelling would send one of them to another branch.
 */

/**
 * `rmapp/issue-<n>`: one branch per issue, whichever template runs on it, so a run started again for
 * the issue continues the same branch and pull request.
 *
 * @example
 * issueBranch(12); // 'rmapp/issue-12'
 */
export function issueBranch(issueNumber: number): string {
  return `rmapp/issue-${issueNumber}`;
}

/**
 * The issue an issue run's branch belongs to, or null for any other branch: the inverse of
 * {@link issueBranch}, for a review of the draft pull request an issue run opened.
 *
 * @example
 * issueOfBranch('rmapp/issue-12'); // 12
 */
export function issueOfBranch(branch: string): number | null {
  const m = /^rmapp\/issue-([1-9][0-9]{0,9})$/.exec(branch);
  const n = m ? Number(m[1]) : 0;
  return n > 0 && Number.isSafeInteger(n) && issueBranch(n) === branch ? n : null;
}
