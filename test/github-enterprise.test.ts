/**
 * GitHub App mode on a GitHub Enterprise Server base URL (`https://HOST/api/v3`), against the emulator
 * served under that prefix only, with `link` headers as GHES sends them (absolute, under `/api/v3`,
 * naming the repository by id — or by path): the routed client the service uses in App mode lists
 * every page, comments and replies, each request with the installation token of its repository, and
 * never sends a token off the configured GitHub. Then a whole `@rmapp implement` run, webhook to pull
 * request, as the App (issue #16: every paginated call failed there, so nothing was ever answered).
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGitHubAccess, createRoutedGitHubClient, type GitHubClientConfig, type GitHubOctokit } from '../src/rmapp/github/client.ts';
import { replyToReviewComment, upsertComment } from '../src/rmapp/github/writes.ts';
import { GitHubEmulator, type RecordedRequest } from './helpers/github-emulator.ts';
import { until } from './helpers/processes.ts';
import { createServiceWorld, example, type ServiceWorld } from './helpers/service-world.ts';

const APP_ID = 4243;
const { privateKey, publicKey } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
});
const INSTALLATIONS = { 'acme/widgets': 77, 'other/tool': 88 };
/** `auth method path` of each request, for assertions that show every call when they fail. */
const calls = (requests: RecordedRequest[]) => requests.map((r) => `${r.auth ?? '-'} ${r.method} ${r.path}`);
/** Requests the emulator had no route for (outside `/api/v3`, or a path GitHub does not have). */
const unrouted = (emulator: GitHubEmulator) => calls(emulator.requests.filter((r) => !r.route));

describe.each(['repository-id', 'path'] as const)('the routed App client on /api/v3, links by %s', (links) => {
  let emulator: GitHubEmulator;
  let config: GitHubClientConfig;
  let github: GitHubOctokit;
  let reviewComment: number;

  beforeAll(async () => {
    emulator = new GitHubEmulator('personal-token');
    const baseUrl = await emulator.start({ pathPrefix: '/api/v3', links });
    expect(baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/api\/v3$/);
    emulator.configureApp({ appId: APP_ID, publicKey, installations: INSTALLATIONS });
    for (let i = 1; i <= 150; i++) emulator.addIssueComment('acme', 'widgets', 6, `comment ${i}`);
    for (let i = 1; i <= 120; i++)
      reviewComment = emulator.addReviewComment('other', 'tool', 3, `review comment ${i}`, 'reviewer', { path: 'README.md', line: 1 });
    config = { baseUrl, app: { appId: APP_ID, privateKey }, retries: 0, minWriteIntervalMs: 0, minNotifyingWriteIntervalMs: 0 };
    github = createRoutedGitHubClient(createGitHubAccess(config), config);
  });
  afterAll(() => emulator.stop());

  it('lists every page, each request with the installation token of its repository', async () => {
    emulator.requests.length = 0;
    const comments = await github.paginate(github.issues.listComments, { owner: 'acme', repo: 'widgets', issue_number: 6, per_page: 100 });
    expect(comments.map((c) => c.body)).toEqual(Array.from({ length: 150 }, (_, i) => `comment ${i + 1}`));
    const review = await github.paginate(github.pulls.listReviewComments, { owner: 'other', repo: 'tool', pull_number: 3, per_page: 50 });
    expect(review).toHaveLength(120);

    const acme = links === 'path' ? '/repos/acme/widgets' : `/repositories/${emulator.repositoryId('acme/widgets')}`;
    const other = links === 'path' ? '/repos/other/tool' : `/repositories/${emulator.repositoryId('other/tool')}`;
    expect(calls(emulator.requests)).toEqual([
      'app GET /repos/acme/widgets/installation',
      'app POST /app/installations/77/access_tokens',
      'installation:77 GET /repos/acme/widgets/issues/6/comments',
      `installation:77 GET ${acme}/issues/6/comments`,
      'app GET /repos/other/tool/installation',
      'app POST /app/installations/88/access_tokens',
      'installation:88 GET /repos/other/tool/pulls/3/comments',
      `installation:88 GET ${other}/pulls/3/comments`,
      `installation:88 GET ${other}/pulls/3/comments`,
    ]);
    expect(unrouted(emulator)).toEqual([]);
    expect(emulator.violations()).toEqual([]);
  });

  it('comments and replies as the installation of each repository, and finds its own comment past page 1', async () => {
    emulator.requests.length = 0;
    expect(await upsertComment(github, { owner: 'acme', repo: 'widgets' }, 6, 'ghes', 'hello from the App')).toMatchObject({
      created: true,
    });
    expect(await upsertComment(github, { owner: 'acme', repo: 'widgets' }, 6, 'ghes', 'hello from the App')).toMatchObject({
      created: false,
      updated: false,
    });
    expect(await replyToReviewComment(github, { owner: 'other', repo: 'tool' }, 3, reviewComment, 'ghes', 'done')).toMatchObject({
      created: true,
    });
    expect(await replyToReviewComment(github, { owner: 'other', repo: 'tool' }, 3, reviewComment, 'ghes', 'done')).toMatchObject({
      created: false,
    });

    expect(emulator.comments.get('acme/widgets#6')?.filter((c) => c.body.includes('hello from the App'))).toHaveLength(1);
    expect(emulator.reviewComments.get('other/tool#3')?.filter((c) => c.in_reply_to_id === reviewComment)).toHaveLength(1);
    const tokenByRepository = new Set(emulator.requests.filter((r) => r.auth !== 'app').map((r) => `${r.repository} ${r.auth}`));
    expect([...tokenByRepository].sort()).toEqual(['acme/widgets installation:77', 'other/tool installation:88']);
    expect(calls(emulator.writes())).toEqual([
      'installation:77 POST /repos/acme/widgets/issues/6/comments',
      'installation:88 POST /repos/other/tool/pulls/3/comments/' + reviewComment + '/replies',
    ]);
    expect(unrouted(emulator)).toEqual([]);
    expect(emulator.violations()).toEqual([]);
  });

  it('sends no token off the configured GitHub, nor for a repository id no response named', async () => {
    emulator.requests.length = 0;
    const origin = new URL(config.baseUrl as string).origin;
    const get = (url: string) => github.request({ method: 'GET', url });
    await expect(get('http://127.0.0.1:9/api/v3/repos/acme/widgets')).rejects.toThrow(/not a URL of the configured GitHub API/);
    await expect(get(`${origin}/repos/acme/widgets`)).rejects.toThrow(/not a URL of the configured GitHub API/);
    await expect(get(`${config.baseUrl}/repositories/123/issues`)).rejects.toThrow(/repository id 123 was not named/);
    await expect(get(`${config.baseUrl}/user`)).rejects.toThrow(/names no repository/);
    expect(calls(emulator.requests)).toEqual([]);
  });
});

describe('a whole `@rmapp implement` run as a GitHub App on /api/v3', () => {
  let w: ServiceWorld;
  beforeAll(async () => {
    w = await createServiceWorld({}, { app: { appId: APP_ID, privateKey, publicKey, installations: INSTALLATIONS } });
    w.world.emulator.permissions.set('acme/widgets:alice', 'write');
  });
  afterAll(async () => w?.stop());

  it('answers, works and opens the pull request, every call as installation 77 and every list to its last page', async () => {
    const { emulator } = w.world;
    expect(emulator.url).toMatch(/\/api\/v3$/);
    emulator.issues.set('acme/widgets#31', { title: 'Add impl', body: 'PLAN write impl\nWRITE impl.txt right' });
    // A busy issue: finding the progress comment among its comments takes two pages.
    for (let i = 1; i <= 120; i++) emulator.addIssueComment('acme', 'widgets', 31, `chatter ${i}`);
    emulator.requests.length = 0;
    const res = await w.deliver(
      'issue_comment',
      example('issue_comment', 'created', (p) => {
        p.issue.number = 31;
        delete p.issue.pull_request;
        p.comment.body = '@rmapp implement';
        p.comment.user.login = 'alice';
        p.comment.user.type = 'User';
      }),
    );
    expect(res.status).toBe(202);
    const delivery = await w.service.engine.waitFor(res.body.runId, { timeoutMs: 30_000 });
    expect(delivery.status, JSON.stringify(delivery.error)).toBe('succeeded');
    const { runId } = (delivery.output as { outcome: { runId: string } }).outcome;
    const run = await w.service.engine.waitFor(runId, { timeoutMs: 90_000 });
    expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
    expect((emulator.pulls.get('acme/widgets') ?? []).filter((p) => p.head === 'rmapp/issue-31')).toHaveLength(1);
    const comments = () => emulator.comments.get('acme/widgets#31') ?? [];
    await until(() => comments().some((c) => c.body.includes('✅ Done')), 10_000, 'the progress comment');
    expect(
      comments().filter((c) => c.user.login === emulator.botLogin && c.body.includes('/progress -->')),
      'one progress comment, found again on page 2',
    ).toHaveLength(1);

    const asInstallation = emulator.requests.filter((r) => r.auth !== 'app');
    expect(new Set(asInstallation.map((r) => `${r.repository} ${r.auth}`))).toEqual(new Set(['acme/widgets installation:77']));
    expect(
      calls(asInstallation.filter((r) => r.path.startsWith('/repositories/'))).length,
      'pages followed through link headers',
    ).toBeGreaterThan(0);
    expect(unrouted(emulator)).toEqual([]);
    expect(emulator.violations()).toEqual([]);
  });
});
