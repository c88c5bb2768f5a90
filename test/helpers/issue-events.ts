/**
 * `issues` deliveries the examples package has no copy of (`closed`), or that a test needs by one field
 * (`unlabeled`), built from its examples and typed by GitHub's webhook schema (@octokit/webhooks-types),
 * so a payload GitHub would not send does not compile.
 */
import type { IssuesClosedEvent, IssuesReopenedEvent, IssuesUnlabeledEvent } from '@octokit/webhooks-types';
import { example } from './service-world.ts';

/** An `issues.closed` delivery: issue `number` closed by `by` (a user) at `closedAt` (default now). */
export function issueClosed(number: number, by = 'alice', closedAt = new Date().toISOString()): IssuesClosedEvent {
  const reopened = example('issues', 'reopened') as IssuesReopenedEvent;
  return {
    ...reopened,
    action: 'closed',
    issue: { ...reopened.issue, number, state: 'closed', closed_at: closedAt, updated_at: closedAt },
    sender: { ...reopened.sender, login: by, type: 'User' },
  };
}

/** An `issues.unlabeled` delivery: `label` removed from issue `number` by `by` (a user), now. */
export function unlabelled(number: number, label: string, by = 'alice'): IssuesUnlabeledEvent {
  const p = example('issues', 'unlabeled') as IssuesUnlabeledEvent;
  const now = new Date().toISOString();
  return {
    ...p,
    issue: { ...p.issue, number, state: 'open', closed_at: null, updated_at: now },
    label: { ...(p.label as NonNullable<IssuesUnlabeledEvent['label']>), name: label },
    sender: { ...p.sender, login: by, type: 'User' },
  };
}
