/**
 * A local GitHub for tests and for `rmapp demo`: a local HTTP server speaking the subset of the REST API rmapp uses, so
 * the real Octokit client (auth, retry and throttling plugins included) is exercised end to end. It
 * serves under a path prefix, `/api/v3` by default like GitHub Enterprise Server (`start({ pathPrefix: '' })`
 * serves at the root like api.github.com), and nothing outside it; checks the token (or a GitHub App's
 * RS256 JWT and the installation tokens it issued), records every request, and injects faults on demand
 * (5xx, 429, secondary rate limits, a hook that runs before or after a route, e.g. to kill a worker
 * mid-call).
 *
 * Lists are paginated as GitHub does it: a `link` header to the next page, an absolute URL under the
 * prefix that names the repository by id (`…/api/v3/repositories/{id}/issues/5/comments?page=2`, as
 * GitHub's own links do; `start({ links: 'path' })` gives `…/repos/{owner}/{repo}/…` links instead).
 * Those `/repositories/{id}/…` paths are served as the `/repos/{owner}/{repo}/…` route they alias.
 *
 * Its routes are GitHub OpenAPI path templates, and each request is checked against GitHub's official
 * description before it is served (see ./github-emulator-routes.ts and ./github-openapi.ts).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkRequest } from './github-openapi.ts';
import { githubRoutes, Page, pullNodeId, timestamp } from './github-emulator-routes.ts';
import {
  verifyAppJwt,
  type Comment,
  type EmulatedApp,
  type EmulatorServeOptions,
  type Fault,
  type Issue,
  type Pull,
  type RecordedRequest,
  type Route,
  type RouteHook,
} from './github-emulator-types.ts';

export type { EmulatedApp, EmulatorServeOptions, Issue, RecordedRequest, Route, RouteHook } from './github-emulator-types.ts';

export class GitHubEmulator {
  readonly refs = new Map<string, string>(); // "owner/repo:branch" -> sha
  readonly pulls = new Map<string, Pull[]>(); // "owner/repo"
  readonly comments = new Map<string, Comment[]>(); // "owner/repo#n" issue comments
  readonly reviewComments = new Map<string, Comment[]>(); // "owner/repo#n" PR review comments
  readonly permissions = new Map<string, string>(); // "owner/repo:user" -> permission
  readonly issues = new Map<string, Issue>(); // "owner/repo#n"
  readonly repos = new Map<string, { default_branch: string }>(); // "owner/repo"
  readonly requests: RecordedRequest[] = [];
  private faults: Fault[] = [];
  private hooks: RouteHook[] = [];
  private app: (EmulatedApp & { key: KeyObject }) | undefined;
  /** Installation tokens issued by `POST /app/installations/{id}/access_tokens`, with their installation. */
  readonly installationTokens = new Map<string, number>();
  private nextId = 1000;
  private server: Server | undefined;
  private prefix = '/api/v3';
  private links: NonNullable<EmulatorServeOptions['links']> = 'repository-id';
  private web: EmulatorServeOptions['web'];
  /** Where `html_url`s point (see {@link EmulatorServeOptions.webUrl}). */
  webUrl = 'https://github.example';
  private readonly repositoryIds = new Map<string, number>(); // "owner/repo" -> id
  private nextRepositoryId = 7_000_000;
  /** The API base URL, with its prefix: what a client's `baseUrl` is set to. */
  url = '';

  constructor(
    readonly token = 'test-token',
    readonly botLogin = 'rmapp[bot]',
  ) {}

  /** Starts serving on a free port of 127.0.0.1; returns the API base URL (with the prefix). */
  async start(options: EmulatorServeOptions = {}): Promise<string> {
    this.prefix = (options.pathPrefix ?? '/api/v3').replace(/\/+$/, '');
    this.links = options.links ?? 'repository-id';
    this.web = options.web;
    if (options.webUrl) this.webUrl = options.webUrl.replace(/\/+$/, '');
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${this.prefix}`;
    return this.url;
  }

  /** The id GitHub gives `owner/repo` (made up on first use, stable for the emulator's life). */
  repositoryId(fullName: string): number {
    let id = this.repositoryIds.get(fullName);
    if (id === undefined) {
      id = this.nextRepositoryId++;
      this.repositoryIds.set(fullName, id);
    }
    return id;
  }

  async stop(): Promise<void> {
    await new Promise((resolve) => this.server?.close(resolve));
  }

  /** The next `times` requests matching `method` and `path` answer with `status` (and headers). */
  failNext(
    method: string,
    path: RegExp,
    status: number,
    options: { headers?: Record<string, string>; message?: string; times?: number } = {},
  ): void {
    this.faults.push({
      method,
      path,
      status,
      headers: options.headers ?? {},
      message: options.message ?? `emulated ${status}`,
      times: options.times ?? 1,
    });
  }

  /** Makes the emulator act as GitHub for a GitHub App: its JWTs are verified with `publicKey`. */
  configureApp(app: EmulatedApp): void {
    this.app = { ...app, key: typeof app.publicKey === 'string' ? createPublicKey(app.publicKey) : app.publicKey };
  }

  /** Runs `hook.run` around the next `times` requests to a route (crash tests kill a worker there). */
  hook(hook: RouteHook): void {
    this.hooks.push({ times: 1, ...hook });
  }

  /** Requests GitHub would have refused as malformed (each was answered 422). */
  violations(): RecordedRequest[] {
    return this.requests.filter((r) => r.problems?.length);
  }

  /** Writes (POST/PATCH/PUT/DELETE) received, optionally only those whose path matches. */
  writes(path?: RegExp): RecordedRequest[] {
    return this.requests.filter((r) => r.method !== 'GET' && (!path || path.test(r.path)));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const url = new URL(req.url ?? '/', 'http://x');
    const method = req.method ?? 'GET';
    const underPrefix = !this.prefix || url.pathname === this.prefix || url.pathname.startsWith(`${this.prefix}/`);
    const requestPath = underPrefix ? url.pathname.slice(this.prefix.length) || '/' : url.pathname;
    // `/repositories/{id}/…` is the `/repos/{owner}/{repo}/…` route of that repository, as on GitHub.
    const byId = /^\/repositories\/(\d+)(\/.*)?$/.exec(requestPath);
    const aliased = byId ? [...this.repositoryIds].find(([, id]) => id === Number(byId[1]))?.[0] : undefined;
    const rawPath = aliased ? `/repos/${aliased.split('/').map(encodeURIComponent).join('/')}${byId?.[2] ?? ''}` : requestPath;
    const path = safeDecode(requestPath);
    if (!underPrefix && this.web && method === 'GET') {
      const html = await Promise.resolve(this.web(safeDecode(url.pathname))).catch(() => undefined);
      res.writeHead(html === undefined ? 404 : 200, { 'content-type': 'text/html; charset=utf-8' });
      return void res.end(html ?? '<!doctype html><title>Not found</title><p>Not found.</p>');
    }
    // Every answer of GitHub's API carries a request id; a 500 without one is logged as no answer (github/client.ts explainRequestLog).
    const send = (status: number, data: unknown, headers: Record<string, string> = {}) => {
      const requestId = `EMU:${this.requests.length.toString(16).toUpperCase()}`;
      res.writeHead(status, { 'content-type': 'application/json', 'x-github-request-id': requestId, ...headers });
      res.end(data === undefined ? '' : JSON.stringify(data));
    };
    let body: Record<string, unknown> | undefined;
    try {
      body = raw ? (JSON.parse(raw) as Record<string, unknown>) : undefined;
    } catch {
      this.requests.push({ method, path, body: raw });
      return send(400, { message: 'Problems parsing JSON' });
    }
    const recorded: RecordedRequest = { method, path, body };
    this.requests.push(recorded);
    // Outside the prefix is not the API (on GitHub Enterprise Server, the web UI): no route, 404.
    const match = underPrefix ? this.match(method, rawPath) : undefined;
    recorded.route = match?.route.path;
    if (match?.params.owner && match.params.repo) recorded.repository = `${match.params.owner}/${match.params.repo}`;
    const auth = this.authenticate(req.headers.authorization ?? '', match?.route.auth ?? 'token');
    if (!auth) return send(401, { message: match?.route.auth === 'app' ? 'A JSON web token could not be decoded' : 'Bad credentials' });
    recorded.auth = auth;
    const fault = this.faults.find((f) => f.method === method && f.path.test(path) && f.times > 0);
    if (fault) {
      fault.times -= 1;
      return send(fault.status, { message: fault.message }, fault.headers);
    }
    if (!match && method === 'POST' && /\/graphql$/.test(url.pathname)) {
      recorded.route = 'graphql';
      return send(200, this.graphql(body, recorded));
    }
    if (!match) return send(404, { message: 'Not Found' });
    const problems = checkRequest(match.route.operation, { params: match.params, query: url.searchParams, body });
    if (problems.length > 0) {
      recorded.problems = problems;
      return send(422, {
        message: 'Validation Failed',
        errors: problems.map((p) => ({ message: p })),
        documentation_url: `https://docs.github.com/rest (${match.route.operation.operationId})`,
      });
    }
    // A hook's answer in place of the route's: none (`true`: the caller is gone), or the one it gives.
    const answered = (hooked: ReturnType<RouteHook['run']>): boolean => {
      if (hooked && hooked !== true) send(hooked.status, hooked.data ?? { message: hooked.message ?? `emulated ${hooked.status}` });
      return !!hooked;
    };
    if (answered(this.runHooks('before', method, match.route.path, recorded))) return;
    try {
      const result = match.route.handle(match.params, url.searchParams, body ?? {});
      if (answered(this.runHooks('after', method, match.route.path, recorded))) return;
      if (!result) return send(404, { message: 'Not Found' });
      const [status, data] = result;
      if (!(data instanceof Page)) return send(status, data);
      // Pagination as GitHub does it: a Link header to the next page, which Octokit's paginate follows.
      const headers: Record<string, string> = {};
      if (data.hasNext) headers.link = `<${this.nextPageUrl(rawPath, url.searchParams, recorded.repository)}>; rel="next"`;
      send(status, data.items, headers);
    } catch (err) {
      send(500, { message: (err as Error).message });
    }
  }

  /**
   * GitHub's GraphQL endpoint, for the one mutation REST lacks: a draft pull request is marked ready for
   * review only with `markPullRequestReadyForReview(input: { pullRequestId })` (`PATCH /pulls/{n}` has
   * no `draft` field). Anything else is answered as GitHub answers a query it cannot run: 200 with `errors`.
   */
  private graphql(body: Record<string, unknown> | undefined, recorded: RecordedRequest): unknown {
    const query = typeof body?.query === 'string' ? body.query : '';
    const variables = (body?.variables ?? {}) as Record<string, unknown>;
    if (!/mutation[\s\S]*markPullRequestReadyForReview/.test(query))
      return { errors: [{ message: 'The emulator answers only the markPullRequestReadyForReview mutation.' }] };
    const inline = /pullRequestId:\s*"([^"]+)"/.exec(query)?.[1];
    const id =
      inline ??
      (typeof variables.id === 'string' ? variables.id : typeof variables.pullRequestId === 'string' ? variables.pullRequestId : '');
    for (const [repo, list] of this.pulls) {
      const pull = list.find((p) => pullNodeId(repo, p.number) === id);
      if (!pull) continue;
      pull.draft = false;
      recorded.repository = repo;
      return { data: { markPullRequestReadyForReview: { pullRequest: { id, number: pull.number, isDraft: false } } } };
    }
    return {
      data: { markPullRequestReadyForReview: null },
      errors: [{ type: 'NOT_FOUND', message: `Could not resolve to a node with the global id of '${id}'.` }],
    };
  }

  /** The absolute URL of the next page of a list (`rawPath`, percent-encoded, below the prefix). */
  private nextPageUrl(rawPath: string, query: URLSearchParams, repository: string | undefined): string {
    const origin = this.url.slice(0, this.url.length - this.prefix.length);
    const byId = this.links === 'repository-id' && repository;
    const path = byId ? rawPath.replace(/^\/repos\/[^/]+\/[^/]+/, `/repositories/${this.repositoryId(repository)}`) : rawPath;
    const next = new URL(`${origin}${this.prefix}${path}`);
    query.forEach((v, k) => next.searchParams.set(k, v));
    next.searchParams.set('page', String(Number(query.get('page') ?? 1) + 1));
    return next.toString();
  }

  private match(method: string, rawPath: string): { route: Route; params: Record<string, string> } | undefined {
    for (const route of this.routes) {
      if (route.method !== method) continue;
      const m = route.pattern.exec(rawPath);
      if (!m) continue;
      const params: Record<string, string> = {};
      route.names.forEach((name, i) => (params[name] = decodeURIComponent(m[i + 1] ?? '')));
      return { route, params };
    }
    return undefined;
  }

  /** Who the `Authorization` header says the caller is, or null when GitHub would answer 401. */
  private authenticate(header: string, kind: Route['auth']): string | null {
    const [scheme = '', credential = ''] = header.split(' ');
    if (!/^(token|bearer)$/i.test(scheme)) return null;
    if (kind === 'app') return this.app && verifyAppJwt(credential, this.app.appId, this.app.key) ? 'app' : null;
    if (credential === this.token) return 'token';
    const installation = this.installationTokens.get(credential);
    return installation === undefined ? null : `installation:${installation}`;
  }

  private runHooks(when: RouteHook['when'], method: string, route: string, request: RecordedRequest): ReturnType<RouteHook['run']> {
    const hook = this.hooks.find((h) => h.when === when && h.method === method && h.route === route && (h.times ?? 1) > 0);
    if (!hook) return false;
    hook.times = (hook.times ?? 1) - 1;
    return hook.run(request);
  }

  /**
   * Every route served (github-emulator-routes.ts), as a GitHub OpenAPI path template with its method;
   * each is an operation of GitHub's official description, and every request is checked against it.
   */
  readonly routes: readonly Route[] = githubRoutes(this, { app: () => this.app, newId: () => this.nextId++ });

  /** Adds an issue comment by someone (what a person wrote on an issue or PR's conversation). */
  addIssueComment(owner: string, repo: string, issueNumber: number, body: string, login = 'someone'): number {
    const key = `${owner}/${repo}#${issueNumber}`;
    const c: Comment = { id: this.nextId++, body, user: { login }, created_at: timestamp(), updated_at: timestamp() };
    this.comments.set(key, [...(this.comments.get(key) ?? []), c]);
    return c.id;
  }

  /** Adds a review comment by someone (what a reviewer wrote on a PR). */
  addReviewComment(
    owner: string,
    repo: string,
    pullNumber: number,
    body: string,
    login = 'reviewer',
    place: { path?: string; line?: number; pull_request_review_id?: number } = {},
  ): number {
    const key = `${owner}/${repo}#${pullNumber}`;
    const c: Comment = { id: this.nextId++, body, user: { login }, created_at: timestamp(), updated_at: timestamp(), ...place };
    this.reviewComments.set(key, [...(this.reviewComments.get(key) ?? []), c]);
    return c.id;
  }
}

/** A percent-decoded path, or the path as it is when its encoding is malformed. */
function safeDecode(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}
