/**
 * A GitHub emulator for tests: a local HTTP server speaking the subset of the REST API rmapp uses, so
 * the real Octokit client (auth, retry and throttling plugins included) is exercised end to end. It
 * serves under `/api/v3` like GitHub Enterprise, checks the token, records every write, and injects
 * faults on demand (5xx, 429, secondary rate limits).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

interface Comment {
  id: number;
  body: string;
  pull_request_review_id?: number;
  path?: string;
  line?: number;
  user: { login: string };
  in_reply_to_id?: number;
  created_at: string;
  updated_at: string;
}

interface Pull {
  number: number;
  head: string;
  base: string;
  title: string;
  body: string;
  state: 'open' | 'closed';
}

interface Fault {
  method: string;
  path: RegExp;
  status: number;
  headers: Record<string, string>;
  message: string;
  times: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  body: unknown;
}

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
  private nextId = 1000;
  private server: Server | undefined;
  url = '';

  constructor(readonly token = 'test-token', readonly botLogin = 'rmapp[bot]') {}

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/api/v3`;
    return this.url;
  }

  async stop(): Promise<void> {
    await new Promise((resolve) => this.server?.close(resolve));
  }

  /** The next `times` requests matching `method` and `path` answer with `status` (and headers). */
  failNext(method: string, path: RegExp, status: number, options: { headers?: Record<string, string>; message?: string; times?: number } = {}): void {
    this.faults.push({ method, path, status, headers: options.headers ?? {}, message: options.message ?? `emulated ${status}`, times: options.times ?? 1 });
  }

  /** Writes (POST/PATCH/PUT/DELETE) received, optionally only those whose path matches. */
  writes(path?: RegExp): RecordedRequest[] {
    return this.requests.filter((r) => r.method !== 'GET' && (!path || path.test(r.path)));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const url = new URL(req.url ?? '/', 'http://x');
    const path = decodeURIComponent(url.pathname).replace(/^\/api\/v3/, '');
    const method = req.method ?? 'GET';
    const body = raw ? (JSON.parse(raw) as Record<string, unknown>) : undefined;
    this.requests.push({ method, path, body });
    const send = (status: number, data: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(data === undefined ? '' : JSON.stringify(data));
    };
    const auth = req.headers.authorization ?? '';
    if (auth !== `token ${this.token}` && auth !== `bearer ${this.token}` && auth !== `Bearer ${this.token}`) {
      return send(401, { message: 'Bad credentials' });
    }
    const fault = this.faults.find((f) => f.method === method && f.path.test(path) && f.times > 0);
    if (fault) {
      fault.times -= 1;
      return send(fault.status, { message: fault.message }, fault.headers);
    }
    try {
      const result = this.route(method, path, url.searchParams, body ?? {});
      if (!result) return send(404, { message: 'Not Found' });
      // Pagination as GitHub does it: a Link header to the next page, which Octokit's paginate follows.
      const headers: Record<string, string> = {};
      if (method === 'GET' && Array.isArray(result[1])) {
        const perPage = Number(url.searchParams.get('per_page') ?? 30);
        const page = Number(url.searchParams.get('page') ?? 1);
        if ((this.lastListLength ?? 0) > page * perPage) {
          const next = new URL(`${this.url}${path}`);
          url.searchParams.forEach((v, k) => next.searchParams.set(k, v));
          next.searchParams.set('page', String(page + 1));
          headers.link = `<${next.toString()}>; rel="next"`;
        }
      }
      send(result[0], result[1], headers);
    } catch (err) {
      send(500, { message: (err as Error).message });
    }
  }

  private now(): string {
    return new Date().toISOString();
  }

  private route(method: string, path: string, query: URLSearchParams, body: Record<string, unknown>): [number, unknown] | undefined {
    let m: RegExpExecArray | null;
    if ((m = /^\/repos\/([^/]+)\/([^/]+)$/.exec(path)) && method === 'GET') {
      const r = this.repos.get(`${m[1]}/${m[2]}`);
      return r ? [200, { name: m[2], full_name: `${m[1]}/${m[2]}`, ...r }] : undefined;
    }
    if ((m = /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)$/.exec(path)) && method === 'GET') {
      const issue = this.issues.get(`${m[1]}/${m[2]}#${m[3]}`);
      return issue ? [200, { number: Number(m[3]), state: 'open', ...issue }] : undefined;
    }
    if ((m = /^\/repos\/([^/]+)\/([^/]+)\/git\/ref\/heads\/(.+)$/.exec(path)) && method === 'GET') {
      const sha = this.refs.get(`${m[1]}/${m[2]}:${m[3]}`);
      return sha ? [200, { ref: `refs/heads/${m[3]}`, object: { sha, type: 'commit' } }] : undefined;
    }
    if ((m = /^\/repos\/([^/]+)\/([^/]+)\/git\/refs$/.exec(path)) && method === 'POST') {
      const branch = String(body.ref).replace(/^refs\/heads\//, '');
      const key = `${m[1]}/${m[2]}:${branch}`;
      if (this.refs.has(key)) return [422, { message: 'Reference already exists' }];
      this.refs.set(key, String(body.sha));
      return [201, { ref: body.ref, object: { sha: body.sha, type: 'commit' } }];
    }
    if ((m = /^\/repos\/([^/]+)\/([^/]+)\/pulls$/.exec(path))) {
      const repo = `${m[1]}/${m[2]}`;
      const list = this.pulls.get(repo) ?? [];
      if (method === 'GET') {
        const head = query.get('head')?.split(':')[1];
        const state = query.get('state') ?? 'open';
        return [200, list.filter((p) => (!head || p.head === head) && (state === 'all' || p.state === state)).map((p) => this.pullJson(repo, p))];
      }
      if (method === 'POST') {
        if (list.some((p) => p.head === body.head && p.state === 'open')) return [422, { message: `A pull request already exists for ${m[1]}:${String(body.head)}.` }];
        const pull: Pull = { number: this.nextId++, head: String(body.head), base: String(body.base), title: String(body.title), body: String(body.body ?? ''), state: 'open' };
        this.pulls.set(repo, [...list, pull]);
        return [201, this.pullJson(repo, pull)];
      }
    }
    if ((m = /^\/repos\/([^/]+)\/([^/]+)\/pulls\/(\d+)$/.exec(path)) && method === 'GET') {
      const repo = `${m[1]}/${m[2]}`;
      const pull = (this.pulls.get(repo) ?? []).find((p) => p.number === Number(m?.[3]));
      return pull ? [200, this.pullJson(repo, pull)] : undefined;
    }
    if ((m = /^\/repos\/([^/]+)\/([^/]+)\/pulls\/comments\/(\d+)$/.exec(path)) && method === 'GET') {
      for (const list of this.reviewComments.values()) {
        const c = list.find((x) => x.id === Number(m?.[3]));
        if (c) return [200, c];
      }
      return undefined;
    }
    if ((m = /^\/repos\/([^/]+)\/([^/]+)\/pulls\/(\d+)$/.exec(path)) && method === 'PATCH') {
      const repo = `${m[1]}/${m[2]}`;
      const pull = (this.pulls.get(repo) ?? []).find((p) => p.number === Number(m?.[3]));
      if (!pull) return undefined;
      if (body.title !== undefined) pull.title = String(body.title);
      if (body.body !== undefined) pull.body = String(body.body);
      return [200, this.pullJson(repo, pull)];
    }
    if ((m = /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/comments$/.exec(path))) {
      const key = `${m[1]}/${m[2]}#${m[3]}`;
      const list = this.comments.get(key) ?? [];
      if (method === 'GET') return [200, this.page(list, query)];
      if (method === 'POST') {
        const c: Comment = { id: this.nextId++, body: String(body.body), user: { login: this.botLogin }, created_at: this.now(), updated_at: this.now() };
        this.comments.set(key, [...list, c]);
        return [201, c];
      }
    }
    if ((m = /^\/repos\/([^/]+)\/([^/]+)\/issues\/comments\/(\d+)$/.exec(path)) && method === 'PATCH') {
      for (const list of this.comments.values()) {
        const c = list.find((x) => x.id === Number(m?.[3]));
        if (c) {
          c.body = String(body.body);
          c.updated_at = this.now();
          return [200, c];
        }
      }
      return undefined;
    }
    if ((m = /^\/repos\/([^/]+)\/([^/]+)\/pulls\/(\d+)\/reviews\/(\d+)\/comments$/.exec(path)) && method === 'GET') {
      const list = (this.reviewComments.get(`${m[1]}/${m[2]}#${m[3]}`) ?? []).filter((c) => c.pull_request_review_id === Number(m?.[4]));
      return [200, this.page(list, query)];
    }
    if ((m = /^\/repos\/([^/]+)\/([^/]+)\/pulls\/(\d+)\/comments$/.exec(path)) && method === 'GET') {
      return [200, this.page(this.reviewComments.get(`${m[1]}/${m[2]}#${m[3]}`) ?? [], query)];
    }
    if ((m = /^\/repos\/([^/]+)\/([^/]+)\/pulls\/(\d+)\/comments\/(\d+)\/replies$/.exec(path)) && method === 'POST') {
      const key = `${m[1]}/${m[2]}#${m[3]}`;
      const list = this.reviewComments.get(key) ?? [];
      if (!list.some((c) => c.id === Number(m?.[4]))) return undefined;
      const c: Comment = { id: this.nextId++, body: String(body.body), user: { login: this.botLogin }, in_reply_to_id: Number(m[4]), created_at: this.now(), updated_at: this.now() };
      this.reviewComments.set(key, [...list, c]);
      return [201, c];
    }
    if ((m = /^\/repos\/([^/]+)\/([^/]+)\/collaborators\/([^/]+)\/permission$/.exec(path)) && method === 'GET') {
      const permission = this.permissions.get(`${m[1]}/${m[2]}:${m[3]}`);
      return permission ? [200, { permission: permission === 'maintain' ? 'write' : permission, role_name: permission, user: { login: m[3] } }] : undefined;
    }
    return undefined;
  }

  /** Adds a review comment by someone (what a reviewer wrote on a PR). */
  addReviewComment(owner: string, repo: string, pullNumber: number, body: string, login = 'reviewer', place: { path?: string; line?: number; pull_request_review_id?: number } = {}): number {
    const key = `${owner}/${repo}#${pullNumber}`;
    const c: Comment = { id: this.nextId++, body, user: { login }, created_at: this.now(), updated_at: this.now(), ...place };
    this.reviewComments.set(key, [...(this.reviewComments.get(key) ?? []), c]);
    return c.id;
  }

  private pullJson(repo: string, p: Pull) {
    return { number: p.number, title: p.title, body: p.body, state: p.state, head: { ref: p.head }, base: { ref: p.base }, html_url: `https://github.example/${repo}/pull/${p.number}` };
  }

  private lastListLength: number | undefined;

  private page<T>(list: T[], query: URLSearchParams): T[] {
    this.lastListLength = list.length;
    const perPage = Number(query.get('per_page') ?? 30);
    const page = Number(query.get('page') ?? 1);
    return list.slice((page - 1) * perPage, page * perPage);
  }
}
