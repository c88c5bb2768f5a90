/**
 * The GitHub REST client: `@octokit/rest` with the retry and throttling plugins, authenticated with a
 * personal token or as a GitHub App installation (through `@octokit/app`), against github.com or
 * GitHub Enterprise (`baseUrl`). Secrets stay inside Octokit's auth strategy: nothing here logs them.
 *
 * The service asks {@link GitHubAccess.githubForRepo} for the client that acts on a repository: with a
 * token that is the one client; as an App it is the client of the installation on that repository.
 */
import { App } from '@octokit/app';
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import { Octokit } from '@octokit/rest';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import Bottleneck from 'bottleneck';
import { RequestRepositories } from './request-repository.ts';
import { unwrapClient } from './abortable.ts';
import { stderrLogger, type Logger } from '../../persistence/logger.ts';
import { DEFAULT_MINTED_LIFETIME_MS, mintedSecrets, type MintedSecrets } from '../minted-secrets.ts';
import { wellFormed } from '../secret-forms.ts';

/**
 * Every request is a `github <METHOD> <route>` span, a child of the step that made it (the route
 * template, not the URL: no ids or query strings in span names).
 */
function tracing(octokit: Pick<Octokit, 'hook'>): void {
  octokit.hook.wrap('request', (request, options) =>
    trace
      .getTracer('rmapp')
      .startActiveSpan(
        `github ${options.method} ${options.url}`,
        { attributes: { 'http.request.method': options.method } },
        async (span) => {
          try {
            const response = await request(options);
            span.setAttribute('http.response.status_code', response.status);
            return response;
          } catch (err) {
            const status = (err as { status?: number }).status;
            if (status) span.setAttribute('http.response.status_code', status);
            span.recordException(err as Error);
            span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
            throw err;
          } finally {
            span.end();
          }
        },
      ),
  );
}

/**
 * POST routes the retry plugin may send again after a failure. A write GitHub carried out can still
 * fail on its way back (a 502, a reset connection: the plugin retries both), and a comment sent again
 * is a second comment. These are safe to send twice: GitHub refuses a second branch of one name and a
 * second pull request of one head (422, which the callers look up), a reviewer requested again or a
 * draft marked ready again changes nothing (the service's only GraphQL is that mutation), and a new
 * installation token is only a token. Every other POST fails on the first error and is left to the
 * step's retry, which looks for what the first attempt wrote (the comment's marker) before writing.
 */
const REPEATABLE_POSTS = new Set([
  '/repos/{owner}/{repo}/git/refs',
  '/repos/{owner}/{repo}/pulls',
  '/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers',
  '/graphql',
  '/app/installations/{installation_id}/access_tokens',
]);

/** Lets the retry plugin send again only what is safe to send twice ({@link REPEATABLE_POSTS}). */
function onceForCreates(octokit: Pick<Octokit, 'hook'>): void {
  octokit.hook.before('request', (options) => {
    // Before Octokit upper-cases the method (`gh.request('post /…')` is a POST too).
    if (String(options.method).toUpperCase() === 'POST' && !REPEATABLE_POSTS.has(options.url))
      options.request = { ...options.request, retries: 0 };
  });
}

// Annotated with the public `Octokit` type: the plugins add no methods rmapp calls, and the inferred
// type names @octokit internals that a declaration file cannot reach.
// `onceForCreates` last: its hook runs first, before the retry plugin's, on the options that plugin reads.
const RmappOctokit: typeof Octokit = Octokit.plugin(retry, throttling, tracing, onceForCreates);
export type GitHubOctokit = Octokit;

/** How to reach and authenticate to GitHub. */
export interface GitHubClientConfig {
  /** API base URL; default https://api.github.com (GitHub Enterprise: https://HOST/api/v3). */
  baseUrl?: string | undefined;
  /** A personal access token or installation token. */
  token?: string | undefined;
  /**
   * GitHub App credentials (used when set, even if a token is set too): each repository is acted on
   * as the app's installation there. `installationId` pins one installation and skips the look-up.
   */
  app?: { appId: number | string; privateKey: string; installationId?: number | undefined } | undefined;
  /**
   * Retries of 5xx/network failures done by the plugin before a step's own retry policy takes over: of
   * reads and of writes safe to repeat (a comment is never sent twice by the client).
   */
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
  /** Where Octokit's warnings and errors go, prefixed `github: ` (the service passes its logger). Default: one line each on stderr. */
  log?: Logger | undefined;
  /**
   * Where an App's installation tokens are remembered as they are minted, for every masker to mask
   * (minted-secrets.ts). Default: the process's list, `mintedSecrets`.
   */
  minted?: MintedSecrets | undefined;
}

/**
 * How each client learns whose comments are its own: the login GitHub shows as the author of what the
 * client writes. A token's is `GET /user`; an App's installations write as `<app slug>[bot]`, which
 * `GET /app` (as the App) tells. Comments found by their hidden marker count only when this login
 * wrote them, so nobody else's comment is taken for the bot's (github/writes.ts).
 */
const identities = new WeakMap<object, () => Promise<string>>();
const knownLogins = new WeakMap<object, Promise<string>>();

/** The login that authors the writes of `gh` (cached per client; a failed look-up is tried again). */
export function ownLogin(client: GitHubOctokit): Promise<string> {
  // A step's signal-bound view of a client (abortable.ts) shares the client's identity and cache.
  const gh = unwrapClient(client);
  let login = knownLogins.get(gh);
  if (!login) {
    // Asked through the caller's view: a step's aborted signal stops the look-up too (a failure is not cached).
    const resolve = identities.get(gh) ?? (async () => (await client.users.getAuthenticated()).data.login);
    login = resolve();
    knownLogins.set(gh, login);
    login.catch(() => knownLogins.delete(gh));
  }
  return login;
}

/** An App's bot login, as its installations' comments show it. */
async function appBotLogin(app: GitHubOctokit): Promise<string> {
  const { data } = await app.request('GET /app');
  if (!data?.slug) throw new Error("GitHub did not say the App's slug (GET /app): the bot cannot tell its own comments from others'.");
  return `${data.slug}[bot]`;
}

/**
 * Octokit's request log line for a request that got no answer: its request-log plugin writes a network
 * failure (a refused connection, DNS, a wrong `GITHUB_API_URL`) as `GET /user - 500 with id UNKNOWN in
 * 2ms` — Octokit gives such errors status 500 — which reads as GitHub failing. Every answer of GitHub
 * carries an `x-github-request-id`; a 500 without one is said to be what it most likely is.
 *
 * @example
 * explainRequestLog('GET /user - 500 with id UNKNOWN in 2ms');
 * // 'GET /user - no answer (status 500 with no GitHub request id: a network error, or github.apiUrl / GITHUB_API_URL …) in 2ms'
 */
export function explainRequestLog(msg: string): string {
  const m = / - 500 with id UNKNOWN( in \d+ms)$/.exec(msg);
  if (!m) return msg;
  return (
    `${msg.slice(0, m.index)} - no answer (status 500 with no GitHub request id: a network error, or github.apiUrl / GITHUB_API_URL ` +
    `not naming GitHub's API; the step's error says which)${m[1]}`
  );
}

/** Everything but the credentials: the same for the token client, the App's client and its installations' clients. */
function clientOptions(config: GitHubClientConfig) {
  const retries = config.retries ?? 3;
  const maxWaitS = (config.maxInlineRateLimitWaitMs ?? 60_000) / 1000;
  const log = config.log ?? stderrLogger();
  const onLimit = (retryAfter: number, _options: unknown, _octokit: unknown, retryCount: number) =>
    retryCount < retries && retryAfter <= maxWaitS;
  return {
    baseUrl: config.baseUrl ?? 'https://api.github.com',
    userAgent: config.userAgent ?? 'rmapp',
    retry: { retries, retryAfterBaseValue: config.retryBaseMs ?? 1_000, doNotRetry: [400, 401, 403, 404, 409, 422, 429, 451] },
    throttle: {
      onRateLimit: onLimit,
      onSecondaryRateLimit: onLimit,
      write: new Bottleneck.Group({ maxConcurrent: 1, minTime: config.minWriteIntervalMs ?? 1_000 }),
      notifications: new Bottleneck.Group({ maxConcurrent: 1, minTime: config.minNotifyingWriteIntervalMs ?? 3_000 }),
    },
    // Octokit's default logger prints request details on warnings; keep its warnings, drop debug/info.
    log: {
      debug: () => {},
      info: () => {},
      warn: (msg: string) => log.warn(`github: ${msg}`),
      error: (msg: string) => log.error(`github: ${explainRequestLog(msg)}`),
    },
  };
}

/**
 * Creates the client for a token.
 *
 * @example
 * const github = createGitHubClient({ token: process.env.GITHUB_TOKEN });
 */
export function createGitHubClient(config: GitHubClientConfig): GitHubOctokit {
  if (!config.token && !config.app) {
    throw new Error('GitHub credentials missing: set a token (GITHUB_TOKEN) or GitHub App credentials (app id, private key).');
  }
  if (!config.token) {
    throw new Error(
      'GitHub App credentials act per installation: use createGitHubAccess(config).githubForRepo(owner, repo) instead of createGitHubClient.',
    );
  }
  return new RmappOctokit({ ...clientOptions(config), auth: config.token });
}

/** The GitHub clients of the service, one per repository it acts on. */
export interface GitHubAccess {
  /** `token`: one client for every repository; `app`: each repository's installation client. */
  readonly mode: 'token' | 'app';
  /**
   * The client that acts on `owner/repo`. As an App: the installation client of that repository
   * (found with `GET /repos/{owner}/{repo}/installation`, then cached; its token is renewed before it
   * expires by the auth strategy). Fails with the 404 as GitHub sends it when the App is not installed.
   */
  githubForRepo(owner: string, repo: string): Promise<GitHubOctokit>;
  /**
   * A token for git over HTTPS on `owner/repo` (`x-access-token:<token>`): the installation's, or the
   * personal token. An installation's is remembered by every masker until it expires (minted-secrets.ts).
   */
  tokenForRepo(owner: string, repo: string): Promise<string>;
  /** As an App: the client authenticated as the App itself (JWT), e.g. to list installations. */
  readonly appClient: GitHubOctokit | null;
}

/**
 * Creates the GitHub access of the service: token mode when only a token is configured, App mode
 * when App credentials are (the App acts on each repository as its installation there, so its rate
 * limits and permissions are per installation, as GitHub intends for an App).
 *
 * Installation clients share the retry/throttling configuration and the write limiters of the
 * process, so GitHub's "one write at a time" advice holds across installations too.
 *
 * @example
 * const access = createGitHubAccess({ app: { appId: 123, privateKey: pem }, baseUrl: 'https://ghe.example/api/v3' });
 * const github = await access.githubForRepo('acme', 'widgets');
 * await github.issues.createComment({ owner: 'acme', repo: 'widgets', issue_number: 1, body: 'hi' });
 */
export function createGitHubAccess(config: GitHubClientConfig): GitHubAccess {
  if (!config.app) {
    const client = createGitHubClient(config);
    const token = config.token as string;
    return { mode: 'token', appClient: null, githubForRepo: async () => client, tokenForRepo: async () => token };
  }
  if (!config.app.appId || !config.app.privateKey) {
    throw new Error(
      'GitHub App credentials incomplete: both the App ID (GITHUB_APP_ID) and its private key (GITHUB_PRIVATE_KEY_PATH) are needed.',
    );
  }
  const options = clientOptions(config);
  const app = new App({
    appId: config.app.appId,
    privateKey: config.app.privateKey,
    // Our Octokit with its plugins and options: the App's client and every installation client are made from it.
    Octokit: RmappOctokit.defaults(options),
    log: options.log,
  });
  const pinned = config.app.installationId;
  const installations = new Map<number, Promise<GitHubOctokit>>();
  const repos = new Map<string, Promise<number>>();
  // A failed look-up is not cached: the App may be installed a minute later.
  const cached = <K, V>(map: Map<K, Promise<V>>, key: K, make: () => Promise<V>): Promise<V> => {
    let p = map.get(key);
    if (!p) {
      p = make();
      map.set(key, p);
      p.catch(() => map.delete(key));
    }
    return p;
  };
  const installationOf = (owner: string, repo: string): Promise<number> =>
    pinned !== undefined
      ? Promise.resolve(pinned)
      : cached(
          repos,
          `${owner}/${repo}`.toLowerCase(),
          async () => (await app.octokit.request('GET /repos/{owner}/{repo}/installation', { owner, repo })).data.id,
        );
  const minted = config.minted ?? mintedSecrets;
  const log = config.log ?? stderrLogger();
  /** The installation's token now (minted when the cached one is near its end), remembered by every masker. */
  const installationToken = async (client: GitHubOctokit): Promise<string> => {
    const { token, expiresAt, createdAt } = (await client.auth({ type: 'installation' })) as {
      token: string;
      expiresAt?: string;
      createdAt?: string;
    };
    // Remembered at least an hour from when it was minted (`createdAt`, this process's clock), not only
    // to `expires_at`: @octokit/auth-app sends a token for 59 minutes by this clock whatever `expires_at`
    // says, and `expires_at` is read on GitHub's clock — a server whose clock is behind ours gave an
    // early one, and the token was forgotten by the maskers while it still went out with every push.
    const ends = [Date.parse(expiresAt ?? ''), Date.parse(createdAt ?? '') + DEFAULT_MINTED_LIFETIME_MS].filter(Number.isFinite);
    // A token holding a lone UTF-16 surrogate (GitHub, an emulator or a proxy answered `\ud800` in it)
    // is no valid Unicode: it is masked as it is and with U+FFFD in its place (secret-forms.ts
    // `wellFormed`), and said once, without its text — HTTP cannot carry it in a header as it is.
    if (minted.add(token, ends.length ? Math.max(...ends) : undefined) && wellFormed(token) !== token)
      log.warn(
        `github: the installation token GitHub answered (${token.length} characters) holds a lone UTF-16 surrogate, not valid ` +
          'Unicode: no HTTP header can carry it, so requests with it fail; it is masked in every log line and answer while it can be valid. ' +
          'Check what stands between the service and GitHub (github.apiUrl / GITHUB_API_URL, a proxy).',
      );
    return token;
  };
  const githubForRepo = async (owner: string, repo: string): Promise<GitHubOctokit> => {
    const id = await installationOf(owner, repo);
    return cached(installations, id, async () => {
      const client = await app.getInstallationOctokit(id);
      identities.set(client, () => appBotLogin(app.octokit));
      // The token each request will carry, asked of the same cache first: one minted for a request is
      // known to the maskers before anything can quote it.
      client.hook.before('request', async () => void (await installationToken(client)));
      return client;
    });
  };
  return {
    mode: 'app',
    appClient: app.octokit,
    githubForRepo,
    async tokenForRepo(owner, repo) {
      return installationToken(await githubForRepo(owner, repo));
    },
  };
}

/**
 * One client for every repository, authenticated per request: a request on a repository carries that
 * repository's token from `access` (an App's installation token, renewed by its auth strategy). The
 * workflow steps take a single client; this is how they act as the right installation.
 *
 * The repository is the request's `owner`/`repo` parameters, else the path of its URL below the
 * base URL — `octokit.paginate` sends expanded URLs, and follows GitHub's `link` headers, which name
 * repositories as `/repositories/{id}/…` — see {@link RequestRepositories}. A request that names no
 * repository (or a URL off the configured GitHub) fails before it is sent, with no token on it.
 */
export function createRoutedGitHubClient(access: GitHubAccess, config: GitHubClientConfig): GitHubOctokit {
  if (access.mode === 'token') return createGitHubClient(config);
  const options = clientOptions(config);
  const repositories = new RequestRepositories(options.baseUrl);
  const authStrategy = () => {
    const auth = async () => ({ type: 'unauthenticated' as const });
    // Octokit's auth-hook parameters are typed only inside @octokit/types' internals, not exported.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    auth.hook = async (request: any, route: any, parameters?: any) => {
      const endpoint = request.endpoint.merge(route, parameters);
      const repository = repositories.of(endpoint);
      endpoint.headers.authorization = `token ${await access.tokenForRepo(repository.owner, repository.repo)}`;
      const response = await request(endpoint);
      repositories.learn(repository, response);
      return response;
    };
    return auth;
  };
  const client = new RmappOctokit({ ...options, authStrategy });
  const appClient = access.appClient as GitHubOctokit;
  identities.set(client, () => appBotLogin(appClient));
  return client;
}
