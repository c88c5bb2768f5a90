/**
 * `rmapp serve` in the test process against the GitHub world (emulator + bare git remote + scripted
 * agent), configured through `loadConfig` like production, on in-memory PGlite. Webhooks are real
 * payloads from `@octokit/webhooks-examples`, re-addressed to `acme/widgets` and signed with the secret.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { dirname, join } from 'node:path';
import examples from '@octokit/webhooks-examples';
import { createGitHubAccess, createRoutedGitHubClient } from '../../src/rmapp/github/client.ts';
import { loadConfig } from '../../src/rmapp/config.ts';
import { createLogger } from '../../src/rmapp/logger.ts';
import { secretsOf, startService, type Service } from '../../src/rmapp/service.ts';
import { createGitHubWorld, type GitHubWorld } from './github-world.ts';

export const SECRET = 'test-webhook-secret';

export interface ServiceWorld {
  world: GitHubWorld;
  service: Service;
  /** POSTs a webhook; `sign: false` sends no signature, a string signs with that secret instead. */
  deliver(
    event: string,
    payload: unknown,
    options?: { delivery?: string; sign?: boolean | string; rawBody?: string | Buffer },
  ): Promise<{ status: number; body: any; delivery: string }>;
  stop(): Promise<void>;
}

let nextEventId = 900_000;

/**
 * A copy of the first example of `event` (with `action`), re-addressed to acme/widgets. Each copy is a
 * new event, as on GitHub: its comment and review get fresh ids (the service answers a comment once
 * whatever the number of deliveries, so copies sharing the example's ids would be one comment), and it
 * happens now (the examples' 2019 times are older than the service accepts). Deliver the same payload
 * again to send the same comment again.
 */
export function example(event: string, action: string, patch: (p: any) => void = () => {}): any {
  const list = (examples as unknown as { name: string; examples: any[] }[]).find((e) => e.name === event)?.examples ?? [];
  const found = list.find((x) => x.action === action);
  if (!found) throw new Error(`no ${event}.${action} example`);
  const p = structuredClone(found);
  const now = new Date().toISOString();
  if (p.comment) Object.assign(p.comment, { id: nextEventId++, created_at: now, updated_at: now });
  if (p.review) Object.assign(p.review, { id: nextEventId++, submitted_at: now });
  if (p.issue) p.issue.updated_at = now;
  if (p.pull_request) p.pull_request.updated_at = now;
  if (p.repository) {
    p.repository.name = 'widgets';
    p.repository.full_name = 'acme/widgets';
    p.repository.owner.login = 'acme';
  }
  patch(p);
  return p;
}

/** An `issue_comment.created` payload: `body` written by user `by` on issue `n` (not a pull request). */
export function issueComment(n: number, body: string, by = 'alice'): ReturnType<typeof example> {
  return example('issue_comment', 'created', (p) => {
    p.issue.number = n;
    delete p.issue.pull_request;
    p.comment.body = body;
    p.comment.user.login = by;
    p.comment.user.type = 'User';
    p.sender.login = by;
  });
}

/** An `issues.labeled` delivery: `label` added to issue `number` by alice (a user); `updatedAt` sets the issue's `updated_at`. */
export function labelled(number: number, label: string, updatedAt?: string): any {
  return example('issues', 'labeled', (p) => {
    p.issue.number = number;
    if (updatedAt) p.issue.updated_at = updatedAt;
    p.label.name = label;
    p.sender.login = 'alice';
    p.sender.type = 'User';
  });
}

/** A GitHub App the service acts as (instead of the token): the emulator knows it, the service has its key. */
export interface ServiceWorldApp {
  appId: number;
  /** PEM, PKCS#1 like GitHub's keys. */
  privateKey: string;
  publicKey: string;
  /** Installation id by `owner/repo`. */
  installations: Record<string, number>;
}

/** The routed client the service makes in App mode (createRoutedGitHubClient), with the test's zero write intervals. */
function routedAppClient(baseUrl: string, app: ServiceWorldApp) {
  const clientConfig = {
    baseUrl,
    app: { appId: app.appId, privateKey: app.privateKey },
    minWriteIntervalMs: 0,
    minNotifyingWriteIntervalMs: 0,
    retryBaseMs: 10,
  };
  return createRoutedGitHubClient(createGitHubAccess(clientConfig), clientConfig);
}

/**
 * The service on the GitHub world. With `options.app` it acts as that GitHub App (configured through
 * `GITHUB_APP_ID` and `GITHUB_PRIVATE_KEY`), through the routed installation client of App mode.
 */
export async function createServiceWorld(
  extraEnv: Record<string, string> = {},
  options: {
    app?: ServiceWorldApp;
    /** Logs at debug level to this stream, masked as the service masks them (default: silent). */ logTo?: NodeJS.WritableStream;
  } = {},
): Promise<ServiceWorld> {
  const world = await createGitHubWorld();
  const { app } = options;
  if (app) world.emulator.configureApp({ appId: app.appId, publicKey: app.publicKey, installations: app.installations });
  const credentials: Record<string, string> = app
    ? { GITHUB_APP_ID: String(app.appId), GITHUB_PRIVATE_KEY: app.privateKey }
    : { GITHUB_TOKEN: 't0ken' };
  const config = await loadConfig({
    cwd: dirname(world.remote), // no rmapp.config.* there
    env: {
      ...credentials,
      GITHUB_API_URL: world.emulator.url,
      GITHUB_WEBHOOK_SECRET: SECRET,
      RMAPP_GIT_URL: join(dirname(world.remote), '{repo}.git'),
      RMAPP_AGENT_COMMAND: JSON.stringify(world.deps.agent.command),
      RMAPP_TEST_COMMAND: JSON.stringify(world.deps.tests.command),
      RMAPP_WORKSPACE_ROOT: join(dirname(world.remote), 'service-runs'),
      PORT: '0',
      ...extraEnv,
    },
  });
  const service = await startService({
    config,
    github: app ? routedAppClient(world.emulator.url, app) : world.github,
    database: { url: '', dataDir: 'memory://' },
    engine: { pollMs: 50 },
    progressIntervalMs: 0,
    log: options.logTo
      ? createLogger({ level: 'debug', secrets: secretsOf(config), destination: options.logTo })
      : createLogger({ level: 'silent', secrets: [SECRET, 't0ken'] }),
  });
  const deliver: ServiceWorld['deliver'] = async (event, payload, options = {}) => {
    const delivery = options.delivery ?? randomUUID();
    const body = options.rawBody ?? JSON.stringify(payload);
    const secret = typeof options.sign === 'string' ? options.sign : SECRET;
    const headers: Record<string, string> = { 'content-type': 'application/json', 'x-github-event': event, 'x-github-delivery': delivery };
    if (options.sign !== false) headers['x-hub-signature-256'] = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
    const res = await fetch(`${service.url}/webhooks/github`, { method: 'POST', headers, body });
    return { status: res.status, body: await res.json().catch(() => null), delivery };
  };
  return {
    world,
    service,
    deliver,
    async stop() {
      await service.stop({ graceMs: 2_000 });
      await world.stop();
    },
  };
}

/** The branch of {@link pullRequestWorld}'s pull request #7: one rmapp names (an issue run's, for issue #3). */
export const PULL_BRANCH = 'rmapp/issue-3';

/**
 * A service world with an open pull request #7 of acme/widgets from branch {@link PULL_BRANCH} (made
 * from `main` in the remote) into `main`, opened by the bot — rmapp's own pull request, the only kind a
 * review pushes to by default (src/rmapp/github/head-branch.ts) — and `alice` holding `permission` on
 * the repository.
 */
export async function pullRequestWorld(permission = 'write'): Promise<ServiceWorld> {
  const s = await createServiceWorld();
  await s.world.git(s.world.remote, 'branch', PULL_BRANCH, 'main');
  s.world.emulator.pulls.set('acme/widgets', [
    { number: 7, head: PULL_BRANCH, base: 'main', title: 'x', body: '', state: 'open', author: s.world.emulator.botLogin },
  ]);
  s.world.emulator.permissions.set('acme/widgets:alice', permission);
  return s;
}

/** The service's runs once there are two or more and every one has ended (a minute at most). */
/**
 * `@rmapp implement` by `by` on issue `n` of acme/widgets (its body `body`), delivered as GitHub would, and
 * the IssueImplementation run it started, awaited to its end; its id. `by` must be allowed to steer
 * (`emulator.permissions`).
 */
export async function implementIssue(w: ServiceWorld, n: number, body: string, by = 'alice'): Promise<string> {
  w.world.emulator.issues.set(`acme/widgets#${n}`, { title: `Issue ${n}`, body });
  const payload = issueComment(n, '@rmapp implement', by);
  const res = await w.deliver('issue_comment', payload);
  const delivery = await w.service.engine.waitFor(res.body.runId, { timeoutMs: 30_000 });
  const runId = (delivery.output as { outcome: { runId: string } }).outcome.runId;
  await w.service.engine.waitFor(runId, { timeoutMs: 120_000 });
  return runId;
}

/** The text of the service's API answer at `path` (a 200 is expected), read with the dashboard token. */
export async function apiText(w: ServiceWorld, path: string, token: string): Promise<string> {
  const res = await fetch(`${w.service.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  if (res.status !== 200) throw new Error(`GET ${path} answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
  return res.text();
}

export async function settledRuns(s: ServiceWorld) {
  for (let i = 0; i < 600; i++) {
    const runs = await s.service.engine.list({});
    if (runs.length > 1 && runs.every((r) => ['succeeded', 'failed', 'cancelled'].includes(r.status))) return runs;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('runs did not finish');
}
