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
