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
 * description before it is served (see `routes` and ./github-openapi.ts).
 */
import { createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkRequest, findOperation } from './github-openapi.ts';
import {
  verifyAppJwt,
  type Comment,
  type EmulatedApp,
  type EmulatorServeOptions,
  type Fault,
  type Pull,
  type RecordedRequest,
  type Route,
  type RouteHandler,
  type RouteHook,
} from './github-emulator-types.ts';

export type { EmulatedApp, EmulatorServeOptions, RecordedRequest, Route, RouteHook } from './github-emulator-types.ts';

/** A page of a list: the handler's answer to a list request, sent with a `link` header when more follow. */
class Page<T> {
  constructor(
    readonly items: T[],
    readonly hasNext: boolean,
  ) {}
}

const INSTALLATION_PERMISSIONS = { contents: 'write', issues: 'write', pull_requests: 'write', metadata: 'read' };

export class GitHubEmulator {
  readonly refs = new Map<string, string>(); // "owner/repo:branch" -> sha
  readonly pulls = new Map<string, Pull[]>(); // "owner/repo"
  readonly comments = new Map<string, Comment[]>(); // "owner/repo#n" issue comments
  readonly reviewComments = new Map<string, Comment[]>(); // "owner/repo#n" PR review comments
  readonly permissions = new Map<string, string>(); // "owner/repo:user" -> permission
  readonly issues = new Map<string, { title: string; body: string }>(); // "owner/repo#n"
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
      const html = this.web(safeDecode(url.pathname));
      res.writeHead(html === undefined ? 404 : 200, { 'content-type': 'text/html; charset=utf-8' });
      return void res.end(html ?? '<!doctype html><title>Not found</title><p>Not found.</p>');
    }
    const send = (status: number, data: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
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
    if (this.runHooks('before', method, match.route.path, recorded)) return;
    try {
      const result = match.route.handle(match.params, url.searchParams, body ?? {});
      if (this.runHooks('after', method, match.route.path, recorded)) return;
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

  private runHooks(when: RouteHook['when'], method: string, route: string, request: RecordedRequest): boolean {
    const hook = this.hooks.find((h) => h.when === when && h.method === method && h.route === route && (h.times ?? 1) > 0);
    if (!hook) return false;
    hook.times = (hook.times ?? 1) - 1;
    return hook.run(request) === true;
  }

  private now(): string {
    return new Date().toISOString();
  }

  /**
   * Every route served, as a GitHub OpenAPI path template with its method. Each must be an operation
   * of GitHub's official description (checked when the emulator is built and by
   * test/github-emulator-openapi.test.ts), and every request is checked against that operation before
   * its handler runs: a request GitHub would refuse (a required field missing, a path parameter of
   * the wrong type) gets GitHub's 422 here too, so every end-to-end test checks the adapters' calls.
   */
  readonly routes: readonly Route[] = [
    this.on('GET', '/repos/{owner}/{repo}', ({ owner, repo }) => {
      const r = this.repos.get(`${owner}/${repo}`);
      return r ? [200, { id: this.repositoryId(`${owner}/${repo}`), name: repo, full_name: `${owner}/${repo}`, ...r }] : undefined;
    }),
    this.on('GET', '/repos/{owner}/{repo}/issues/{issue_number}', ({ owner, repo, issue_number }) => {
      const issue = this.issues.get(`${owner}/${repo}#${issue_number}`);
      return issue ? [200, { number: Number(issue_number), state: 'open', ...issue }] : undefined;
    }),
    this.on('GET', '/repos/{owner}/{repo}/git/ref/{ref}', ({ owner, repo, ref = '' }) => {
      const branch = ref.replace(/^heads\//, '');
      const sha = ref.startsWith('heads/') ? this.refs.get(`${owner}/${repo}:${branch}`) : undefined;
      return sha ? [200, { ref: `refs/heads/${branch}`, object: { sha, type: 'commit' } }] : undefined;
    }),
    this.on('POST', '/repos/{owner}/{repo}/git/refs', ({ owner, repo }, _query, body) => {
      const branch = String(body.ref).replace(/^refs\/heads\//, '');
      const key = `${owner}/${repo}:${branch}`;
      if (this.refs.has(key)) return [422, { message: 'Reference already exists' }];
      this.refs.set(key, String(body.sha));
      return [201, { ref: body.ref, object: { sha: body.sha, type: 'commit' } }];
    }),
    this.on('GET', '/repos/{owner}/{repo}/pulls', ({ owner, repo }, query) => {
      const list = this.pulls.get(`${owner}/${repo}`) ?? [];
      const head = query.get('head')?.split(':')[1];
      const state = query.get('state') ?? 'open';
      return [
        200,
        list
          .filter((p) => (!head || p.head === head) && (state === 'all' || p.state === state))
          .map((p) => this.pullJson(`${owner}/${repo}`, p)),
      ];
    }),
    this.on('POST', '/repos/{owner}/{repo}/pulls', ({ owner, repo }, _query, body) => {
      const key = `${owner}/${repo}`;
      const list = this.pulls.get(key) ?? [];
      if (list.some((p) => p.head === body.head && p.state === 'open'))
        return [422, { message: `A pull request already exists for ${owner}:${String(body.head)}.` }];
      const pull: Pull = {
        number: this.nextId++,
        head: String(body.head),
        base: String(body.base),
        title: String(body.title),
        body: String(body.body ?? ''),
        state: 'open',
      };
      this.pulls.set(key, [...list, pull]);
      return [201, this.pullJson(key, pull)];
    }),
    this.on('GET', '/repos/{owner}/{repo}/pulls/{pull_number}', ({ owner, repo, pull_number }) => {
      const pull = (this.pulls.get(`${owner}/${repo}`) ?? []).find((p) => p.number === Number(pull_number));
      return pull ? [200, this.pullJson(`${owner}/${repo}`, pull)] : undefined;
    }),
    this.on('PATCH', '/repos/{owner}/{repo}/pulls/{pull_number}', ({ owner, repo, pull_number }, _query, body) => {
      const pull = (this.pulls.get(`${owner}/${repo}`) ?? []).find((p) => p.number === Number(pull_number));
      if (!pull) return undefined;
      if (body.title !== undefined) pull.title = String(body.title);
      if (body.body !== undefined) pull.body = String(body.body);
      return [200, this.pullJson(`${owner}/${repo}`, pull)];
    }),
    this.on('GET', '/repos/{owner}/{repo}/pulls/comments/{comment_id}', ({ comment_id }) => {
      for (const list of this.reviewComments.values()) {
        const c = list.find((x) => x.id === Number(comment_id));
        if (c) return [200, c];
      }
      return undefined;
    }),
    this.on('GET', '/repos/{owner}/{repo}/issues/{issue_number}/comments', ({ owner, repo, issue_number }, query) => [
      200,
      this.page(this.comments.get(`${owner}/${repo}#${issue_number}`) ?? [], query),
    ]),
    this.on('POST', '/repos/{owner}/{repo}/issues/{issue_number}/comments', ({ owner, repo, issue_number }, _query, body) => {
      const key = `${owner}/${repo}#${issue_number}`;
      const c: Comment = {
        id: this.nextId++,
        body: String(body.body),
        user: { login: this.botLogin },
        created_at: this.now(),
        updated_at: this.now(),
      };
      this.comments.set(key, [...(this.comments.get(key) ?? []), c]);
      return [201, c];
    }),
    this.on('PATCH', '/repos/{owner}/{repo}/issues/comments/{comment_id}', ({ comment_id }, _query, body) => {
      for (const list of this.comments.values()) {
        const c = list.find((x) => x.id === Number(comment_id));
        if (c) {
          c.body = String(body.body);
          c.updated_at = this.now();
          return [200, c];
        }
      }
      return undefined;
    }),
    this.on(
      'GET',
      '/repos/{owner}/{repo}/pulls/{pull_number}/reviews/{review_id}/comments',
      ({ owner, repo, pull_number, review_id }, query) => [
        200,
        this.page(
          (this.reviewComments.get(`${owner}/${repo}#${pull_number}`) ?? []).filter((c) => c.pull_request_review_id === Number(review_id)),
          query,
        ),
      ],
    ),
    this.on('GET', '/repos/{owner}/{repo}/pulls/{pull_number}/comments', ({ owner, repo, pull_number }, query) => [
      200,
      this.page(this.reviewComments.get(`${owner}/${repo}#${pull_number}`) ?? [], query),
    ]),
    this.on(
      'POST',
      '/repos/{owner}/{repo}/pulls/{pull_number}/comments/{comment_id}/replies',
      ({ owner, repo, pull_number, comment_id }, _query, body) => {
        const key = `${owner}/${repo}#${pull_number}`;
        const list = this.reviewComments.get(key) ?? [];
        if (!list.some((c) => c.id === Number(comment_id))) return undefined;
        const c: Comment = {
          id: this.nextId++,
          body: String(body.body),
          user: { login: this.botLogin },
          in_reply_to_id: Number(comment_id),
          created_at: this.now(),
          updated_at: this.now(),
        };
        this.reviewComments.set(key, [...list, c]);
        return [201, c];
      },
    ),
    this.on('GET', '/repos/{owner}/{repo}/collaborators/{username}/permission', ({ owner, repo, username }) => {
      const permission = this.permissions.get(`${owner}/${repo}:${username}`);
      return permission
        ? [200, { permission: permission === 'maintain' ? 'write' : permission, role_name: permission, user: { login: username } }]
        : undefined;
    }),
    // Who the token is: the login that authors the token's writes.
    this.on('GET', '/user', () => [
      200,
      { login: this.botLogin, id: 1, type: this.botLogin.endsWith('[bot]') ? 'Bot' : 'User', site_admin: false },
    ]),
    // GitHub App routes: authenticated with the app's JWT (see configureApp).
    this.on(
      'GET',
      '/app',
      () =>
        this.app
          ? [200, { id: this.app.appId, slug: this.botLogin.replace(/\[bot\]$/, ''), name: this.botLogin.replace(/\[bot\]$/, '') }]
          : undefined,
      'app',
    ),
    this.on(
      'GET',
      '/repos/{owner}/{repo}/installation',
      ({ owner, repo }) => {
        const id = this.app?.installations[`${owner}/${repo}`];
        return id === undefined
          ? undefined
          : [
              200,
              {
                id,
                app_id: this.app?.appId,
                account: { login: owner },
                repository_selection: 'selected',
                permissions: INSTALLATION_PERMISSIONS,
              },
            ];
      },
      'app',
    ),
    this.on(
      'POST',
      '/app/installations/{installation_id}/access_tokens',
      ({ installation_id }) => {
        const id = Number(installation_id);
        if (!this.app || !Object.values(this.app.installations).includes(id)) return undefined;
        const token = `ghs_${randomBytes(18).toString('hex')}`;
        const expiresAt = new Date(Date.now() + 3600_000).toISOString();
        this.installationTokens.set(token, id);
        return [201, { token, expires_at: expiresAt, permissions: INSTALLATION_PERMISSIONS, repository_selection: 'selected' }];
      },
      'app',
    ),
  ];

  /** Declares a route; its template must be an operation of GitHub's OpenAPI description. */
  private on(method: string, path: string, handle: RouteHandler, auth: Route['auth'] = 'token'): Route {
    const operation = findOperation(method, path);
    if (!operation) throw new Error(`The emulator serves ${method} ${path}, which is not an operation of GitHub's OpenAPI description.`);
    const names: string[] = [];
    const source = path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, (_m, name: string) => {
      names.push(name);
      return operation.pathParams[name] === 'integer' ? '(\\d+)' : '([^/]+)';
    });
    return { method, path, auth, operation, pattern: new RegExp(`^${source}$`), names, handle };
  }

  /** Adds an issue comment by someone (what a person wrote on an issue or PR's conversation). */
  addIssueComment(owner: string, repo: string, issueNumber: number, body: string, login = 'someone'): number {
    const key = `${owner}/${repo}#${issueNumber}`;
    const c: Comment = { id: this.nextId++, body, user: { login }, created_at: this.now(), updated_at: this.now() };
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
    const c: Comment = { id: this.nextId++, body, user: { login }, created_at: this.now(), updated_at: this.now(), ...place };
    this.reviewComments.set(key, [...(this.reviewComments.get(key) ?? []), c]);
    return c.id;
  }

  private pullJson(repo: string, p: Pull) {
    const repoJson = (fullName: string) => {
      const [owner, name] = fullName.split('/');
      return { name, full_name: fullName, owner: { login: owner } };
    };
    const headRepo = p.headRepo === undefined ? repo : p.headRepo;
    return {
      number: p.number,
      title: p.title,
      body: p.body,
      state: p.state,
      head: { ref: p.head, label: `${(headRepo ?? repo).split('/')[0]}:${p.head}`, repo: headRepo === null ? null : repoJson(headRepo) },
      base: { ref: p.base, label: `${repo.split('/')[0]}:${p.base}`, repo: repoJson(repo) },
      html_url: `${this.webUrl}/${repo}/pull/${p.number}`,
    };
  }

  /** One page of `list`, as `per_page` and `page` ask (GitHub's defaults: 30, 1). */
  private page<T>(list: T[], query: URLSearchParams): Page<T> {
    const perPage = Number(query.get('per_page') ?? 30);
    const page = Number(query.get('page') ?? 1);
    return new Page(list.slice((page - 1) * perPage, page * perPage), list.length > page * perPage);
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
