/**
 * Whether the label a delivery is about has left the issue since: GitHub does not deliver in order, and a
 * removal delivered before the labelling finds no run to stop (src/rmapp/server/webhook-handler.ts drops
 * it), so the labelling's own delivery is the last to hear that its author took the label off again
 * (README, "Commands": a mapped label removed stops the run it started).
 */
import type { GitHubOctokit } from './client.ts';

/** The issue as GitHub answers it now (`issues.get`). */
export type IssueNow = Awaited<ReturnType<GitHubOctokit['issues']['get']>>['data'];

/**
 * True when the issue's current labels are known and `label` is not among them (GitHub's label names
 * are unique whatever their case, so case is ignored). An answer without a label list says nothing.
 *
 * @example
 * if (e.label && labelRemoved(issue, e.label)) return { action: 'ignored', runId: null, message: 'label removed since' };
 */
export function labelRemoved(issue: Pick<IssueNow, 'labels'>, label: string): boolean {
  if (!Array.isArray(issue.labels)) return false;
  const wanted = label.toLowerCase();
  return !issue.labels.some((l) => (typeof l === 'string' ? l : l.name)?.toLowerCase() === wanted);
}
