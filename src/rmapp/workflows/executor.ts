/**
 * The facade the service uses over the engine: start a workflow for a GitHub event, find the run of
 * an issue or pull request, and steer it (signal, cancel, retry, status). Runs get structured ids —
 * `owner/repo/issues/12/<delivery>` — so "the run of this issue" is a prefix query, visible in the
 * dashboard, and the same delivery (or the same comment delivered again) always maps to the same run.
 */
import { createHash } from 'node:crypto';
import type { Engine } from '../../state_machine/engine.ts';
import { RunNotFoundError, ValidationError } from '../../state_machine/errors.ts';
import type { RunInfo } from '../../state_machine/run-info.ts';
import type { ImplementOptions } from '../commands.ts';
import { TEMPLATE_WORKFLOWS, type TemplateName } from '../../machines/issue-templates.ts';
import { isFinalStatus, RUN_STATUSES } from '../../persistence/run-status.ts';
import type { GitHubEventInput } from '../../machines/github-delivery.ts';
import { decideRetry, pushesOfRun, type RetryDecision } from './retry.ts';

/** An issue or a pull request. */
export interface Subject {
  owner: string;
  repo: string;
  kind: 'issues' | 'pulls';
  number: number;
}

/** Statuses of a run that is not finished. */
const ACTIVE = RUN_STATUSES.filter((s) => !isFinalStatus(s));

/** The prefix of the ids of a subject's runs. */
export function subjectPrefix(s: Subject): string {
  return `${s.owner}/${s.repo}/${s.kind}/${s.number}/`;
}

/**
 * A delivery id (the key of the runs it starts) as the last part of a run id, one to one. GitHub's are
 * UUIDs, kept as they are; any other character, `_` and `/` included, becomes `_<hex code point>_`, and
 * an id that would make the run id too long (200 characters), or is empty or only dots, becomes `_h<SHA-256>_`. Replacing
 * characters with `_` made `a b` and `a_b` one run id — the second delivery, about another comment, was
 * answered with the first one's run, and its issue run was the first one's too.
 */
export function idPart(id: string): string {
  const escaped = id.replace(/[^A-Za-z0-9.:@-]/gu, (c) => `_${(c.codePointAt(0) as number).toString(16)}_`);
  // Empty or only dots (`.`, `..`): not a part of a run id (request-checks.ts), hashed as a long one is.
  const usable = escaped.length > 0 && escaped.length <= 100 && !/^\.+$/.test(escaped);
  return usable ? escaped : `_h${createHash('sha256').update(id).digest('hex').slice(0, 32)}_`;
}

/**
 * The idempotency key of the GitHubDelivery run of an event: what the event is about, not how it
 * reached us. GitHub may deliver one comment several times under new `X-GitHub-Delivery` ids (a
 * retried or redelivered hook, a proxy that replays), and each copy must not act or reply again:
 *
 * - a comment (`issue_comment`, `pull_request_review_comment`) is keyed by its comment id, a review
 *   (`pull_request_review`) by its review id — only their `created`/`submitted` actions reach a run,
 *   so one id is one request. The event name is in the key: issue and review comments are numbered
 *   apart, and the prefix `event:` keeps these keys apart from the keys of the runs they start
 *   (`run:`, `review-comment:`, `review:`).
 * - a label (`issues.labeled`) has no id of its own, and adding the same label again later is a new
 *   request that must not be swallowed: it is keyed by the SHA-256 of the signed body (`body:<hex>`).
 *   A copy of one delivery is the same bytes, whatever its delivery id or event header (neither is
 *   covered by GitHub's signature, so one captured delivery could otherwise be replayed under new ids
 *   to start the work again, long after the first run ended); a later labelling is another body (the
 *   issue's `updated_at`, its labels). Without the body (a caller that has only the event) the
 *   delivery id keys it (`delivery:<id>`, the key every delivery had before).
 *
 * Only the key changed, not the run id: runs stored with the older `delivery:` keys still answer a
 * redelivery with the same delivery id through their run id, and nothing parses run ids.
 */
export function deliveryKey(event: GitHubEventInput, bodySha256?: string): string {
  if ((event.event === 'issue_comment' || event.event === 'pull_request_review_comment') && event.commentId !== null)
    return `event:${event.event}:${event.commentId}`;
  if (event.event === 'pull_request_review' && event.reviewId !== null) return `event:${event.event}:${event.reviewId}`;
  return bodySha256 ? `body:${bodySha256}` : `delivery:${event.deliveryId}`;
}

/**
 * The idempotency key of the run that follows `newest` on a subject (`null`: its first run). Two
 * deliveries that each read "no run is unfinished, the newest is X" and then start one race between
 * their read and their start (`@bot implement` and `@bot implement docs` delivered together both
 * started a run); with this key the second insert finds the first's run instead. A run id the
 * request's delivery chose still makes a re-executed step find its own run.
 */
export function successorKey(subject: Subject, newest: string | null): string {
  return newest === null ? `first-of:${subjectPrefix(subject)}` : `next-of:${newest}`;
}

export class WorkflowExecutor {
  constructor(
    private readonly engine: Engine,
    private readonly defaults: {
      maxTestAttempts: number;
      /** The operator's `reviewAnyBranch`: a retry of a review refused as not rmapp's runs again only where it now applies. */
      reviewAnyBranch?: readonly string[] | undefined;
    },
  ) {}

  /**
   * Stores the run that handles a webhook delivery. A redelivery, the same comment or review delivered
   * again under a new delivery id, or the same signed body sent again, returns the first delivery's run
   * (see {@link deliveryKey}), so it is answered once. The run id stays `deliveries/<first delivery id>`.
   * `bodySha256`: the hex SHA-256 of the delivery's body as received.
   */
  startForEvent(event: GitHubEventInput, bodySha256?: string): Promise<string> {
    return this.engine.start('GitHubDelivery', event, {
      runId: `deliveries/${idPart(event.deliveryId)}`,
      idempotencyKey: deliveryKey(event, bodySha256),
    });
  }

  /** The id of the run `key` starts on a subject (ids are deterministic, so a re-executed step finds its own run). */
  runIdFor(subject: Subject, key: string): string {
    return `${subjectPrefix(subject)}${idPart(key)}`;
  }

  /** Starts a template on an issue. `key` makes it idempotent (the delivery that asked). */
  async startIssueWorkflow(args: {
    owner: string;
    repo: string;
    issueNumber: number;
    template: TemplateName;
    requestedBy: string;
    options?: ImplementOptions | undefined;
    key: string;
    /** Continue a failed run's plan on the issue's branch (`@bot retry`): see src/rmapp/workflows/retry.ts. */
    continueFrom?: { runId: string; plan: string; lastTestOutput: string | null; pushes?: string[] | undefined } | undefined;
    /** The failed run this start retries (`@bot retry`): one run per failed run, however many ask at once. */
    retryOf?: string | undefined;
    /** `limits.maxTestAttempts` of the repository's `.github/rmapp.yml`: lowers the service's setting, never raises it. */
    repositoryMaxTestAttempts?: number | undefined;
    /** When the request was written on GitHub (the delivery's `writtenAt`): the run's `requestedAt`. */
    requestedAt?: string | null | undefined;
    /** The mapped label that asked (an `issues.labeled` delivery): removing it cancels the run. */
    label?: string | null | undefined;
    /**
     * The issue's newest run when the caller found none of its runs unfinished (null: it has none): the
     * start is then one per successor of that run (see {@link successorKey}), so that two requests
     * deciding at once that the issue is free start one run between them.
     */
    after?: string | null | undefined;
  }): Promise<string> {
    const subject: Subject = { owner: args.owner, repo: args.repo, kind: 'issues', number: args.issueNumber };
    // Asked again (not a retry): the issue's newest run may have pushed its branch and failed before its
    // draft opened; what it and the runs before it pushed is handed on, so that the branch rmapp made is
    // continued rather than refused as one it "did not create" (github/issue-branch-owner.ts).
    const branchPushes = args.after && !args.continueFrom ? await this.pushesBefore(args.after) : [];
    const input = {
      owner: args.owner,
      repo: args.repo,
      issueNumber: args.issueNumber,
      requestedBy: args.requestedBy,
      // The command's option, else the repository's limit, else the service's setting — which is a ceiling
      // for both: whoever may comment must not buy more agent and test rounds than the operator allows.
      maxTestAttempts: Math.min(this.defaults.maxTestAttempts, args.options?.maxTestAttempts ?? args.repositoryMaxTestAttempts ?? Infinity),
      ...(args.options?.approvalTimeoutMs ? { approvalTimeoutMs: args.options.approvalTimeoutMs } : {}),
      ...(args.continueFrom ? { continueFrom: args.continueFrom } : {}),
      ...(branchPushes.length ? { branchPushes } : {}),
      ...(args.requestedAt ? { requestedAt: args.requestedAt } : {}),
      ...(args.label ? { label: args.label } : {}),
    };
    const start = this.engine.start(TEMPLATE_WORKFLOWS[args.template], input, {
      runId: this.runIdFor(subject, args.key),
      idempotencyKey:
        args.after !== undefined ? successorKey(subject, args.after) : args.retryOf ? `retry-of:${args.retryOf}` : `run:${args.key}`,
    });
    if (args.after === undefined) return start;
    return start.catch(async (err: unknown) => {
      // The successor key taken by a start of another template (the engine refuses a key across
      // workflows): that run is the issue's successor, returned as a start of the same template would be.
      const newest = err instanceof ValidationError ? await this.latestRun(subject) : null;
      if (newest && newest.id !== args.after && newest.id !== this.runIdFor(subject, args.key)) return newest.id;
      throw err;
    });
  }

  /**
   * Starts PRReview for one comment (idempotent per comment, whichever event asked): a review comment,
   * or (`source: 'conversation'`) a comment in the pull request's conversation — numbered apart, so
   * keyed apart. `retryOf`: the comment is answered again (`@bot retry` after the failed run
   * `retryOf`), once per failed run — two `retry` comments at once start one run.
   */
  startReviewComment(args: {
    owner: string;
    repo: string;
    pullNumber: number;
    commentId: number;
    key: string;
    retryOf?: string | undefined;
    source?: 'review' | 'conversation';
    /** The issue whose run owns the pull request's branch ({@link branchIssueOf}). */
    branchIssue?: number | null | undefined;
  }): Promise<string> {
    const subject: Subject = { owner: args.owner, repo: args.repo, kind: 'pulls', number: args.pullNumber };
    const conversation = args.source === 'conversation';
    return this.engine.start(
      'PRReview',
      {
        owner: args.owner,
        repo: args.repo,
        pullNumber: args.pullNumber,
        commentId: args.commentId,
        ...(conversation ? { source: 'conversation' as const } : {}),
        ...(args.branchIssue ? { branchIssue: args.branchIssue } : {}),
      },
      {
        runId: `${subjectPrefix(subject)}${idPart(args.key)}`,
        idempotencyKey: `${conversation ? 'conversation-comment' : 'review-comment'}:${args.commentId}${args.retryOf ? `:retry-of:${args.retryOf}` : ''}`,
      },
    );
  }

  /** Starts ReviewResponse for a review with several comments for the bot (`retry`: as {@link startReviewComment}). */
  startReview(args: {
    owner: string;
    repo: string;
    pullNumber: number;
    reviewId: number;
    key: string;
    retryOf?: string | undefined;
    /** The issue whose run owns the pull request's branch ({@link branchIssueOf}). */
    branchIssue?: number | null | undefined;
  }): Promise<string> {
    const subject: Subject = { owner: args.owner, repo: args.repo, kind: 'pulls', number: args.pullNumber };
    return this.engine.start(
      'ReviewResponse',
      {
        owner: args.owner,
        repo: args.repo,
        pullNumber: args.pullNumber,
        reviewId: args.reviewId,
        ...(args.branchIssue ? { branchIssue: args.branchIssue } : {}),
      },
      {
        runId: `${subjectPrefix(subject)}${idPart(args.key)}`,
        idempotencyKey: `review:${args.reviewId}${args.retryOf ? `:retry-of:${args.retryOf}` : ''}`,
      },
    );
  }

  /** What run `runId` and the runs before it pushed to the issue's branch ({@link pushesOfRun}); none once it is pruned. */
  private async pushesBefore(runId: string): Promise<string[]> {
    const run = await this.engine.get(runId).catch((err: unknown) => {
      if (err instanceof RunNotFoundError) return null;
      throw err;
    });
    return run ? pushesOfRun(run, (name) => this.engine.getArtifact(runId, name)) : [];
  }

  /** How `@bot retry` continues the failed run `run` ({@link decideRetry}). */
  decideRetry(run: RunInfo, bot: string): Promise<RetryDecision> {
    return decideRetry(run, (name) => this.engine.getArtifact(run.id, name), bot, this.defaults.reviewAnyBranch);
  }

  /**
   * Routes a new review comment to the PR's running ReviewResponse as a `review.comment` signal (once
   * per comment), when that run is on a version that takes it. Null when there is no such run: the
   * caller starts a PRReview for the comment instead (queued behind the PR's run).
   */
  async addReviewComment(subject: Subject, commentId: number): Promise<string | null> {
    const active = await this.activeRun(subject);
    if (!active || active.workflow !== 'ReviewResponse' || active.workflowVersion !== this.engine.definition('ReviewResponse')?.version)
      return null;
    try {
      await this.engine.send(active.id, { type: 'review.comment', commentId }, { dedupeKey: `review-comment:${commentId}` });
      return active.id;
    } catch (err) {
      if ((err as { code?: string }).code === 'VALIDATION') return null; // it finished meanwhile
      throw err;
    }
  }

  /**
   * The run that took review comment `commentId` of the pull request already, or null: its PRReview
   * (whichever delivery started it, a retry's too), or a ReviewResponse it was sent to as a
   * `review.comment` and that took it. A comment reaches the service twice — its own
   * `pull_request_review_comment` delivery and its review's `pull_request_review` — under two delivery
   * keys; one arriving late (GitHub delays or redelivers it) met another path than the first: answered
   * by its PRReview and then sent into a ReviewResponse running since (or the other way round), its
   * change was made twice. ReviewResponses that finished before `since` (when the comment was written,
   * less an hour for the clocks of GitHub and of this machine) cannot have taken it and are not read.
   */
  async reviewCommentTaken(subject: Subject, commentId: number, since: Date | null): Promise<RunInfo | null> {
    const idPrefix = subjectPrefix(subject);
    const own = await this.engine.list({ idPrefix, workflow: 'PRReview', inputContains: { commentId }, limit: 100 });
    const review = own.find((r) => (r.input as { source?: unknown } | null)?.source !== 'conversation');
    if (review) return review;
    const after = since ? since.getTime() - 3_600_000 : -Infinity;
    for (const run of await this.engine.list({ idPrefix, workflow: 'ReviewResponse', limit: 100 })) {
      if (run.finishedAt && run.finishedAt.getTime() < after) continue;
      // Pruned since it was listed: it took nothing any more.
      const history = await this.engine.history(run.id).catch((err: unknown) => {
        if (err instanceof RunNotFoundError) return [];
        throw err;
      });
      const taken = history.some((h) => {
        const event = (h.data as { event?: { type?: unknown; commentId?: unknown } } | undefined)?.event;
        return h.type === 'signal.received' && event?.type === 'review.comment' && event.commentId === commentId;
      });
      if (taken) return run;
    }
    return null;
  }

  /**
   * When the run last entered `state` (a top-level state), or null if it never did: what a command
   * written before then cannot have been about (an approval written before the plan it would approve
   * was posted).
   */
  async enteredAt(runId: string, state: string): Promise<Date | null> {
    const entered = (await this.engine.history(runId)).filter((h) => h.type === 'state.entered' && h.path === '' && h.state === state);
    return entered.at(-1)?.at ?? null;
  }

  /** The unfinished run of an issue or PR, newest first (there is normally at most one). */
  async activeRun(subject: Subject): Promise<RunInfo | null> {
    return (await this.activeRuns(subject, 1))[0] ?? null;
  }

  /** The unfinished runs of an issue or PR, newest first: one working and those queued behind it. */
  activeRuns(subject: Subject, limit: number): Promise<RunInfo[]> {
    return this.engine.list({ idPrefix: subjectPrefix(subject), status: ACTIVE, limit });
  }

  /** The newest run of an issue or PR, whatever its status. */
  async latestRun(subject: Subject, status?: RunInfo['status']): Promise<RunInfo | null> {
    return (await this.engine.list({ idPrefix: subjectPrefix(subject), status, limit: 1 }))[0] ?? null;
  }

  /** The newest `limit` runs of an issue or PR, newest first. */
  recentRuns(subject: Subject, limit: number): Promise<RunInfo[]> {
    return this.engine.list({ idPrefix: subjectPrefix(subject), limit });
  }

  /**
   * The comment deliveries (GitHubDelivery runs) about a subject received after `since`, newest first,
   * at most 100: what the service has heard about an issue or pull request since a request was written
   * (a `cancel` delivered before the `implement` it was written after); with `command`, only those giving
   * the bot that command (the delivery's `command`).
   */
  commentDeliveriesSince(subject: Subject, since: Date, command?: string): Promise<RunInfo[]> {
    return this.engine.list({
      workflow: 'GitHubDelivery',
      createdAfter: since,
      inputContains: {
        event: 'issue_comment',
        owner: subject.owner,
        repo: subject.repo,
        number: subject.number,
        isPullRequest: subject.kind === 'pulls',
        ...(command ? { command } : {}),
      },
      limit: 100,
    });
  }

  /** Delivers an event (e.g. `approve`) to a run's durable inbox, once per dedupe key. */
  signal(runId: string, event: { type: string; [k: string]: unknown }, dedupeKey: string): Promise<{ delivered: boolean }> {
    return this.engine.send(runId, event, { dedupeKey });
  }

  /**
   * Resumes a failed run from the step that failed (the engine's retry: for a step whose error the
   * machine did not handle; it refuses a run its machine ended in a failure state).
   */
  resume(runId: string) {
    return this.engine.retry(runId);
  }

  cancel(runId: string, reason: string) {
    return this.engine.cancel(runId, reason);
  }

  status(runId: string): Promise<RunInfo> {
    return this.engine.get(runId);
  }
}
