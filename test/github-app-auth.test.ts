/**
 * GitHub App installation auth through `@octokit/app`, end to end against the emulator under
 * `/api/v3` (a GitHub Enterprise base URL): the App signs an RS256 JWT with its private key, finds the
 * installation of a repository, exchanges the JWT for an installation token, and the installation
 * client makes its calls with that token. The key pair is made here, in PKCS#1 PEM like the keys
 * GitHub hands out.
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { createGitHubAccess, type GitHubClientConfig } from '../src/rmapp/github/client.ts';
import { upsertComment } from '../src/rmapp/github/writes.ts';
import { appKeyPair } from './helpers/app-keys.ts';
import { GitHubEmulator } from './helpers/github-emulator.ts';

const APP_ID = 4242;
const { privateKey, publicKey } = appKeyPair();
let emulator: GitHubEmulator;
let base: GitHubClientConfig;

beforeAll(async () => {
  emulator = new GitHubEmulator('personal-token');
  const baseUrl = await emulator.start();
  emulator.configureApp({ appId: APP_ID, publicKey, installations: { 'acme/widgets': 77, 'acme/gadgets': 77, 'other/tool': 88 } });
  base = { baseUrl, retries: 0, minWriteIntervalMs: 0, minNotifyingWriteIntervalMs: 0 };
});
beforeEach(() => {
  emulator.requests.length = 0;
});
afterAll(() => emulator.stop());

it('an installation client makes its calls with the installation token it got for the App’s JWT', async () => {
  const access = createGitHubAccess({ ...base, app: { appId: APP_ID, privateKey } });
  expect(access.mode).toBe('app');
  const github = await access.githubForRepo('acme', 'widgets');
  const { created } = await upsertComment(github, { owner: 'acme', repo: 'widgets' }, 5, 'app-auth', 'hello from the App');
  expect(created).toBe(true);

  const calls = emulator.requests.map((r) => `${r.auth} ${r.method} ${r.route}`);
  expect(calls).toEqual([
    'app GET /repos/{owner}/{repo}/installation',
    // Whose comments are the bot's own: the App's slug, asked once as the App.
    'app GET /app',
    'app POST /app/installations/{installation_id}/access_tokens',
    'installation:77 GET /repos/{owner}/{repo}/issues/{issue_number}/comments',
    'installation:77 POST /repos/{owner}/{repo}/issues/{issue_number}/comments',
  ]);
  expect(emulator.requests[2]?.path).toBe('/app/installations/77/access_tokens');
  expect(emulator.violations()).toEqual([]);
  expect(emulator.comments.get('acme/widgets#5')?.[0]?.body).toContain('hello from the App');

  // The token for git over HTTPS is the installation token the emulator issued.
  const token = await access.tokenForRepo('acme', 'widgets');
  expect(emulator.installationTokens.get(token)).toBe(77);
});

it('caches: one look-up per repository, one client and one token per installation', async () => {
  const access = createGitHubAccess({ ...base, app: { appId: APP_ID, privateKey } });
  const a = await access.githubForRepo('acme', 'widgets');
  expect(await access.githubForRepo('acme', 'widgets')).toBe(a);
  expect(await access.githubForRepo('ACME', 'Widgets')).toBe(a); // GitHub names are case-insensitive
  expect(await access.githubForRepo('acme', 'gadgets')).toBe(a); // same installation
  const other = await access.githubForRepo('other', 'tool');
  expect(other).not.toBe(a);
  await a.issues.get({ owner: 'acme', repo: 'widgets', issue_number: 1 }).catch(() => {});
  await a.issues.get({ owner: 'acme', repo: 'gadgets', issue_number: 1 }).catch(() => {});
  await other.issues.get({ owner: 'other', repo: 'tool', issue_number: 1 }).catch(() => {});
  const byRoute = (route: string) => emulator.requests.filter((r) => r.route === route);
  expect(byRoute('/repos/{owner}/{repo}/installation').map((r) => r.path)).toEqual([
    '/repos/acme/widgets/installation',
    '/repos/acme/gadgets/installation',
    '/repos/other/tool/installation',
  ]);
  expect(byRoute('/app/installations/{installation_id}/access_tokens').map((r) => r.path)).toEqual([
    '/app/installations/77/access_tokens',
    '/app/installations/88/access_tokens',
  ]);
  expect(byRoute('/repos/{owner}/{repo}/issues/{issue_number}').map((r) => r.auth)).toEqual([
    'installation:77',
    'installation:77',
    'installation:88',
  ]);
});

it('a pinned installation id skips the look-up', async () => {
  const access = createGitHubAccess({ ...base, app: { appId: APP_ID, privateKey, installationId: 88 } });
  const github = await access.githubForRepo('other', 'tool');
  await github.repos.get({ owner: 'other', repo: 'tool' }).catch(() => {});
  expect(emulator.requests.map((r) => `${r.auth} ${r.route}`)).toEqual([
    'app /app/installations/{installation_id}/access_tokens',
    'installation:88 /repos/{owner}/{repo}',
  ]);
});

it('a repository without the App installed fails with GitHub’s 404, and is looked up again later', async () => {
  const access = createGitHubAccess({ ...base, app: { appId: APP_ID, privateKey } });
  await expect(access.githubForRepo('acme', 'secret')).rejects.toMatchObject({ status: 404 });
  emulator.configureApp({
    appId: APP_ID,
    publicKey,
    installations: { 'acme/widgets': 77, 'acme/gadgets': 77, 'other/tool': 88, 'acme/secret': 99 },
  });
  const github = await access.githubForRepo('acme', 'secret');
  await github.repos.get({ owner: 'acme', repo: 'secret' }).catch(() => {});
  expect(emulator.requests.at(-1)?.auth).toBe('installation:99');
});

it('a JWT signed with another key, or for another App id, is refused (401)', async () => {
  const stranger = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const wrongKey = createGitHubAccess({ ...base, app: { appId: APP_ID, privateKey: stranger.privateKey } });
  await expect(wrongKey.githubForRepo('acme', 'widgets')).rejects.toMatchObject({ status: 401 });
  const wrongId = createGitHubAccess({ ...base, app: { appId: 1, privateKey } });
  await expect(wrongId.githubForRepo('acme', 'widgets')).rejects.toMatchObject({ status: 401 });
  // Installation tokens and the personal token are not accepted as App credentials.
  const res = await fetch(`${emulator.url}/repos/acme/widgets/installation`, { headers: { authorization: 'Bearer personal-token' } });
  expect(res.status).toBe(401);
});

it('token mode: one client for every repository, the personal token for git', async () => {
  const access = createGitHubAccess({ ...base, token: 'personal-token' });
  expect(access.mode).toBe('token');
  expect(access.appClient).toBe(null);
  const a = await access.githubForRepo('acme', 'widgets');
  expect(await access.githubForRepo('other', 'tool')).toBe(a);
  expect(await access.tokenForRepo('acme', 'widgets')).toBe('personal-token');
  await a.repos.get({ owner: 'acme', repo: 'widgets' }).catch(() => {});
  expect(emulator.requests.map((r) => r.auth)).toEqual(['token']);
});

it('refuses incomplete credentials with a message that names the fix', () => {
  expect(() => createGitHubAccess({ ...base })).toThrow(/GitHub credentials missing/);
  expect(() => createGitHubAccess({ ...base, app: { appId: APP_ID, privateKey: '' } })).toThrow(/GITHUB_PRIVATE_KEY_PATH/);
});
