/**
 * The GitHub emulator against GitHub's official OpenAPI description (`@octokit/openapi`): every route
 * it serves is a real operation, and it refuses (422) requests that real GitHub would refuse as
 * malformed, so the end-to-end suites that talk to it also check that the adapters call real
 * endpoints correctly.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createGitHubClient, type GitHubOctokit } from '../src/rmapp/github/client.ts';
import { ensureBranch, ensurePullRequest, permissionOf, replyToReviewComment, upsertComment } from '../src/rmapp/github/writes.ts';
import { GitHubEmulator } from './helpers/github-emulator.ts';
import { checkRequest, findOperation } from './helpers/github-openapi.ts';

let emulator: GitHubEmulator;
let gh: GitHubOctokit;
const repo = { owner: 'acme', repo: 'widgets' };

beforeAll(async () => {
  emulator = new GitHubEmulator('t0ken');
  const baseUrl = await emulator.start();
  emulator.repos.set('acme/widgets', { default_branch: 'main' });
  gh = createGitHubClient({ baseUrl, token: 't0ken', retries: 0, minWriteIntervalMs: 0, minNotifyingWriteIntervalMs: 0 });
});

afterAll(() => emulator.stop());

it('serves only operations of GitHub’s OpenAPI description, with their method', () => {
  expect(emulator.routes.length).toBeGreaterThan(10);
  for (const route of emulator.routes) {
    const op = findOperation(route.method, route.path);
    expect(op, `${route.method} ${route.path}`).toBeDefined();
    expect(op?.operationId).toBe(route.operation.operationId);
  }
  // The checker itself: a template or method GitHub does not have is not found.
  expect(findOperation('GET', '/repos/{owner}/{repo}/pulls')?.operationId).toBe('pulls/list');
  expect(findOperation('DELETE', '/repos/{owner}/{repo}/pulls')).toBeUndefined();
  expect(findOperation('GET', '/repos/{owner}/{repo}/pull-requests')).toBeUndefined();
  console.log(`emulator routes checked against @octokit/openapi: ${emulator.routes.map((r) => `${r.method} ${r.path}`).join(', ')}`);
});

it('finds what GitHub would refuse: missing required fields, wrong types, a missing body, unsatisfied alternatives', () => {
  const params = { owner: 'acme', repo: 'widgets' };
  const query = new URLSearchParams();
  const createPull = findOperation('POST', '/repos/{owner}/{repo}/pulls');
  if (!createPull) throw new Error('pulls/create missing from the spec');
  expect(checkRequest(createPull, { params, query, body: { head: 'x', base: 'main', title: 't' } })).toEqual([]);
  expect(checkRequest(createPull, { params, query, body: { head: 'x', title: 't' } })).toEqual(['missing required field "base"']);
  expect(checkRequest(createPull, { params, query, body: { head: 'x', base: 'main', draft: 'yes' } })).toEqual([
    'field "draft" should be "boolean", got "yes"',
  ]);
  expect(checkRequest(createPull, { params, query, body: undefined })).toEqual(['missing the required JSON body']);
  const getPull = findOperation('GET', '/repos/{owner}/{repo}/pulls/{pull_number}');
  if (!getPull) throw new Error('pulls/get missing from the spec');
  expect(checkRequest(getPull, { params: { ...params, pull_number: 'abc' }, query, body: undefined })).toEqual([
    'path parameter "pull_number" should be an integer, got "abc"',
  ]);
});

it('answers 422 to a request missing a required field, and records it as a violation', async () => {
  const before = emulator.violations().length;
  const res = await fetch(`${emulator.url}/repos/acme/widgets/pulls`, {
    method: 'POST',
    headers: { authorization: 'token t0ken', 'content-type': 'application/json' },
    body: JSON.stringify({ head: 'feature', title: 'no base' }),
  });
  expect(res.status).toBe(422);
  expect(((await res.json()) as { errors: { message: string }[] }).errors).toEqual([{ message: 'missing required field "base"' }]);
  expect(emulator.pulls.get('acme/widgets') ?? []).toHaveLength(0);
  const violations = emulator.violations();
  expect(violations).toHaveLength(before + 1);
  expect(violations.at(-1)).toMatchObject({
    method: 'POST',
    route: '/repos/{owner}/{repo}/pulls',
    problems: ['missing required field "base"'],
  });

  // Through Octokit, the same mistake surfaces as a permanent 422 the step would fail with.
  const untypedRequest = gh.request as (route: string, params: object) => Promise<unknown>;
  await expect(
    untypedRequest('POST /repos/{owner}/{repo}/issues/{issue_number}/comments', { ...repo, issue_number: 1 }),
  ).rejects.toMatchObject({ status: 422 });
  // A path GitHub does not have is a 404, as on GitHub.
  expect((await fetch(`${emulator.url}/repos/acme/widgets/pull-requests`, { headers: { authorization: 'token t0ken' } })).status).toBe(404);
});

it('the adapters’ writes are requests GitHub accepts: every one matched a declared route, none was refused', async () => {
  emulator.requests.length = 0;
  emulator.refs.set('acme/widgets:main', 'a'.repeat(40));
  emulator.permissions.set('acme/widgets:octocat', 'write');
  await ensureBranch(gh, repo, 'feature', 'a'.repeat(40));
  const pr = await ensurePullRequest(gh, repo, { head: 'feature', base: 'main', title: 'Feature', body: 'text', key: 'k1' });
  await ensurePullRequest(gh, repo, { head: 'feature', base: 'main', title: 'Feature, renamed', body: 'text', key: 'k1' });
  await upsertComment(gh, repo, pr.number, 'k2', 'first');
  await upsertComment(gh, repo, pr.number, 'k2', 'second');
  const reviewComment = emulator.addReviewComment('acme', 'widgets', pr.number, 'please rename');
  await replyToReviewComment(gh, repo, pr.number, reviewComment, 'k3', 'done');
  await gh.pulls.getReviewComment({ ...repo, comment_id: reviewComment });
  expect(await permissionOf(gh, repo, 'octocat')).toBe('write');
  expect(await permissionOf(gh, repo, 'stranger')).toBe('none');

  expect(emulator.violations()).toEqual([]);
  const unmatched = emulator.requests.filter((r) => !r.route);
  expect(unmatched).toEqual([]);
  const used = new Set(emulator.requests.map((r) => `${r.method} ${r.route}`));
  expect(used).toContain('POST /repos/{owner}/{repo}/git/refs');
  expect(used).toContain('PATCH /repos/{owner}/{repo}/pulls/{pull_number}');
  expect(used).toContain('POST /repos/{owner}/{repo}/pulls/{pull_number}/comments/{comment_id}/replies');
});
