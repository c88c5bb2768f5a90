/**
 * Idempotent GitHub writes. Steps run at least once, so every write first looks for what an earlier
 * attempt made: a branch by name, a pull request by head branch, a comment or reply by a hidden
 * marker carrying the step's idempotency key. Running one twice makes one branch, one PR, one comment.
 * A marker counts only in a comment the bot wrote itself: anyone can type one (the run id is in the
 * progress comment), and a copied marker must neither silence the bot's answer nor make it edit
 * someone else's comment.
 */
import { createHash } from 'node:crypto';
import { unwrapClient } from './abortable.ts';
import { ownLogin, type GitHubOctokit } from './client.ts';
import { sameLogin } from './logins.ts';

export interface RepoRef {
  owner: string;
  repo: string;
}

/** The hidden marker that ties a comment to the step that wrote it. */
export function marker(key: string): string {
  return `<!-- rmapp:${key} -->`;
}

function withMarker(body: string, key: string): string {
  return `${body}\n\n${marker(key)}`;
}

/**
 * The comment body ends with the marker of `key`, as {@link withMarker} writes it. Not anywhere in it:
 * a body quotes text others wrote (an agent's error, a test's output), which may carry a marker of its
 * own — the bot would then have taken that comment for another step's and edited it over.
 */
function markedWith(body: string | null | undefined, key: string): boolean {
  return body?.trimEnd().endsWith(marker(key)) ?? false;
}

/**
 * The body ends with a marker of the service (any step's key), as every comment it writes does. Linear:
 * the last marker opening is found from the end (a pattern run over the body from each `<!-- rmapp:`
 * took 25 s on a 1 MiB comment of them, on the webhook's request path).
 */
export function endsWithServiceMarker(body: string | null | undefined): boolean {
  const text = (body ?? '').trimEnd();
  if (!text.endsWith(' -->')) return false;
  const open = text.lastIndexOf('<!-- rmapp:');
  return open >= 0 && !text.includes('\n', open);
}

/** True when `login` (a comment's author) is the bot's own `self` (logins.ts `sameLogin`). */
function isOwn(author: { login?: string } | null | undefined, self: string): boolean {
  return sameLogin(author?.login, self);
}

function isStatus(err: unknown, status: number): boolean {
  return (err as { status?: number } | null)?.status === status;
}

/** Creates `branch` at `sha` unless it exists; returns the branch's head. */
export async function ensureBranch(
  gh: GitHubOctokit,
  repo: RepoRef,
  branch: string,
  sha: string,
): Promise<{ created: boolean; sha: string }> {
  try {
    const { data } = await gh.git.getRef({ ...repo, ref: `heads/${branch}` });
    return { created: false, sha: data.object.sha };
  } catch (err) {
    if (!isStatus(err, 404)) throw err;
  }
  try {
    const { data } = await gh.git.createRef({ ...repo, ref: `refs/heads/${branch}`, sha });
    return { created: true, sha: data.object.sha };
  } catch (err) {
    // Another attempt created it between our read and our write.
    if (!isStatus(err, 422)) throw err;
    const { data } = await gh.git.getRef({ ...repo, ref: `heads/${branch}` });
    return { created: false, sha: data.object.sha };
  }
}

/** Opens the pull request for `head`, or updates the open one (title, body) if an attempt made it. */
export async function ensurePullRequest(
  gh: GitHubOctokit,
  repo: RepoRef,
  pr: {
    head: string;
    base: string;
    title: string;
    body: string;
    key: string;
    draft?: boolean;
    /**
     * Only a pull request this login opened, from this repository's own branch, is updated: anyone may
     * open one from a branch named like rmapp's (or from a fork's branch of that name) first, and it
     * would be retitled, described and marked ready as rmapp's (github/issue-branch-owner.ts).
     */
    author?: string | undefined;
  },
): Promise<{ number: number; url: string; created: boolean; draft: boolean; nodeId: string }> {
  const body = withMarker(pr.body, pr.key);
  const full = `${repo.owner}/${repo.repo}`.toLowerCase();
  const find = async () =>
    (await gh.pulls.list({ ...repo, state: 'open', head: `${repo.owner}:${pr.head}`, per_page: 100 })).data.find(
      (p) =>
        pr.author === undefined ||
        (p.head.ref === pr.head && p.head.repo?.full_name?.toLowerCase() === full && sameLogin(p.user?.login, pr.author)),
    );
  let existing = await find();
  if (!existing) {
    try {
      const { data } = await gh.pulls.create({ ...repo, head: pr.head, base: pr.base, title: pr.title, body, draft: pr.draft ?? false });
      return { number: data.number, url: data.html_url, created: true, draft: data.draft ?? false, nodeId: data.node_id };
    } catch (err) {
      if (!isStatus(err, 422)) throw err;
      existing = await find(); // "A pull request already exists": a concurrent attempt won
      if (!existing) throw err;
    }
  }
  if (existing.title !== pr.title || existing.body !== body) {
    await gh.pulls.update({ ...repo, pull_number: existing.number, title: pr.title, body });
  }
  return { number: existing.number, url: existing.html_url, created: false, draft: existing.draft ?? false, nodeId: existing.node_id };
}

/**
 * Marks a draft pull request ready for review. REST cannot (`PATCH /pulls/{n}` has no `draft` field):
 * GitHub does it with the GraphQL mutation `markPullRequestReadyForReview`. A pull request that is
 * ready already is left alone, so a re-executed step does nothing twice.
 */
export async function markReadyForReview(gh: GitHubOctokit, repo: RepoRef, pr: { draft: boolean; nodeId: string }): Promise<void> {
  if (!pr.draft) return;
  await gh.graphql(`mutation($id: ID!) { markPullRequestReadyForReview(input: { pullRequestId: $id }) { pullRequest { isDraft } } }`, {
    id: pr.nodeId,
    // Never sent: it tells a GitHub App client which installation's token to use (the URL names no repository).
    request: { repository: repo },
  });
}

/**
 * Asks `login` to review the pull request, unless they are asked already. GitHub refuses a request
 * from the pull request's author or a user without access (422): that is not worth failing a run that
 * is done, so it is reported back as `false`.
 */
export async function requestReview(gh: GitHubOctokit, repo: RepoRef, pullNumber: number, login: string): Promise<boolean> {
  const { data } = await gh.pulls.get({ ...repo, pull_number: pullNumber });
  if (data.requested_reviewers?.some((u) => sameLogin(u.login, login))) return true;
  try {
    await gh.pulls.requestReviewers({ ...repo, pull_number: pullNumber, reviewers: [login] });
    return true;
  } catch (err) {
    if (isStatus(err, 422)) return false;
    throw err;
  }
}

/**
 * The comments this process made or found, per client, by issue and key, with the hash of the body it
 * last wrote: edited by id from then on. GitHub's lists may lag behind a write, and the progress
 * comment is edited seconds after it is made: looked for in a list that did not show it yet, it was
 * made again (one comment kept up to date, others frozen at "running for 1s"). An edit to the same
 * body is skipped, even if someone changed the comment meanwhile (the bot's own comment: only an admin
 * or another process could). The oldest are forgotten past {@link KNOWN_COMMENTS_MAX}; a forgotten one
 * is looked for in the list again.
 */
const knownComments = new WeakMap<object, Map<string, { id: number; body: string }>>();
const KNOWN_COMMENTS_MAX = 2_000;

/** What is kept of a body: its hash (2,000 bodies of GitHub's 65,536 characters would be ~260 MB). */
function bodyHash(body: string): string {
  return createHash('sha256').update(body).digest('base64');
}

function rememberComment(known: Map<string, { id: number; body: string }>, at: string, id: number, hash: string): void {
  known.delete(at);
  known.set(at, { id, body: hash });
  if (known.size > KNOWN_COMMENTS_MAX) known.delete(known.keys().next().value as string);
}

/** Creates the comment marked with `key` on an issue or PR, or edits it in place (the progress comment). */
export async function upsertComment(
  gh: GitHubOctokit,
  repo: RepoRef,
  issueNumber: number,
  key: string,
  body: string,
): Promise<{ id: number; created: boolean; updated: boolean }> {
  const full = withMarker(body, key);
  const hash = bodyHash(full);
  const client = unwrapClient(gh);
  let known = knownComments.get(client);
  if (!known) knownComments.set(client, (known = new Map()));
  const at = `${repo.owner}/${repo.repo}#${issueNumber}\n${key}`;
  const seen = known.get(at);
  if (seen) {
    if (seen.body === hash) return { id: seen.id, created: false, updated: false };
    try {
      await gh.issues.updateComment({ ...repo, comment_id: seen.id, body: full });
      rememberComment(known, at, seen.id, hash);
      return { id: seen.id, created: false, updated: true };
    } catch (err) {
      // Deleted meanwhile (by a person, or with its issue transferred): look for it as if never seen.
      if (!isStatus(err, 404)) throw err;
      known.delete(at);
    }
  }
  const self = await ownLogin(gh);
  const comments = await gh.paginate(gh.issues.listComments, { ...repo, issue_number: issueNumber, per_page: 100 });
  const mine = comments.find((c) => isOwn(c.user, self) && markedWith(c.body, key));
  if (!mine) {
    const { data } = await gh.issues.createComment({ ...repo, issue_number: issueNumber, body: full });
    rememberComment(known, at, data.id, hash);
    return { id: data.id, created: true, updated: false };
  }
  if (mine.body !== full) await gh.issues.updateComment({ ...repo, comment_id: mine.id, body: full });
  rememberComment(known, at, mine.id, hash);
  return { id: mine.id, created: false, updated: mine.body !== full };
}

/** Replies once to a review comment (the PRReview answer). */
export async function replyToReviewComment(
  gh: GitHubOctokit,
  repo: RepoRef,
  pullNumber: number,
  commentId: number,
  key: string,
  body: string,
): Promise<{ id: number; created: boolean }> {
  const self = await ownLogin(gh);
  const comments = await gh.paginate(gh.pulls.listReviewComments, { ...repo, pull_number: pullNumber, per_page: 100 });
  const mine = comments.find((c) => c.in_reply_to_id === commentId && isOwn(c.user, self) && markedWith(c.body, key));
  if (mine) return { id: mine.id, created: false };
  const { data } = await gh.pulls.createReplyForReviewComment({
    ...repo,
    pull_number: pullNumber,
    comment_id: commentId,
    body: withMarker(body, key),
  });
  return { id: data.id, created: true };
}

/** GitHub's base repository roles; any other `role_name` is a custom role. */
const BASE_ROLES = new Set(['admin', 'maintain', 'write', 'triage', 'read', 'none']);

/** A user's permission on the repository: only `admin`, `maintain` and `write` may start or steer runs. */
export async function permissionOf(gh: GitHubOctokit, repo: RepoRef, username: string): Promise<string> {
  try {
    const { data } = await gh.repos.getCollaboratorPermissionLevel({ ...repo, username });
    // `role_name` tells maintain and triage apart (`permission` says write and read for them); a custom
    // role has a name of its own, and then `permission` is the base role it builds on (a "deployer"
    // built on write was refused).
    const role = (data as { role_name?: string }).role_name;
    return role && BASE_ROLES.has(role) ? role : data.permission;
  } catch (err) {
    if (isStatus(err, 404)) return 'none';
    throw err;
  }
}

/** True for permissions that may start, cancel, retry or approve runs. */
export function canSteer(permission: string): boolean {
  return ['admin', 'maintain', 'write'].includes(permission);
}
