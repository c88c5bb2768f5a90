/**
 * The GitHub REST client: `@octokit/rest` with the retry and throttling plugins, authenticated with a
 * personal token or as a GitHub App installation, against github.com or GitHub Enterprise (`baseUrl`).
 * Secrets stay inside Octokit's auth strategy: nothing here logs them.
 */
import { createAppAuth } from '@octokit/auth-app';
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import { Octokit } from '@octokit/rest';
import Bottleneck from 'bottleneck';

const RmappOctokit = Octokit.plugin(retry, throttling);
export type GitHubOctokit = InstanceType<typeof RmappOctokit>;

/** How to reach and authenticate to GitHub. */
export interface GitHubClientConfig {
  /** API base URL; default https://api.github.com (GitHub Enterprise: https://HOST/api/v3). */
  baseUrl?: string | undefined;
  /** A personal access token or installation token. */
  token?: string | undefined;
  /** GitHub App credentials: the client acts as the app's installation. */
  app?: { appId: number | string; privateKey: string; installationId: number } | undefined;
  /** Retries of 5xx/network failures done by the plugin before a step's own retry policy takes over. */
  retries?: number | undefined;
  /** The plugin waits base × attempt² between those retries. Default 1,000 ms. */
  retryBaseMs?: number | undefined;
  /**
   * Rate limits: wait and retry (primary limit, up to `retries` times) when GitHub asks to wait at most
   * this long; longer waits fail with category `rate_limited` so the step's durable backoff waits
   * instead of a process holding the request. Default 60 s.
   */
  maxInlineRateLimitWaitMs?: number | undefined;
  userAgent?: string | undefined;
  /**
   * Minimum time between two writes (POST/PATCH/PUT/DELETE), GitHub's advice against secondary rate
   * limits. Default 1,000 ms; tests against the emulator use 0.
   */
  minWriteIntervalMs?: number | undefined;
  /** Minimum time between writes that notify people (comments, issues, PRs). Default 3,000 ms (GitHub's advice). */
  minNotifyingWriteIntervalMs?: number | undefined;
}

/**
 * Creates the client.
 *
 * @example
 * const github = createGitHubClient({ token: process.env.GITHUB_TOKEN });
 */
export function createGitHubClient(config: GitHubClientConfig): GitHubOctokit {
  if (!config.token && !config.app) {
    throw new Error('GitHub credentials missing: set a token (GITHUB_TOKEN) or GitHub App credentials (app id, private key, installation id).');
  }
  const retries = config.retries ?? 3;
  const maxWaitS = (config.maxInlineRateLimitWaitMs ?? 60_000) / 1000;
  const onLimit = (retryAfter: number, _options: unknown, _octokit: unknown, retryCount: number) => retryCount < retries && retryAfter <= maxWaitS;
  return new RmappOctokit({
    baseUrl: config.baseUrl ?? 'https://api.github.com',
    userAgent: config.userAgent ?? 'rmapp',
    ...(config.app
      ? { authStrategy: createAppAuth, auth: { appId: config.app.appId, privateKey: config.app.privateKey, installationId: config.app.installationId } }
      : { auth: config.token }),
    retry: { retries, retryAfterBaseValue: config.retryBaseMs ?? 1_000, doNotRetry: [400, 401, 403, 404, 409, 422, 429, 451] },
    throttle: {
      onRateLimit: onLimit,
      onSecondaryRateLimit: onLimit,
      write: new Bottleneck.Group({ maxConcurrent: 1, minTime: config.minWriteIntervalMs ?? 1_000 }),
      notifications: new Bottleneck.Group({ maxConcurrent: 1, minTime: config.minNotifyingWriteIntervalMs ?? 3_000 }),
    },
    // Octokit's default logger prints request details on warnings; keep its warnings, drop debug/info.
    log: { debug: () => {}, info: () => {}, warn: (msg: string) => console.warn(`github: ${msg}`), error: (msg: string) => console.error(`github: ${msg}`) },
  });
}
