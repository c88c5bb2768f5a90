/**
 * A step's GitHub client carries the step's AbortSignal (src/rmapp/github/abortable.ts): once the step
 * is aborted — its run cancelled, its worker stopping or no longer owning the run — nothing more of it
 * reaches GitHub, not even the retry plugin's later attempts. A real Octokit client against a local
 * server that counts what arrives.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createActor } from 'xstate';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { githubDeliverySteps } from '../src/actors/github-delivery.ts';
import { withSignal } from '../src/rmapp/github/abortable.ts';
import { createGitHubClient, ownLogin, type GitHubOctokit } from '../src/rmapp/github/client.ts';
import { permissionOf, upsertComment } from '../src/rmapp/github/writes.ts';

let server: Server;
let baseUrl: string;
const seen: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.setHeader('content-type', 'application/json');
    if (req.url?.includes('/permission')) {
      // GitHub having a bad minute: the retry plugin tries again.
      res.writeHead(502);
      return void res.end('{"message":"Server Error"}');
    }
    if (req.url === '/user') return void res.end('{"login":"rmapp-bot","id":1}');
    if (req.url?.startsWith('/repos/acme/widgets/issues/1/comments')) return void res.end('[]');
    res.writeHead(404);
    res.end('{"message":"Not Found"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const client = () =>
  createGitHubClient({
    baseUrl,
    token: 't0ken',
    retries: 3,
    retryBaseMs: 100,
    minWriteIntervalMs: 0,
    minNotifyingWriteIntervalMs: 0,
    log: silentLog,
  });
const silentLog = { debug() {}, info() {}, warn() {}, error() {}, child: () => silentLog } as never;
const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

it("an aborted step's request in its retries reaches GitHub no more", async () => {
  seen.length = 0;
  const controller = new AbortController();
  const gh = withSignal(client(), controller.signal);
  const call = permissionOf(gh, { owner: 'acme', repo: 'widgets' }, 'ada').then(
    () => 'answered',
    (err: unknown) => (err as Error).name,
  );
  // The first attempt fails with 502; the plugin waits 100 ms before the next.
  while (seen.length < 1) await settle(10);
  controller.abort(new Error('the run left this worker'));
  const atAbort = seen.length;
  expect(await call).not.toBe('answered');
  // Longer than the plugin's remaining waits (100 × 1, 4, 9 ms): no attempt arrives after the abort.
  await settle(2_000);
  expect(seen.slice(atAbort), 'requests that reached GitHub after the step was aborted').toEqual([]);

  // Without a signal the same call makes all its attempts: the server is the one counting right.
  seen.length = 0;
  await permissionOf(client(), { owner: 'acme', repo: 'widgets' }, 'ada').catch(() => null);
  expect(seen.length, 'attempts of an unaborted call').toBe(4);
});

it('a step aborted before it calls GitHub sends nothing, through endpoint methods, request and paginate alike', async () => {
  seen.length = 0;
  const controller = new AbortController();
  controller.abort(new Error('cancelled'));
  const gh = withSignal(client(), controller.signal);
  const outcomes = await Promise.allSettled([
    gh.issues.get({ owner: 'acme', repo: 'widgets', issue_number: 1 }),
    gh.request('GET /user'),
    gh.paginate(gh.issues.listComments, { owner: 'acme', repo: 'widgets', issue_number: 1, per_page: 100 }),
    upsertComment(gh, { owner: 'acme', repo: 'widgets' }, 1, 'key-1', 'hello'),
    // The other forms Octokit takes: a string route to paginate, one options object to request and graphql.
    gh.paginate('GET /repos/{owner}/{repo}/issues/{issue_number}/comments', { owner: 'acme', repo: 'widgets', issue_number: 1 }),
    gh.request({ method: 'GET', url: '/user' }),
    gh.graphql({ query: '{ viewer { login } }' }),
    gh.graphql('{ viewer { login } }', {}),
  ]);
  expect(outcomes.map((o) => o.status)).toEqual(Array(8).fill('rejected'));
  await settle(500);
  expect(seen, 'requests sent by an aborted step').toEqual([]);
});

it('the signal-bound view shares the client: its login is looked up once, and calls not aborted go through', async () => {
  seen.length = 0;
  const gh = client();
  const a = withSignal(gh, new AbortController().signal);
  const b = withSignal(gh, new AbortController().signal);
  expect(await ownLogin(a)).toBe('rmapp-bot');
  expect(await ownLogin(b)).toBe('rmapp-bot');
  expect(await ownLogin(gh)).toBe('rmapp-bot');
  expect(seen.filter((r) => r === 'GET /user')).toHaveLength(1);
  const comments = await a.paginate(a.issues.listComments, { owner: 'acme', repo: 'widgets', issue_number: 1, per_page: 100 });
  expect(comments).toEqual([]);
  expect(
    await a.paginate('GET /repos/{owner}/{repo}/issues/{issue_number}/comments', { owner: 'acme', repo: 'widgets', issue_number: 1 }),
  ).toEqual([]);
  expect((await a.request({ method: 'GET', url: '/user' })).data).toMatchObject({ login: 'rmapp-bot' });
  expect(seen.slice(-3)).toEqual([
    'GET /repos/acme/widgets/issues/1/comments?per_page=100',
    'GET /repos/acme/widgets/issues/1/comments',
    'GET /user',
  ]);
});

it("GitHubDelivery's step, stopped while GitHub fails and its client retries, asks GitHub nothing more", async () => {
  seen.length = 0;
  const steps = githubDeliverySteps({
    github: client(),
    executor: () => {
      throw new Error('not used by authorize');
    },
    botName: 'rmapp',
    labels: {},
  });
  const input = {
    event: 'issue_comment',
    action: 'created',
    body: '@rmapp implement',
    author: 'ada',
    owner: 'acme',
    repo: 'widgets',
    number: 1,
    isPullRequest: false,
  };
  const actor = createActor(steps.authorize, { input: input as never });
  actor.subscribe({ error: () => {} });
  actor.start();
  while (seen.length < 1) await settle(10);
  // What a stop, a cancel or a lost lease does to a running step: its actor is stopped, its signal aborted.
  actor.stop();
  const atStop = seen.length;
  await settle(2_000);
  expect(seen.slice(atStop), 'requests that reached GitHub after the step was stopped').toEqual([]);
});

it("a custom repository role counts as the base role it builds on (a role named 'deployer' on write steers)", async () => {
  const answer = (data: Record<string, unknown>) =>
    ({ repos: { getCollaboratorPermissionLevel: async () => ({ data }) } }) as unknown as GitHubOctokit;
  const repo = { owner: 'acme', repo: 'widgets' };
  expect(await permissionOf(answer({ permission: 'write', role_name: 'deployer' }), repo, 'ada')).toBe('write');
  expect(await permissionOf(answer({ permission: 'read', role_name: 'auditor' }), repo, 'ada')).toBe('read');
  expect(await permissionOf(answer({ permission: 'write', role_name: 'maintain' }), repo, 'ada')).toBe('maintain');
  expect(await permissionOf(answer({ permission: 'read', role_name: 'triage' }), repo, 'ada')).toBe('triage');
});
