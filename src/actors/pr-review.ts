/** The steps of PRReview, built from the GitHub, workspace and agent adapters. */
import { constants } from 'node:fs';
import { open, realpath } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import type { AgentConfig, TestsConfig } from '../rmapp/agent-runner.ts';
import { instructionsSection } from '../rmapp/repository-config.ts';
import { checkProtectedPaths, ensureSetup, runChecks } from '../rmapp/repository-commands.ts';
import { runAgent } from '../rmapp/agent-runner.ts';
import { conversationRequest, mentionPattern, mentions } from '../rmapp/commands.ts';
import { agentSummary, commitMessage } from '../rmapp/pull-request-text.ts';
import { codeSpan, errorText, failureReason, untrustedMarkdown } from '../rmapp/run-texts.ts';
import { summarizeTests, testResultLine } from '../rmapp/test-report.ts';
import type { GitHubOctokit } from '../rmapp/github/client.ts';
import { withSignal } from '../rmapp/github/abortable.ts';
import { checkHeadBranch, escapedBranch, NOT_OWN_BRANCH, shownBranch } from '../rmapp/github/head-branch.ts';
import { canSteer, endsWithServiceMarker, permissionOf, replyToReviewComment, upsertComment } from '../rmapp/github/writes.ts';
import type { Workspaces } from '../rmapp/workspace.ts';
import { ValidationError, WorkflowError } from '../state_machine/errors.ts';
import { step } from '../state_machine/step.ts';
import type { PrReviewSteps, ReviewRequest } from '../machines/pr-review.ts';
import { pushRecorded, REVIEW_PUSHES } from './branch-push.ts';

export interface PrReviewDeps {
  github: GitHubOctokit;
  workspaces: Workspaces;
  remoteUrl: (owner: string, repo: string) => string;
  agent: AgentConfig;
  /** The bot's login, stripped from the request (`@rmapp rename x` → `rename x`). */
  botName: string;
  /**
   * The repository's tests, run on the change before it is pushed (without them the reply says the
   * tests did not run); also where a repository's setup commands run and the cap on their time
   * (default: the agent's sandbox and timeout).
   */
  tests?: TestsConfig | undefined;
  /**
   * The operator's `reviewAnyBranch`: repositories (`owner/repo`, `owner/*`) whose pull requests' own
   * branches rmapp may push review changes to although it did not open them. Absent or empty (the
   * default): only the branches of rmapp's own pull requests (github/head-branch.ts).
   */
  reviewAnyBranch?: readonly string[] | undefined;
}

export function prReviewSteps(deps: PrReviewDeps): PrReviewSteps {
  /** The GitHub client of one step execution: an aborted step reaches GitHub no more (github/abortable.ts). */
  const gh = (signal: AbortSignal) => withSignal(deps.github, signal);
  const branchRules = (at: { owner: string; repo: string }) => ({
    owner: at.owner,
    repo: at.repo,
    bot: deps.botName,
    reviewAnyBranch: deps.reviewAnyBranch,
  });
  const workspace = (runId: string, input: { owner: string; repo: string; review: { branch: string } }, signal: AbortSignal) =>
    // The PR's head branch, which must exist in this repository (parsing refused forks): never created, never another branch.
    deps.workspaces.prepare({
      runId,
      remoteUrl: deps.remoteUrl(input.owner, input.repo),
      branch: input.review.branch,
      base: input.review.branch,
      existing: true,
      signal,
    });

  return {
    parseComment: step(
      async ({ input, signal }): Promise<ReviewRequest> => {
        const conversation = input.source === 'conversation';
        const [comment, { data: pr }] = await Promise.all([
          (conversation
            ? gh(signal)
                .issues.getComment({ owner: input.owner, repo: input.repo, comment_id: input.commentId })
                .then(({ data }) => ({ body: data.body ?? '', path: null, line: null, user: data.user }))
            : gh(signal)
                .pulls.getReviewComment({ owner: input.owner, repo: input.repo, comment_id: input.commentId })
                .then(({ data }) => data)
          ).catch((err: unknown) => {
            // Deleted after it was sent: the answer said only "Not Found" and to retry, which reads it again.
            if ((err as { status?: unknown } | null)?.status !== 404) throw err;
            throw new ValidationError(
              `The comment was deleted before rmapp read it, so rmapp changed nothing. Ask again in a new comment if you still want the change.`,
            );
          }),
          gh(signal).pulls.get({ owner: input.owner, repo: input.repo, pull_number: input.pullNumber }),
        ]);
        const own = `${input.owner}/${input.repo}`.toLowerCase();
        const head = pr.head.repo?.full_name ?? null;
        if (head?.toLowerCase() !== own) {
          // A fork's branch: rmapp pushes only to the repository it acts on (README, "Forks").
          throw new WorkflowError(
            head
              ? `This pull request's branch is in the fork ${head}. rmapp only pushes to branches of ${input.owner}/${input.repo}, so it changed nothing: push the change to the fork yourself, or open the pull request from a branch of ${input.owner}/${input.repo}.`
              : `This pull request's branch is in a fork that no longer exists, so rmapp changed nothing.`,
            { code: 'FORK_PULL_REQUEST', category: 'validation', details: { headRepo: head } },
          );
        }
        // The repository's default branch as the pull request's head (a PR from `main` into another
        // branch, which anyone who can open a PR can make): a "review" change would go straight onto it.
        if (pr.head.ref === pr.base.repo.default_branch) throw defaultBranchHead(pr.base.repo.default_branch);
        // Someone else's branch (a person's `feature-x`, a shared `release-2.1`): rmapp pushes only to the
        // branches of the pull requests it opened itself, unless the operator opted the repository in.
        // Here, before the workspace is made and the agent runs, and again before the push.
        await checkHeadBranch(gh(signal), pr, branchRules(input));
        // Who wrote the request must be able to steer rmapp now, not only when it was accepted: the
        // comment is read again here (a retry, a run queued behind another), and an author who lost
        // write access could have edited an accepted comment into a new request meanwhile.
        const author = comment.user?.login ?? '';
        const permission = author ? await permissionOf(gh(signal), { owner: input.owner, repo: input.repo }, author) : 'none';
        if (!canSteer(permission))
          throw new WorkflowError(
            `The comment's author ${author ? `@\u200b${author}` : '(unknown)'} cannot steer rmapp on ${input.owner}/${input.repo} now (permission: ${permission}), so rmapp changed nothing: only people with write, maintain or admin permission can, when their comment is acted on. Someone who can may ask again in a new comment.`,
            { code: 'NOT_ALLOWED', category: 'validation', details: { author, permission } },
          );
        // A closed or merged pull request's branch is history: pushing to it would change what was merged or reopen nothing.
        if (pr.state !== 'open') throw notOpen(pr);
        // The comment as it reads now must still ask the bot for a change, as it did when it was accepted:
        // it is read here later (a run queued behind another, a retry), and its author may have edited it
        // meanwhile into "never mind" (no mention left) or, in the conversation, into a command such as
        // `@rmapp cancel` — which would otherwise go to the agent as the change to make, and be pushed.
        if (!stillAsks(comment.body, conversation, deps.botName))
          throw new ValidationError(
            `The comment was edited after it was sent and no longer asks @${deps.botName.replace(/\[bot\]$/, '')} for a change, so rmapp changed nothing. Ask again in a new comment if you still want it.`,
          );
        // The mention as commands.ts matches it: `@my-app` also for a bot named `my-app[bot]`.
        const request = comment.body.replace(mentionPattern(deps.botName, 'gi'), '$1').trim();
        if (!request) throw new ValidationError(`The ${conversation ? '' : 'review '}comment mentions the bot but asks for nothing.`);
        return {
          request,
          path: comment.path ?? null,
          line: comment.line ?? null,
          author: comment.user?.login ?? 'someone',
          branch: pr.head.ref,
        };
      },
      { kind: 'github' },
    ),

    locateCode: step(
      async ({ input, runId, signal }) => {
        const ws = await workspace(runId, input, signal);
        if (!input.review.path) return { snippet: '' };
        const file = await insideWorkspace(ws.dir, input.review.path);
        const text = file ? await readSnippetSource(file) : '';
        const lines = text.split('\n');
        const at = Math.max(0, (input.review.line ?? 1) - 1);
        return { snippet: lines.slice(Math.max(0, at - 10), at + 10).join('\n') };
      },
      { kind: 'git' },
    ),

    generateFix: step(
      async (ctx) => {
        const { input, runId, signal, progress } = ctx;
        const ws = await workspace(runId, input, signal);
        // The repository's settings of its default branch (`origin/HEAD`), never of the pull request's branch.
        // `null`: the fallback is never the head branch itself, whose author would then write the settings.
        const settings = await deps.workspaces.repositorySettings(ws, null, signal);
        await ensureSetup(deps.workspaces, ws, settings, deps.tests ?? deps.agent, { signal, progress });
        const where = input.review.path
          ? `on ${input.review.path}${input.review.line ? ` line ${input.review.line}` : ''}`
          : 'on the pull request';
        const code = input.snippet ? `\n\n## Code\n\n${input.snippet}\n` : '\n';
        const prompt = `Address this review comment by @${input.review.author} ${where}:\n\n${input.review.request}${code}${instructionsSection(settings)}`;
        const result = await runAgent(deps.agent, { cwd: ws.dir, prompt, signal, session: ctx });
        // Nothing of a fix that touches a protected path is committed (applyChanges commits what is left).
        await checkProtectedPaths(deps.workspaces, ws, settings, signal);
        return { summary: agentSummary(result.text) ?? '' };
      },
      { kind: 'agent' },
    ),

    testChange: step(
      async ({ input, runId, signal, saveArtifact }): Promise<{ passed: boolean; result: string }> => {
        if (!deps.tests) return { passed: true, result: 'not run (no test command is configured)' };
        const ws = await workspace(runId, input, signal);
        // The repository's own test (and lint) commands from its default branch, as IssueImplementation runs them;
        // `null` as in generateFix: the fallback is never the head branch, whose author would choose the command.
        const settings = await deps.workspaces.repositorySettings(ws, null, signal);
        const result = await runChecks(deps.tests, settings, { cwd: ws.dir, signal });
        await saveArtifact('test-output', result.output);
        const report = summarizeTests(result.output, { passed: result.passed, workspace: ws.dir, runId });
        await saveArtifact('test-report', report);
        if (!result.passed) {
          // Thrown away: the next comment of a review (ReviewResponse) shares this workspace, and would
          // otherwise be tested, and committed, with this change.
          await deps.workspaces.discardChanges(ws, signal);
          throw new WorkflowError(`the tests fail with this change (${testResultLine(report)}), so I pushed nothing`, {
            code: 'TESTS_FAILED',
            category: 'test_failure',
          });
        }
        return { passed: true, result: 'pass' };
      },
      { kind: 'tests' },
    ),

    applyChanges: step(
      async ({ input, runId, signal, getArtifact, saveArtifact }): Promise<{ commit: string | null; files?: string[] }> => {
        const ws = await workspace(runId, input, signal);
        // Asked again before the push: the pull request may have been merged or closed while the agent
        // and the tests worked (minutes). The change then went onto a merged branch, and the reply said
        // "pushed" for a change that is in nothing merged.
        const { data: pr } = await gh(signal).pulls.get({ owner: input.owner, repo: input.repo, pull_number: input.pullNumber });
        if (pr.state !== 'open') {
          // Thrown away, as after failed tests: a ReviewResponse's next comment shares this workspace.
          await deps.workspaces.discardChanges(ws, signal);
          throw notOpen(pr);
        }
        // Whose branch, asked again of the pull request as it is now: the branch pushed to must still be
        // its head, and still one rmapp may push to (the operator may have taken the repository out of
        // `reviewAnyBranch` while the run worked). GitHub changes neither a pull request's head nor its
        // author, so this refuses what parsing would have; it holds if that ever changes.
        const moved =
          pr.head.ref !== input.review.branch || pr.head.repo?.full_name?.toLowerCase() !== `${input.owner}/${input.repo}`.toLowerCase();
        // The default branch asked again too: the repository's default may have been switched to this
        // pull request's branch while the run worked (parsing refused it only as it was then).
        const refused = moved
          ? new WorkflowError(`This pull request's branch is no longer "${escapedBranch(input.review.branch)}", so rmapp pushed nothing.`, {
              code: 'BRANCH_CHANGED',
              category: 'validation',
              details: { branch: escapedBranch(input.review.branch) },
            })
          : pr.head.ref === pr.base.repo.default_branch
            ? defaultBranchHead(pr.base.repo.default_branch)
            : await checkHeadBranch(gh(signal), pr, branchRules(input)).then(
                () => null,
                (err: unknown) => {
                  // A refusal; anything else (GitHub not answering who rmapp is) fails the step, which is
                  // tried again with the change still in the workspace.
                  if ((err as { code?: unknown } | null)?.code !== NOT_OWN_BRANCH) throw err;
                  return err;
                },
              );
        if (refused) {
          await deps.workspaces.discardChanges(ws, signal);
          throw refused;
        }
        // Checked again: the tests ran the changed code with the workspace writable, and what they wrote
        // (a test that rewrites `.github/rmapp.yml`) is committed below with the fix.
        await checkProtectedPaths(deps.workspaces, ws, await deps.workspaces.repositorySettings(ws, null, signal), signal);
        const before = await deps.workspaces.head(ws, signal);
        const { committed, sha, earlier } = await deps.workspaces.commitAll(ws, reviewCommitMessage(input.review, runId), signal);
        // Fenced by the run's lease, as an issue run's push (branch-push.ts): a worker paused past its
        // lease while another took the run over stops here instead of pushing to the pull request too.
        await pushRecorded({ signal, getArtifact, saveArtifact }, deps.workspaces, ws, REVIEW_PUSHES);
        const files = committed ? await deps.workspaces.changedFiles(ws, before, sha, signal) : [];
        // A re-run after a crash that followed the push finds its own commit rather than "no change".
        return { commit: committed ? sha : earlier, files };
      },
      { kind: 'git' },
    ),

    reportFailure: step(
      async ({ input, idempotencyKey, signal }) => {
        // Parsing may have failed before it knew the reviewer: ask GitHub (a reply without the mention is still a reply).
        const author =
          input.author ??
          (await (
            input.source === 'conversation'
              ? gh(signal).issues.getComment({ owner: input.owner, repo: input.repo, comment_id: input.commentId })
              : gh(signal).pulls.getReviewComment({ owner: input.owner, repo: input.repo, comment_id: input.commentId })
          ).then(
            (r) => r.data.user?.login ?? null,
            () => null,
          ));
        const who = author ? `@${author} ` : '';
        // An own message may end with its full stop already (`….`): one is enough.
        const body = `${who}I could not do this: ${failureReason(input.error).replace(/\.$/, '')}.${input.error.category === 'validation' ? '' : ` Comment \`@${deps.botName} retry\` to try again.`}`;
        return replyInThread(gh(signal), input, idempotencyKey, body);
      },
      { kind: 'github' },
    ),

    respond: step(
      async ({ input, idempotencyKey, signal }) => {
        return replyInThread(gh(signal), input, idempotencyKey, reviewReply(input));
      },
      { kind: 'github' },
    ),
  };
}

/**
 * Why nothing is pushed to a pull request whose branch is the repository's default branch (a PR from
 * `main` into another branch, which anyone who can open a PR can make): a review's change would go
 * straight onto it. Asked when the comment is read and again just before the push.
 */
function defaultBranchHead(defaultBranch: string): WorkflowError {
  return new WorkflowError(
    `This pull request's branch is ${shownBranch(defaultBranch)}, the repository's default branch, so rmapp changed nothing: it pushes review changes only to a pull request's own branch, never straight onto the default branch. Open the pull request from a branch of its own.`,
    { code: 'DEFAULT_BRANCH_HEAD', category: 'validation', details: { branch: escapedBranch(defaultBranch) } },
  );
}

/** Why nothing is pushed to a pull request that is no longer open. */
function notOpen(pr: { merged_at: string | null }): ValidationError {
  return new ValidationError(
    `This pull request is ${pr.merged_at ? 'merged' : 'closed'}, so rmapp changed nothing: reopen it, or ask on an open pull request.`,
  );
}

/**
 * True when a comment's current text asks the bot for a change, as the delivery that started the run
 * judged it (delivery-intent.ts `intentOf`): a review comment that mentions the bot in its own words, a
 * conversation comment that mentions it with a request that is no command.
 */
function stillAsks(body: string, conversation: boolean, botName: string): boolean {
  return conversation ? conversationRequest(body, botName) !== null : mentions(body, botName);
}

/** The commit of a review's change: the request as the subject, who asked in the body and as co-author. */
function reviewCommitMessage(review: ReviewRequest, runId: string): string {
  // The subject is the request's first line; the whole request is quoted in the body.
  const request = (review.request.trim().split('\n')[0] ?? '').replace(/\s+/g, ' ').trim();
  const subject = request.length > 72 ? `${request.slice(0, 71)}…` : request;
  const where = review.path ? ` on ${review.path}${review.line ? ` line ${review.line}` : ''}` : '';
  return commitMessage({
    subject: `review: ${subject}`,
    body: [`Requested by @${review.author}${where}:\n\n> ${review.request.trim().slice(0, 1000).replace(/\n/g, '\n> ')}`],
    coAuthor: review.author === 'someone' ? null : review.author,
    runId,
  });
}

/** The answer to a review request: what changed (the agent's summary, the files), and whether the tests ran. */
export function reviewReply(input: {
  review: ReviewRequest;
  commit: string | null;
  summary: string;
  files?: string[] | undefined;
  tests?: string | null | undefined;
}): string {
  const who = `@${input.review.author} `;
  const said = input.summary ? `\n\n${untrustedMarkdown(input.summary)}` : '';
  if (!input.commit) return `${who}I looked at this and found nothing to change.${said}`;
  const files = input.files?.length
    ? `\n\nChanged: ${input.files
        .slice(0, 10)
        .map((f) => `\`${f.replaceAll('`', '')}\``)
        .join(', ')}${input.files.length > 10 ? ` and ${input.files.length - 10} more` : ''}.`
    : '';
  const tests =
    input.tests === 'pass'
      ? 'The tests pass with it.'
      : input.tests
        ? `The tests were ${input.tests}.`
        : 'The tests were not run before this push.';
  return `${who}pushed ${input.commit.slice(0, 12)}. ${tests}${said}${files}`;
}

/**
 * Replies once: in the review comment's thread, or — for a comment in the pull request's conversation,
 * which has no thread — as a new comment on the pull request (the reply of `respond` or `reportFailure`).
 */
async function replyInThread(
  github: GitHubOctokit,
  at: { owner: string; repo: string; pullNumber: number; commentId: number; source?: 'review' | 'conversation' },
  idempotencyKey: string,
  body: string,
): Promise<{ replyId: number }> {
  if (at.source === 'conversation') {
    const { id } = await upsertComment(github, { owner: at.owner, repo: at.repo }, at.pullNumber, idempotencyKey, body);
    return { replyId: id };
  }
  try {
    const reply = await replyToReviewComment(github, { owner: at.owner, repo: at.repo }, at.pullNumber, at.commentId, idempotencyKey, body);
    return { replyId: reply.id };
  } catch (err) {
    // The review comment was deleted after it was sent (GitHub answers a reply to it 404): its thread is
    // gone, and with it the answer — the run failed after its push, and no one was told "pushed" or why
    // not. Answered in the pull request's conversation instead (one comment, by the same key).
    if ((err as { status?: unknown } | null)?.status !== 404) throw err;
    const { id } = await upsertComment(
      github,
      { owner: at.owner, repo: at.repo },
      at.pullNumber,
      idempotencyKey,
      `${body}\n\n(The review comment this answers was deleted, so the answer is here.)`,
    );
    return { replyId: id };
  }
}

/**
 * The file a review comment points at, when it is inside the workspace: the path comes from GitHub
 * and the file from the repository, so both `..` and a committed symlink to a host file are refused
 * (resolved with `realpath`, then checked). A path that does not exist gives null (no snippet).
 */
export async function insideWorkspace(dir: string, path: string): Promise<string | null> {
  if (isAbsolute(path) || path.includes('\0')) throw new ValidationError(`Review comment path "${path}" is outside the repository.`);
  const root = await realpath(dir);
  const real = await realpath(join(root, path)).catch(() => null);
  if (real === null) return null;
  const rel = relative(root, real);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel) || rel.split('/')[0] === '.git') {
    throw new ValidationError(`Review comment path "${path}" resolves outside the repository's files.`, [
      { path: 'path', message: 'outside the workspace' },
    ]);
  }
  return real;
}

/** Largest part of a file read for a snippet: a repository may hold a file of any size. */
const SNIPPET_SOURCE_BYTES = 4 * 1024 * 1024;

/** The start of a regular file (never a FIFO or a device, which could block or never end), as text. */
export async function readSnippetSource(file: string): Promise<string> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW).catch(() => null);
  if (!handle) return '';
  try {
    const info = await handle.stat();
    if (!info.isFile()) return '';
    const buffer = Buffer.alloc(Math.min(info.size, SNIPPET_SOURCE_BYTES));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return buffer.subarray(0, bytesRead).toString('utf8');
  } finally {
    await handle.close();
  }
}

/** The steps of ReviewResponse: PRReview's per comment, plus listing the review's comments and the summary. */
export function reviewResponseSteps(deps: PrReviewDeps): import('../machines/review-response.ts').ReviewResponseSteps {
  const gh = (signal: AbortSignal) => withSignal(deps.github, signal);
  return {
    ...prReviewSteps(deps),
    listComments: step(
      async ({ input, signal }) => {
        const comments = await gh(signal).paginate(gh(signal).pulls.listCommentsForReview, {
          owner: input.owner,
          repo: input.repo,
          pull_number: input.pullNumber,
          review_id: input.reviewId,
          per_page: 100,
        });
        // As github-delivery counted them: `@my-app` also for a bot named `my-app[bot]`.
        return {
          // The service's own comments (ending with its marker) are not requests, as on their own events.
          commentIds: comments.filter((c) => mentions(c.body, deps.botName) && !endsWithServiceMarker(c.body)).map((c) => c.id),
        };
      },
      { kind: 'github' },
    ),
    summarize: step(
      async ({ input, idempotencyKey, signal, progress }) => {
        const done = input.results.filter((r) => !r.error).length;
        // For the progress comment's checklist: "Address the comments" is not ticked when none was done.
        progress(`addressed ${done} of ${input.results.length} review comments`, { addressed: { done, of: input.results.length } });
        // A branch rmapp may not push to refuses every comment alike: said once, under the list, in its own words.
        const refused = input.results.find((r) => r.error?.code === NOT_OWN_BRANCH)?.error;
        const lines = input.results.map((r) =>
          r.error?.code === NOT_OWN_BRANCH
            ? `- comment ${r.commentId}: not done (this pull request's branch is not rmapp's: see below)`
            : r.error
              ? `- comment ${r.commentId}: not done (\`${r.error.category}\` ${codeSpan(r.error.message)})`
              : `- comment ${r.commentId}: ${r.commit ? `done in ${r.commit.slice(0, 12)}` : 'nothing to change'}`,
        );
        const why = refused ? `\n\n${errorText(refused).replace(/\.$/, '')}.` : '';
        const body = `Addressed ${done} of ${input.results.length} review comments:\n\n${lines.join('\n')}${why}`;
        // One summary per run, rewritten when a late comment sends the run back to work (a new step
        // execution, so a new idempotency key: the marker is the key's first form).
        const { id } = await upsertComment(
          gh(signal),
          { owner: input.owner, repo: input.repo },
          input.pullNumber,
          idempotencyKey.replace(/#\d+$/, ''),
          body,
        );
        return { commentId: id };
      },
      { kind: 'github' },
    ),
  };
}
