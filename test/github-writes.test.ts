/**
 * The GitHub layer against the emulator, through the real Octokit client: every write is idempotent
 * with its key, transient failures are retried, rate limits honoured or classified, auth enforced.
 */
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { toErrorData } from '../src/index.ts';
import { createGitHubClient, type GitHubOctokit } from '../src/rmapp/github/client.ts';
import {
  canSteer,
  ensureBranch,
  ensurePullRequest,
  marker,
  permissionOf,
  replyToReviewComment,
  upsertComment,
} from '../src/rmapp/github/writes.ts';
import { GitHubEmulator } from './helpers/github-emulator.ts';

const repo = { owner: 'acme', repo: 'widgets' };
let emulator: GitHubEmulator;
let gh: GitHubOctokit;

beforeAll(async () => {
  emulator = new GitHubEmulator('s3cret');
  const baseUrl = await emulator.start();
  gh = createGitHubClient({
    baseUrl,
    token: 's3cret',
    retries: 2,
    retryBaseMs: 10,
    maxInlineRateLimitWaitMs: 2_000,
    minWriteIntervalMs: 0,
    minNotifyingWriteIntervalMs: 0,
  });
});
afterAll(async () => {
  await emulator.stop();
});
beforeEach(() => {
  emulator.requests.length = 0;
});

it('makes one branch and one pull request however often it runs', async () => {
  expect(await ensureBranch(gh, repo, 'rmapp/issue-7', 'abc123')).toEqual({ created: true, sha: 'abc123' });
  expect(await ensureBranch(gh, repo, 'rmapp/issue-7', 'def456')).toEqual({ created: false, sha: 'abc123' });
  const pr = { head: 'rmapp/issue-7', base: 'main', title: 'Fix #7', body: 'Closes #7', key: 'run-1/pr' };
  const first = await ensurePullRequest(gh, repo, pr);
  const second = await ensurePullRequest(gh, repo, pr);
  expect(first.created).toBe(true);
  expect(second).toEqual({ number: first.number, url: first.url, created: false, draft: false, nodeId: first.nodeId });
  const third = await ensurePullRequest(gh, repo, { ...pr, title: 'Fix #7: widgets' });
  expect(third.number).toBe(first.number);
  expect(emulator.pulls.get('acme/widgets')).toHaveLength(1);
  expect(emulator.pulls.get('acme/widgets')?.[0]?.title).toBe('Fix #7: widgets');
  expect(emulator.pulls.get('acme/widgets')?.[0]?.body).toContain(marker('run-1/pr'));
  expect(emulator.writes(/\/pulls$/)).toHaveLength(1);
});

it('keeps one progress comment per key, edited in place, and skips identical edits', async () => {
  const a = await upsertComment(gh, repo, 7, 'run-1/progress', '- [x] analysing\n- [ ] planning');
  const b = await upsertComment(gh, repo, 7, 'run-1/progress', '- [x] analysing\n- [x] planning');
  const c = await upsertComment(gh, repo, 7, 'run-1/progress', '- [x] analysing\n- [x] planning');
  const other = await upsertComment(gh, repo, 7, 'run-2/progress', 'another run');
  expect(a).toMatchObject({ created: true });
  expect(b).toEqual({ id: a.id, created: false, updated: true });
  expect(c).toEqual({ id: a.id, created: false, updated: false });
  expect(other.id).not.toBe(a.id);
  const comments = emulator.comments.get('acme/widgets#7') ?? [];
  expect(comments).toHaveLength(2);
  expect(comments[0]?.body).toContain('- [x] planning');
  expect(emulator.writes(/\/comments\/\d+$/)).toHaveLength(1); // one PATCH
});

it('finds its comment beyond the first page of comments', async () => {
  for (let i = 0; i < 130; i++) await gh.issues.createComment({ ...repo, issue_number: 8, body: `noise ${i}` });
  const first = await upsertComment(gh, repo, 8, 'run-3/progress', 'v1');
  for (let i = 0; i < 5; i++) await gh.issues.createComment({ ...repo, issue_number: 8, body: `more ${i}` });
  const again = await upsertComment(gh, repo, 8, 'run-3/progress', 'v2');
  expect(again).toEqual({ id: first.id, created: false, updated: true });
  expect((emulator.comments.get('acme/widgets#8') ?? []).filter((c) => c.body.includes(marker('run-3/progress')))).toHaveLength(1);
});

it('replies once to a review comment', async () => {
  const { number } = await ensurePullRequest(gh, repo, { head: 'feature', base: 'main', title: 'Feature', body: '', key: 'k' });
  const reviewId = emulator.addReviewComment('acme', 'widgets', number, '@rmapp rename this variable');
  const first = await replyToReviewComment(gh, repo, number, reviewId, 'run-4/reply', 'Renamed in abc123.');
  const second = await replyToReviewComment(gh, repo, number, reviewId, 'run-4/reply', 'Renamed in abc123.');
  expect(first.created).toBe(true);
  expect(second).toEqual({ id: first.id, created: false });
  expect(emulator.reviewComments.get(`acme/widgets#${number}`)?.filter((c) => c.in_reply_to_id === reviewId)).toHaveLength(1);
});

it("a marker typed by someone else is not the bot's comment: the bot neither edits it nor takes it for its reply", async () => {
  // mallory copies the progress comment's marker and pre-posts the reply's marker (both keys are guessable).
  const foreign = emulator.addIssueComment('acme', 'widgets', 21, `Looks done to me ${marker('run-6/plan')}`, 'mallory');
  const plan = await upsertComment(gh, repo, 21, 'run-6/plan', '## Plan');
  expect(plan.created, "the bot took mallory's comment for its own").toBe(true);
  const comments = emulator.comments.get('acme/widgets#21') ?? [];
  expect(comments.find((c) => c.id === foreign)?.body, "mallory's comment was edited").toBe(`Looks done to me ${marker('run-6/plan')}`);
  expect(comments.find((c) => c.id === plan.id)?.user.login).toBe('rmapp[bot]');
  expect(emulator.writes(/\/issues\/comments\/\d+$/), 'a PATCH of a comment').toEqual([]);

  const { number } = await ensurePullRequest(gh, repo, { head: 'feature-11', base: 'main', title: 'Feature', body: '', key: 'k11' });
  const reviewId = emulator.addReviewComment('acme', 'widgets', number, '@rmapp rename this');
  const fake = emulator.addReviewComment('acme', 'widgets', number, `Done. ${marker('run-6/reply')}`, 'mallory');
  const thread = emulator.reviewComments.get(`acme/widgets#${number}`) ?? [];
  const fakeReply = thread.find((c) => c.id === fake);
  if (fakeReply) fakeReply.in_reply_to_id = reviewId; // a reply in the reviewer's thread
  const reply = await replyToReviewComment(gh, repo, number, reviewId, 'run-6/reply', 'Renamed.');
  expect(reply.created, "the bot took mallory's reply for its own").toBe(true);
  expect(reply.id).not.toBe(fake);
  expect(await replyToReviewComment(gh, repo, number, reviewId, 'run-6/reply', 'Renamed.')).toEqual({ id: reply.id, created: false });
});

it("a marker quoted inside the bot's own comment (an agent's error) does not make it another step's comment", async () => {
  // The progress comment quotes a failing agent's output, which names the outcome comment's marker.
  const progress = await upsertComment(gh, repo, 22, 'run-7/progress', `Failed: \`${marker('run-7/outcome')}\``);
  const outcome = await upsertComment(gh, repo, 22, 'run-7/outcome', 'I stopped: the agent failed.');
  expect(outcome.created, 'the outcome was written over the progress comment').toBe(true);
  expect(outcome.id).not.toBe(progress.id);
  const comments = emulator.comments.get('acme/widgets#22') ?? [];
  expect(comments.find((c) => c.id === progress.id)?.body).toContain('Failed:');
  expect(await upsertComment(gh, repo, 22, 'run-7/outcome', 'I stopped: the agent failed.')).toEqual({
    id: outcome.id,
    created: false,
    updated: false,
  });
});

it('retries a 5xx inside the client for reads and repeatable writes, and still writes once', async () => {
  emulator.failNext('GET', /\/issues\/9\/comments$/, 502, { times: 2 });
  emulator.failNext('POST', /\/git\/refs$/, 502, { times: 1 });
  const result = await upsertComment(gh, repo, 9, 'run-5/progress', 'hello');
  expect(result.created).toBe(true);
  expect(emulator.comments.get('acme/widgets#9')).toHaveLength(1);
  expect(
    emulator.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/issues/9/comments')),
    'listings sent',
  ).toHaveLength(3);
  expect(await ensureBranch(gh, repo, 'rmapp/issue-9', 'abc999')).toEqual({ created: true, sha: 'abc999' });
  expect(emulator.writes(/\/git\/refs$/), 'branch creations sent').toHaveLength(2);
});

it('a comment GitHub made but answered with a 5xx is not sent again by the client: the next attempt finds it', async () => {
  // GitHub's 502 after it carried the write out: the client cannot tell it from one it did not.
  for (const [n, status] of [
    [41, 502],
    [42, 500],
  ] as const) {
    emulator.hook({
      method: 'POST',
      route: '/repos/{owner}/{repo}/issues/{issue_number}/comments',
      when: 'after',
      run: () => ({ status }),
    });
    const failed = await upsertComment(gh, repo, n, `run-${n}/progress`, 'hello').catch((err: unknown) => err);
    expect(toErrorData(failed).category, `the ${status} answer's category`).toBe('transient');
    expect(emulator.writes(new RegExp(`/issues/${n}/comments$`)), `comments sent after the ${status}`).toHaveLength(1);
    const again = await upsertComment(gh, repo, n, `run-${n}/progress`, 'hello');
    expect(again.created, 'the step retried: the comment is found, not made again').toBe(false);
    expect(emulator.comments.get(`acme/widgets#${n}`), `comments on #${n}`).toHaveLength(1);
  }
  // The same for a reply in a review thread.
  const { number } = await ensurePullRequest(gh, repo, { head: 'rmapp/issue-43', base: 'main', title: 'T', body: '', key: 'k43' });
  const reviewId = emulator.addReviewComment('acme', 'widgets', number, '@rmapp rename this');
  emulator.hook({
    method: 'POST',
    route: '/repos/{owner}/{repo}/pulls/{pull_number}/comments/{comment_id}/replies',
    when: 'after',
    run: () => ({ status: 502 }),
  });
  const failed = await replyToReviewComment(gh, repo, number, reviewId, 'run-43/reply', 'done').catch((err: unknown) => err);
  expect(toErrorData(failed).category).toBe('transient');
  expect((await replyToReviewComment(gh, repo, number, reviewId, 'run-43/reply', 'done')).created).toBe(false);
  expect(emulator.writes(/\/replies$/), 'replies sent').toHaveLength(1);
  // A route written in lower case is a POST too.
  emulator.hook({
    method: 'POST',
    route: '/repos/{owner}/{repo}/issues/{issue_number}/comments',
    when: 'after',
    run: () => ({ status: 502 }),
  });
  await gh
    .request('post /repos/{owner}/{repo}/issues/{issue_number}/comments', { ...repo, issue_number: 45, body: 'x' })
    .catch(() => undefined);
  expect(emulator.writes(/\/issues\/45\/comments$/), "comments sent through gh.request('post …')").toHaveLength(1);
});

it('a progress comment edited while GitHub lists the comments without it yet is edited, not made again', async () => {
  const first = await upsertComment(gh, repo, 44, 'run-44/progress', 'running for 0s');
  // GitHub's lists may lag behind a write: the next listings do not show the new comment yet.
  emulator.hook({
    method: 'GET',
    route: '/repos/{owner}/{repo}/issues/{issue_number}/comments',
    when: 'before',
    times: 3,
    run: () => ({ status: 200, data: [] }),
  });
  for (const seconds of [1, 2, 3]) {
    const next = await upsertComment(gh, repo, 44, 'run-44/progress', `running for ${seconds}s`);
    expect(next, `the edit after ${seconds}s`).toEqual({ id: first.id, created: false, updated: true });
  }
  const comments = emulator.comments.get('acme/widgets#44') ?? [];
  expect(
    comments.map((c) => c.body.split('\n')[0]),
    'comments on #44',
  ).toEqual(['running for 3s']);
  // Deleted by someone meanwhile: made again, once.
  emulator.comments.set('acme/widgets#44', []);
  const again = await upsertComment(gh, repo, 44, 'run-44/progress', 'running for 4s');
  expect(again.created, 'a deleted progress comment is made again').toBe(true);
  expect((emulator.comments.get('acme/widgets#44') ?? []).map((c) => c.id)).toEqual([again.id]);
});

it('waits out a short secondary rate limit; a long one fails as rate_limited with its retry-after', async () => {
  emulator.failNext('POST', /\/issues\/10\/comments$/, 403, {
    headers: { 'retry-after': '1' },
    message: 'You have exceeded a secondary rate limit',
  });
  expect((await upsertComment(gh, repo, 10, 'run-6/progress', 'x')).created).toBe(true);
  emulator.failNext('POST', /\/issues\/11\/comments$/, 403, {
    headers: { 'retry-after': '120' },
    message: 'You have exceeded a secondary rate limit',
    times: 5,
  });
  const err = await upsertComment(gh, repo, 11, 'run-7/progress', 'x').catch((e: unknown) => e);
  expect(toErrorData(err)).toMatchObject({ category: 'rate_limited', retryAfterMs: 120_000, code: 'HTTP_403' });
  expect(emulator.comments.get('acme/widgets#11')).toBeUndefined();
});

it('bad credentials are a permanent auth error; permissions decide who may steer runs', async () => {
  const bad = createGitHubClient({ baseUrl: emulator.url, token: 'wrong', minWriteIntervalMs: 0, minNotifyingWriteIntervalMs: 0 });
  const err = await bad.issues.createComment({ ...repo, issue_number: 1, body: 'x' }).catch((e: unknown) => e);
  expect(toErrorData(err)).toMatchObject({ category: 'permanent', code: 'HTTP_401', details: { reason: 'auth' } });
  emulator.permissions.set('acme/widgets:maintainer', 'maintain');
  emulator.permissions.set('acme/widgets:visitor', 'read');
  expect(canSteer(await permissionOf(gh, repo, 'maintainer'))).toBe(true);
  expect(canSteer(await permissionOf(gh, repo, 'visitor'))).toBe(false);
  expect(await permissionOf(gh, repo, 'stranger')).toBe('none');
  expect(() => createGitHubClient({})).toThrow(/GitHub credentials missing/);
});
