/**
 * `@rmapp implement` on an issue, or a label mapped to a template: the issue's next run starts, unless
 * one is working on it, the issue was closed or the label removed since, or its settings are wrong.
 */
import type { DeliveryOutcome, GitHubEventInput } from '../machines/github-delivery.ts';
import type { RunInfo } from '../state_machine/run-info.ts';
import { helpText } from '../rmapp/commands.ts';
import { closedSince } from '../rmapp/github/issue-closed.ts';
import { labelRemoved } from '../rmapp/github/label-removed.ts';
import type { DeliveryContext } from './delivery-context.ts';
import type { Intent } from './delivery-intent.ts';

/** Starts the issue's run for an `implement` (a command or a mapped label), or says why it did not. */
export async function implementIssue(
  ctx: DeliveryContext,
  e: GitHubEventInput,
  key: string,
  intent: Extract<Intent, { kind: 'implement' }>,
): Promise<DeliveryOutcome> {
  const { deps, repoOf, details, whereIs, reply, settingsOr } = ctx;
  const executor = deps.executor();
  const subject = ctx.subjectOf(e);
  if (e.isPullRequest)
    return reply(
      e,
      key,
      `\`implement\` works on issues; on a pull request, mention me with what to change (\`@${deps.botName} rename the flag to --sep\`).\n\n${helpText(deps.botName)}`,
    );
  // The newest run first, then the unfinished one: a run another delivery starts in between is
  // seen as unfinished, and one started after both reads has the successor key of the same newest
  // run as this start (executor.ts `successorKey`), so only one of the two starts.
  const newest = await executor.latestRun(subject);
  const own = executor.runIdFor(subject, e.deliveryId);
  const busy = (active: RunInfo) =>
    reply(
      e,
      key,
      `a run is already working on this issue (${whereIs(active.state)}). Comment \`@${deps.botName} cancel\` first to start over.${details(active.id, [`- status: ${active.status}, state \`${JSON.stringify(active.state)}\``])}`,
    );
  /** The run another delivery started meanwhile (finished already, if it was that quick). */
  const otherRun = async () => {
    const now = (await executor.activeRun(subject)) ?? (await executor.latestRun(subject));
    return now && now.id !== own ? now : null;
  };
  const active = await executor.activeRun(subject);
  // A re-execution of this step (after a crash) finds the run it started itself: not a conflict.
  if (active && active.id !== own) return busy(active);
  // Closed after the request was written (its delivery came late): the close already said no.
  const closedAt = await closedSince(deps.github, repoOf(e), e.number, e.writtenAt);
  if (closedAt && !(await executor.activeRun(subject)))
    return reply(e, key, `the issue was closed after you asked, so I did not start. Reopen it and ask again if you still want it.`);
  const checked = await settingsOr(e, key);
  if (checked.refused) return checked.refused;
  // A label taken off again before this delivery acted: its removal, delivered first, found no run
  // to stop and was dropped, so this is where it is heard (github/label-removed.ts). Nothing said:
  // whoever removed it knows. Read last before the start, after the settings: a removal delivered
  // while they were read found no run yet either. Not for a re-execution of this step that already
  // started its run (`active` is then its own): the removal, delivered since, stops that run.
  if (e.event === 'issues' && e.label && !active) {
    const { data: issue } = await deps.github.issues.get({ ...repoOf(e), issue_number: e.number });
    if (labelRemoved(issue, e.label))
      return { action: 'ignored', runId: null, message: `label ${e.label} was removed since it was added: nothing started` };
  }
  // Another delivery's start of the issue's next run, whatever its template, comes back as its id.
  const runId = await executor.startIssueWorkflow({
    owner: e.owner,
    repo: e.repo,
    issueNumber: e.number,
    template: intent.template,
    requestedBy: e.author,
    options: intent.options,
    key: e.deliveryId,
    repositoryMaxTestAttempts: checked.settings?.config.limits.maxTestAttempts,
    after: newest?.id ?? null,
    requestedAt: e.writtenAt,
    label: e.event === 'issues' ? e.label : null,
  });
  if (runId !== own) {
    const now = await otherRun();
    if (now) return busy(now);
  }
  // A label taken off between the read above and the start: its removal, delivered meanwhile, found no
  // run yet and was dropped. Read once more now that the run is stored: a removal made after this read
  // is delivered after it too, and then finds the run to stop (delivery-stop.ts `stopRuns`) — one of
  // the two always sees the other. A re-execution of this step reads again as well, and a cancel of a
  // run cancelled already changes nothing.
  if (e.event === 'issues' && e.label && runId === own) {
    const { data: issue } = await deps.github.issues.get({ ...repoOf(e), issue_number: e.number });
    if (labelRemoved(issue, e.label)) {
      await executor.cancel(own, `label ${e.label} was removed while its run was starting`);
      return { action: 'cancelled', runId: own, message: `label ${e.label} was removed while its run was starting: cancelled it` };
    }
  }
  return { action: 'started', runId, message: `started ${intent.template} as ${runId}` };
}
