/**
 * The steps of GitHubDelivery: what a comment, label or review asks for, who may ask it, and doing
 * it through the {@link WorkflowExecutor}. Every effect is idempotent with the delivery: runs start
 * with the delivery as key, signals carry it as dedupe key, replies carry it as comment marker.
 */
import type { GitHubEventInput } from '../machines/github-delivery.ts';
import type { GitHubOctokit } from '../rmapp/github/client.ts';
import { canSteer, endsWithServiceMarker, permissionOf, upsertComment } from '../rmapp/github/writes.ts';
import { withSignal } from '../rmapp/github/abortable.ts';
import { closedSince } from '../rmapp/github/issue-closed.ts';
import { labelRemoved } from '../rmapp/github/label-removed.ts';
import { cancelledAfter, writtenBefore, writtenBeforeRequest } from './delivery-order.ts';
import { conversationRequest, helpText, mentions, parseCommand, type Command } from '../rmapp/commands.ts';
import type { TemplateName } from '../machines/issue-templates.ts';
import { issueOfBranch } from '../machines/issue-branch.ts';
import type { Subject, WorkflowExecutor } from '../rmapp/workflows/executor.ts';
import { step } from '../state_machine/step.ts';
import { RunNotFoundError, ValidationError } from '../state_machine/errors.ts';
import { REPOSITORY_CONFIG, type RepositorySettings } from '../rmapp/repository-config.ts';
import type { RunInfo } from '../state_machine/run-info.ts';
import { codeSpan, detailsSection, errorText, failureReason, stageLabel } from '../rmapp/run-texts.ts';
import type { DeliveryOutcome, GitHubDeliverySteps } from '../machines/github-delivery.ts';

export interface GitHubDeliveryDeps {
  github: GitHubOctokit;
  /** Resolved lazily: the executor needs the engine, which needs these steps. */
  executor: () => WorkflowExecutor;
  botName: string;
  /** Label → template. */
  labels: Record<string, TemplateName>;
  /** Base URL of the dashboard, for links in replies. */
  publicUrl?: string | undefined;
  /**
   * The repository's `.github/rmapp.yml` (and instruction files) on its default branch, read before a
   * run starts: a wrong file is answered once and nothing runs. Absent: not checked here (the run's
   * steps still read it).
   */
  repositorySettings?: ((owner: string, repo: string, signal?: AbortSignal) => Promise<RepositorySettings>) | undefined;
}

/**
 * What an event asks for. `closed`: the issue was closed, which stops its runs asked for before;
 * `unlabeled`: a mapped label was removed, which stops the runs it started.
 */
export type Intent =
  Command | { kind: 'review' } | { kind: 'ignore'; reason: string } | { kind: 'closed' } | { kind: 'unlabeled'; label: string };

/** Pure: the intent of an event. */
export function intentOf(event: GitHubEventInput, deps: Pick<GitHubDeliveryDeps, 'botName' | 'labels'>): Intent {
  if (event.event === 'issues' && event.action === 'closed') return { kind: 'closed' };
  if (event.event === 'issues' && event.action === 'unlabeled')
    return event.label ? { kind: 'unlabeled', label: event.label } : { kind: 'ignore', reason: 'no label' };
  if (event.event === 'issues') {
    const template = event.label ? deps.labels[event.label] : undefined;
    return template
      ? { kind: 'implement', template, options: {} }
      : { kind: 'ignore', reason: `label ${event.label} is not mapped to a template` };
  }
  if (event.event === 'pull_request_review' || event.event === 'pull_request_review_comment') return { kind: 'review' };
  // `@rmapp <request>` in a pull request's conversation continues on its branch like a review comment.
  if (event.isPullRequest && conversationRequest(event.body, deps.botName)) return { kind: 'review' };
  return parseCommand(event.body, deps.botName) ?? { kind: 'ignore', reason: 'no command' };
}

/**
 * Intents anyone may cause. `closed`: GitHub let its author close the issue (its own author may, without
 * write access), and the run would stop at its next pull request step anyway (github/issue-closed.ts).
 */
const READ_ONLY = new Set(['help', 'status', 'ignore', 'closed']);

export function githubDeliverySteps(deps: GitHubDeliveryDeps): GitHubDeliverySteps {
  // Each execution acts through a client bound to its step's signal: an aborted step reaches GitHub no more.
  const actions = (signal: AbortSignal) => deliveryActions({ ...deps, github: withSignal(deps.github, signal) }, signal);
  return {
    authorize: step(async ({ input, signal }) => actions(signal).authorize(input), { kind: 'github' }),
    act: step(async ({ input, idempotencyKey, signal }) => actions(signal).act(input, idempotencyKey), { kind: 'github' }),
    refuse: step(async ({ input, idempotencyKey, signal }) => actions(signal).refuse(input, idempotencyKey), { kind: 'github' }),
  };
}

/** What the steps of GitHubDelivery do, with `deps.github` the client of one step execution and its signal. */
function deliveryActions(deps: GitHubDeliveryDeps, signal: AbortSignal) {
  const repoOf = (e: GitHubEventInput) => ({ owner: e.owner, repo: e.repo });
  const subjectOf = (e: GitHubEventInput): Subject => ({
    owner: e.owner,
    repo: e.repo,
    kind: e.isPullRequest ? 'pulls' : 'issues',
    number: e.number,
  });
  const link = (runId: string) =>
    deps.publicUrl ? `[${runId}](${deps.publicUrl.replace(/\/$/, '')}/runs/${encodeURIComponent(runId)})` : `\`${runId}\``;
  /** The run id and its dashboard link (most people cannot open it) stay folded, after the answer. */
  const details = (runId: string, extra: string[] = []) =>
    `\n\n${detailsSection('Details', [`- run: ${link(runId)}`, ...extra]).join('\n')}`;
  /** Where a run is, in words: its stage's label (a nested state's engine name is only in Details). */
  const whereIs = (state: unknown) => (typeof state === 'string' ? stageLabel(state).toLowerCase() : 'working');
  /**
   * What a run waiting for its concurrency key's slot waits for, in words — the run working on the issue
   * or pull request the key names (a review of an issue run's draft waits for the issue's run) — or null
   * for a run that is not queued. "pending (working)" said nothing of why nothing happened.
   */
  const queuedText = async (runId: string): Promise<string | null> => {
    const executor = deps.executor();
    const { queue } = await executor.status(runId);
    if (!queue) return null;
    const place = queue.position === 1 ? 'first in line' : `number ${queue.position} in line`;
    const named = /^(issue|pull):([^/]+)\/(.+)#(\d+)$/.exec(queue.key);
    if (!named) return `the run is **pending**: it waits for its turn (${place}).`;
    const [, kind, owner, repo, number] = named as unknown as [string, string, string, string, string];
    const where = `${kind === 'issue' ? 'issue' : 'pull request'} #${number}`;
    const runs = await executor.activeRuns({ owner, repo, kind: kind === 'issue' ? 'issues' : 'pulls', number: Number(number) }, 20);
    const working = runs.filter((r) => r.status !== 'pending').at(-1);
    return working
      ? `the run is **pending**: it waits for its turn (${place}) behind the run on ${where} (now: ${whereIs(working.state)}); it starts once that run finishes.`
      : `the run is **pending**: it waits for its turn (${place}) behind the runs on ${where}.`;
  };
  const reply = async (
    e: GitHubEventInput,
    key: string,
    text: string,
    outcome: Omit<DeliveryOutcome, 'message'> = { action: 'replied', runId: null },
  ): Promise<DeliveryOutcome> => {
    await upsertComment(deps.github, repoOf(e), e.number, key, `@${e.author} ${text}`);
    return { ...outcome, message: text };
  };
  /**
   * The issue whose run owns the pull request's branch (`rmapp/issue-<n>` of this repository: the draft
   * an issue run opened), so that a review of it queues behind that issue's runs (github-workflows.ts
   * `perPull`): the two pushed to one branch at once, and the issue run's push was rejected.
   */
  const branchIssueOf = async (e: GitHubEventInput): Promise<number | null> => {
    const { data: pr } = await deps.github.pulls.get({ ...repoOf(e), pull_number: e.number });
    if (pr.head.repo?.full_name?.toLowerCase() !== `${e.owner}/${e.repo}`.toLowerCase()) return null;
    return issueOfBranch(pr.head.ref);
  };
  /**
   * The answer to a review whose summary (its own text) mentions the bot while none of its comments
   * does: only comments are requests (a review's summary has no comment of its own to answer or read
   * again), so the reviewer is told where to ask.
   */
  const reviewSummaryText = () =>
    `I act on the comments of a review, not on its summary, so I changed nothing. Ask in a review comment on the code, or in this pull request's conversation: \`@${deps.botName.replace(/\[bot\]$/, '')} <what to change>\`.`;
  /** Review comments of a review that mention the bot. */
  const botComments = async (e: GitHubEventInput, reviewId: number) => {
    const comments = await deps.github.paginate(deps.github.pulls.listCommentsForReview, {
      ...repoOf(e),
      pull_number: e.number,
      review_id: reviewId,
      per_page: 100,
    });
    // The service's own comments (ending with its marker) are not requests, as on their own events.
    return comments.filter((c) => mentions(c.body, deps.botName) && !endsWithServiceMarker(c.body)).map((c) => c.id);
  };

  /** The repository's settings, or the one reply a wrong `.github/rmapp.yml` gets (nothing runs). */
  const settingsOr = async (
    e: GitHubEventInput,
    key: string,
  ): Promise<{ settings: RepositorySettings | null; refused?: undefined } | { refused: DeliveryOutcome }> => {
    if (!deps.repositorySettings) return { settings: null };
    try {
      return { settings: await deps.repositorySettings(e.owner, e.repo, signal) };
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      const problems = err.issues.filter((i) => i.path !== REPOSITORY_CONFIG);
      const list = problems.length
        ? problems.map((i) => `- \`${i.path}\`: ${i.message}`).join('\n')
        : err.message.replace(`${REPOSITORY_CONFIG} `, '');
      const text = `I did not start: \`${REPOSITORY_CONFIG}\` on the default branch is invalid, so nothing ran.\n\n${list}\n\nFix it on the default branch, then ask again.`;
      return { refused: await reply(e, key, text, { action: 'replied', runId: null }) };
    }
  };

  /** The answer to a request a later `cancel` overtook (delivery-order.ts `cancelledAfter`). */
  const overtaken = (e: GitHubEventInput, key: string, by: string) =>
    reply(e, key, `@${by}'s \`cancel\`, written after this request, reached me before it, so I did not start.`);

  const act = async (e: GitHubEventInput, key: string): Promise<DeliveryOutcome> => {
    const intent = intentOf(e, deps);
    const executor = deps.executor();
    const subject = subjectOf(e);
    if (intent.kind === 'implement' || intent.kind === 'review' || intent.kind === 'retry') {
      // Not for a re-execution of this step that already started its run (a crash after the start).
      const started = await executor.status(executor.runIdFor(subject, e.deliveryId)).then(
        () => true,
        (err: unknown) => {
          if (err instanceof RunNotFoundError) return false;
          throw err;
        },
      );
      const by = started ? null : await cancelledAfter(executor, deps.botName, e);
      if (by) return overtaken(e, key, by);
    }
    switch (intent.kind) {
      case 'ignore':
        return { action: 'ignored', runId: null, message: intent.reason };
      case 'help':
        return reply(e, key, `${intent.reason ? `${intent.reason}\n\n` : ''}${helpText(deps.botName)}`);
      case 'implement': {
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
        return { action: 'started', runId, message: `started ${intent.template} as ${runId}` };
      }
      case 'approve':
      case 'reject': {
        const active = await executor.activeRun(subject);
        if (!active || active.state !== 'awaitingApproval') return reply(e, key, `there is no plan waiting for approval here.`);
        // A late or redelivered comment written before this plan was posted (another run's, or before
        // this one's analysis ended) is not about it.
        const posted = await executor.enteredAt(active.id, 'awaitingApproval');
        if (writtenBefore(e, posted))
          return reply(
            e,
            key,
            `your \`${intent.kind}\` was written before the plan waiting now was posted (run ${link(active.id)}), so I did not apply it to that plan. If you ${intent.kind} it, comment \`@${deps.botName} ${intent.kind}\` again.`,
          );
        await executor.signal(active.id, { type: intent.kind, by: e.author }, `delivery:${e.deliveryId}`);
        return { action: 'signalled', runId: active.id, message: `${intent.kind} sent to ${active.id}` };
      }
      case 'cancel': {
        // Every unfinished run that existed when the comment was written (the one working and those
        // queued behind it; a PR can have many), oldest first: a run queued since is not what it asked
        // to stop. Checking only the newest cancelled a queued review while the working one pushed.
        const runs = await executor.activeRuns(subject, 1_000);
        if (!runs.length) return reply(e, key, 'there is no run to cancel here.');
        const targets = runs.filter((r) => !writtenBeforeRequest(e, r)).reverse();
        if (!targets.length)
          return reply(
            e,
            key,
            `your \`cancel\` was written before run ${link((runs.at(-1) as RunInfo).id)} started, so I did not cancel it. If you want it cancelled, comment \`@${deps.botName} cancel\` again.`,
          );
        const results: { message: string }[] = [];
        for (const run of targets) results.push(await executor.cancel(run.id, `cancelled by @${e.author} on GitHub`));
        const first = targets[0] as RunInfo;
        const text =
          targets.length === 1
            ? `cancelled the run.${details(first.id)}`
            : `cancelled ${targets.length} runs: the one working and those queued behind it.${details(
                first.id,
                targets.slice(1).map((r) => `- also: ${link(r.id)}`),
              )}`;
        return reply(e, key, text, { action: 'cancelled', runId: first.id }).then((o) => ({
          ...o,
          message: results.map((r) => r.message).join(' '),
        }));
      }
      case 'closed':
      case 'unlabeled':
        return stopRuns(e, key, subject, intent);
      case 'retry':
        return retry(e, key, subject);
      case 'status': {
        const run = await executor.latestRun(subject);
        if (!run) return reply(e, key, 'no run has worked on this yet.');
        const queued = run.status === 'pending' ? await queuedText(run.id) : null;
        if (queued) return reply(e, key, `${queued}${details(run.id)}`, { action: 'replied', runId: run.id });
        const error = run.error ? `: ${failureReason(run.error)}` : '';
        const extra = [
          `- state: \`${JSON.stringify(run.state)}\``,
          ...(run.error ? [`- error: \`${run.error.category}\` ${codeSpan(run.error.message)}`] : []),
        ];
        return reply(e, key, `the run is **${run.status}** (${whereIs(run.state)})${error}.${details(run.id, extra)}`, {
          action: 'replied',
          runId: run.id,
        });
      }
      case 'review': {
        if (e.event === 'issue_comment') {
          // One run per pull request at a time: the PRReview queues behind a running one (its concurrency key).
          const runId = await executor.startReviewComment({
            owner: e.owner,
            repo: e.repo,
            pullNumber: e.number,
            commentId: e.commentId as number,
            key: e.deliveryId,
            branchIssue: await branchIssueOf(e),
            source: 'conversation',
          });
          return { action: 'started', runId, message: `PRReview for conversation comment ${e.commentId}` };
        }
        const reviewId = e.reviewId;
        const ids = reviewId ? await botComments(e, reviewId) : [];
        if (e.event === 'pull_request_review_comment') {
          // A review with several comments for the bot is answered as one (ReviewResponse) by its review event.
          if (ids.length > 1)
            return { action: 'ignored', runId: null, message: `comment ${e.commentId} is one of ${ids.length} in review ${reviewId}` };
          const into = await executor.addReviewComment(subject, e.commentId as number);
          if (into) return { action: 'signalled', runId: into, message: `comment ${e.commentId} sent to ${into}` };
          const checked = await settingsOr(e, key);
          if (checked.refused) return checked.refused;
          const runId = await executor.startReviewComment({
            owner: e.owner,
            repo: e.repo,
            pullNumber: e.number,
            commentId: e.commentId as number,
            key: e.deliveryId,
            branchIssue: await branchIssueOf(e),
          });
          return { action: 'started', runId, message: `PRReview for comment ${e.commentId}` };
        }
        if (ids.length === 0) {
          // The request is in the review's summary only: GitHub notified the bot of it, and silence left
          // the reviewer waiting for a change that never came.
          if (mentions(e.body, deps.botName)) return reply(e, key, reviewSummaryText());
          return { action: 'ignored', runId: null, message: `review ${reviewId} has no comment for the bot` };
        }
        if (ids.length === 1) {
          const into = await executor.addReviewComment(subject, ids[0] as number);
          if (into) return { action: 'signalled', runId: into, message: `comment ${ids[0]} sent to ${into}` };
          const checked = await settingsOr(e, key);
          if (checked.refused) return checked.refused;
          const runId = await executor.startReviewComment({
            owner: e.owner,
            repo: e.repo,
            pullNumber: e.number,
            commentId: ids[0] as number,
            key: e.deliveryId,
            branchIssue: await branchIssueOf(e),
          });
          return { action: 'started', runId, message: `PRReview for comment ${ids[0]}` };
        }
        const checked = await settingsOr(e, key);
        if (checked.refused) return checked.refused;
        const runId = await executor.startReview({
          owner: e.owner,
          repo: e.repo,
          pullNumber: e.number,
          reviewId: reviewId as number,
          key: e.deliveryId,
          branchIssue: await branchIssueOf(e),
        });
        return { action: 'started', runId, message: `ReviewResponse for ${ids.length} comments of review ${reviewId}` };
      }
    }
  };

  /**
   * An issue closed, or a mapped label removed: the issue's unfinished runs asked for before it (for a
   * label, those that label started) are cancelled — a run waiting for plan approval too — and the one
   * who did it is told once. Nothing to stop: nothing said (most issues closed never had a run).
   */
  const stopRuns = async (
    e: GitHubEventInput,
    key: string,
    subject: Subject,
    intent: { kind: 'closed' } | { kind: 'unlabeled'; label: string },
  ): Promise<DeliveryOutcome> => {
    const executor = deps.executor();
    const runs = (await executor.activeRuns(subject, 1_000))
      .filter((r) => !writtenBeforeRequest(e, r))
      .filter((r) => intent.kind === 'closed' || (r.input as { label?: unknown } | null)?.label === intent.label)
      .reverse();
    const what = intent.kind === 'closed' ? 'closing the issue' : `removing the label ${codeSpan(intent.label)}`;
    if (!runs.length) return { action: 'ignored', runId: null, message: `${what}: no unfinished run to stop` };
    const reason = intent.kind === 'closed' ? `the issue was closed by @${e.author}` : `label ${intent.label} removed by @${e.author}`;
    for (const run of runs) await executor.cancel(run.id, reason);
    const first = runs[0] as RunInfo;
    const again =
      intent.kind === 'closed'
        ? `Reopen the issue and comment \`@${deps.botName} implement\` to start again.`
        : `Add the label again, or comment \`@${deps.botName} implement\`, to start again.`;
    const text = `${what} stopped ${runs.length === 1 ? 'the run working on it' : `the ${runs.length} runs working on it`}; nothing more will be pushed, and a draft pull request it opened stays a draft. ${again}${details(
      first.id,
      runs.slice(1).map((r) => `- also: ${link(r.id)}`),
    )}`;
    return reply(e, key, text, { action: 'cancelled', runId: first.id });
  };

  /** `@bot retry`: continues the last run if it failed, in a new run, and says truthfully what it does (src/rmapp/workflows/retry.ts). */
  const retry = async (e: GitHubEventInput, key: string, subject: Subject): Promise<DeliveryOutcome> => {
    const executor = deps.executor();
    const active = await executor.activeRun(subject);
    // A re-execution of this step finds the run it started itself: answered as the first time.
    const mine = executor.runIdFor(subject, e.deliveryId);
    if (active && active.id !== mine) return reply(e, key, `run ${link(active.id)} is still going here; there is nothing to retry yet.`);
    // The run this request retries: the newest other than the one a re-execution of this step started.
    const latest = await latestBefore(subject, mine);
    if (!latest) return reply(e, key, 'no run has worked on this yet, so there is nothing to retry.');
    if (latest.status !== 'failed')
      return reply(
        e,
        key,
        `the last run here (${link(latest.id)}) ${latest.status === 'succeeded' ? 'succeeded' : `was ${latest.status}`}; there is nothing to retry.`,
      );
    const decision = await executor.decideRetry(latest, deps.botName);
    if (decision.kind !== 'refuse') {
      const checked = await settingsOr(e, key);
      if (checked.refused) return checked.refused;
    }
    // The message may quote what the agent or the tests printed: a code span, never mentions or links.
    const failure = latest.error ? ` It failed with: ${errorText(latest.error)}` : '';
    const started = (runId: string, text: string): Promise<DeliveryOutcome> => reply(e, key, text, { action: 'retried', runId });
    // Another `retry` of the same failed run got there first: its run is the one retry (engine idempotency).
    const already = (runId: string): Promise<DeliveryOutcome> =>
      reply(e, key, `run ${link(runId)} is already retrying run ${link(latest.id)}; I did not start another.`, {
        action: 'replied',
        runId,
      });
    switch (decision.kind) {
      case 'refuse':
        return reply(e, key, `I cannot retry run ${link(latest.id)}: ${decision.why}`);
      case 'continue':
      case 'restart-issue': {
        const input = latest.input as { requestedBy?: string; maxTestAttempts?: number; approvalTimeoutMs?: number };
        // The successor of the failed run, as an `implement` deciding at the same moment starts it: one of
        // the two starts (executor.ts `successorKey`), and the other's comes back as its id.
        const runId = await executor.startIssueWorkflow({
          owner: e.owner,
          repo: e.repo,
          issueNumber: e.number,
          template: decision.template,
          requestedBy: e.author,
          options: { maxTestAttempts: input.maxTestAttempts, approvalTimeoutMs: input.approvalTimeoutMs },
          key: e.deliveryId,
          continueFrom:
            decision.kind === 'continue' ? { runId: latest.id, plan: decision.plan, lastTestOutput: decision.lastTestOutput } : undefined,
          retryOf: latest.id,
          after: latest.id,
          requestedAt: e.writtenAt,
        });
        if (runId !== mine) return already(runId);
        const rounds = input.maxTestAttempts ?? 3;
        return started(
          runId,
          decision.kind === 'continue'
            ? `retrying: run ${link(runId)} continues run ${link(latest.id)} on its branch with the same plan — implementing again, then up to ${rounds} test round${rounds === 1 ? '' : 's'}.${failure}`
            : `retrying from the start: run ${link(latest.id)} failed before it had a plan, so run ${link(runId)} analyses and plans again.${failure}`,
        );
      }
      case 'review-comment': {
        const runId = await executor.startReviewComment({
          owner: e.owner,
          repo: e.repo,
          pullNumber: e.number,
          commentId: decision.commentId,
          key: e.deliveryId,
          branchIssue: await branchIssueOf(e),
          retryOf: latest.id,
          ...(decision.source ? { source: decision.source } : {}),
        });
        if (runId !== mine) return already(runId);
        return started(runId, `retrying: run ${link(runId)} answers review comment ${decision.commentId} again.${failure}`);
      }
      case 'review': {
        const runId = await executor.startReview({
          owner: e.owner,
          repo: e.repo,
          pullNumber: e.number,
          reviewId: decision.reviewId,
          key: e.deliveryId,
          branchIssue: await branchIssueOf(e),
          retryOf: latest.id,
        });
        if (runId !== mine) return already(runId);
        return started(runId, `retrying: run ${link(runId)} answers the review's comments again.${failure}`);
      }
    }
  };

  /** The newest run of a subject other than `except` (the retry this step already started). */
  const latestBefore = async (subject: Subject, except: string): Promise<RunInfo | null> => {
    const runs = await deps.executor().recentRuns(subject, 2);
    return runs.find((r) => r.id !== except) ?? null;
  };

  return {
    authorize: async (input: GitHubEventInput): Promise<{ allowed: boolean; permission: string | null }> => {
      if (READ_ONLY.has(intentOf(input, deps).kind)) return { allowed: true, permission: null };
      const permission = await permissionOf(deps.github, repoOf(input), input.author);
      return { allowed: canSteer(permission), permission };
    },
    act,
    refuse: async (input: GitHubEventInput, idempotencyKey: string): Promise<DeliveryOutcome> =>
      // A review is answered through its comments, and each comment for the bot comes as an event of its
      // own, refused on its own: a refusal here too would answer every passer-by's review, even one
      // that never mentions the bot (and a review with N comments for it N + 1 times).
      // Its summary alone mentioning the bot has no comment to be refused through: refused here, once.
      input.event === 'pull_request_review' &&
      !(mentions(input.body, deps.botName) && input.reviewId && (await botComments(input, input.reviewId)).length === 0)
        ? {
            action: 'ignored',
            runId: null,
            message: `review by ${input.author}, who cannot steer rmapp runs: its comments for the bot are answered one by one`,
          }
        : reply(
            input,
            idempotencyKey,
            `thanks for asking! Only people with write access to ${input.owner}/${input.repo} can start or steer rmapp runs, so I did nothing. A maintainer can ask for you.`,
          ),
  };
}
