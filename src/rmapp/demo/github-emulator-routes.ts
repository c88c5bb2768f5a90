/**
 * The GitHub emulator's route table (github-emulator.ts): every route it serves, as a GitHub OpenAPI
 * path template with its method and handler, and what the handlers share — the JSON of a pull request,
 * one page of a list, the installation permissions.
 *
 * Every route must be an operation of GitHub's official description: {@link route} looks it up with
 * `findOperation` when the table is built and refuses one that is not (test/github-emulator-openapi.test.ts
 * checks the table too), and the emulator checks every request against that operation before its
 * handler runs: a request GitHub would refuse (a required field missing, a path parameter of the wrong
 * type) gets GitHub's 422 there too, so every end-to-end test checks the adapters' calls.
 *
 * Separate from github-emulator.ts, which is the HTTP server around the table: routing, auth, faults,
 * hooks, recording, the `link` header of paginated lists.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { findOperation } from './github-openapi.ts';
import type { Comment, EmulatedApp, Issue, Pull, Route, RouteHandler } from './github-emulator-types.ts';

/** The emulated repositories' data the routes read and change (the emulator's public state). */
export interface EmulatorData {
  readonly refs: Map<string, string>;
  readonly pulls: Map<string, Pull[]>;
  readonly comments: Map<string, Comment[]>;
  readonly reviewComments: Map<string, Comment[]>;
  readonly permissions: Map<string, string>;
  readonly issues: Map<string, Issue>;
  readonly repos: Map<string, { default_branch: string }>;
  readonly installationTokens: Map<string, number>;
  readonly botLogin: string;
  readonly webUrl: string;
  repositoryId(fullName: string): number;
}

/** What the routes need of the emulator beyond its data: the app it acts for, and new ids. */
export interface EmulatorInternals {
  /** The GitHub App configured with `configureApp`, if any. */
  app(): (EmulatedApp & { key: KeyObject }) | undefined;
  /** The next id of a pull request or comment. */
  newId(): number;
}

/** A page of a list: the handler's answer to a list request, sent with a `link` header when more follow. */
export class Page<T> {
  constructor(
    readonly items: T[],
    readonly hasNext: boolean,
  ) {}
}

export const INSTALLATION_PERMISSIONS = { contents: 'write', issues: 'write', pull_requests: 'write', metadata: 'read' };

/** Now, as GitHub's timestamps write it. */
export function timestamp(): string {
  return new Date().toISOString();
}

/**
 * Every route the emulator serves, over its data.
 *
 * @example
 * readonly routes = githubRoutes(this, { app: () => this.app, newId: () => this.nextId++ });
 */
export function githubRoutes(gh: EmulatorData, own: EmulatorInternals): readonly Route[] {
  return [
    route('GET', '/repos/{owner}/{repo}', ({ owner, repo }) => {
      const r = gh.repos.get(`${owner}/${repo}`);
      return r ? [200, { id: gh.repositoryId(`${owner}/${repo}`), name: repo, full_name: `${owner}/${repo}`, ...r }] : undefined;
    }),
    route('GET', '/repos/{owner}/{repo}/issues/{issue_number}', ({ owner, repo, issue_number }) => {
      const issue = gh.issues.get(`${owner}/${repo}#${issue_number}`);
      if (!issue) return undefined;
      const { closedAt, state, labels, ...text } = issue;
      return [
        200,
        {
          number: Number(issue_number),
          ...text,
          state: state ?? 'open',
          closed_at: closedAt ?? null,
          ...(labels ? { labels: labels.map((name) => ({ name })) } : {}),
        },
      ];
    }),
    route('GET', '/repos/{owner}/{repo}/git/ref/{ref}', ({ owner, repo, ref = '' }) => {
      const branch = ref.replace(/^heads\//, '');
      const sha = ref.startsWith('heads/') ? gh.refs.get(`${owner}/${repo}:${branch}`) : undefined;
      return sha ? [200, { ref: `refs/heads/${branch}`, object: { sha, type: 'commit' } }] : undefined;
    }),
    route('POST', '/repos/{owner}/{repo}/git/refs', ({ owner, repo }, _query, body) => {
      const branch = String(body.ref).replace(/^refs\/heads\//, '');
      const key = `${owner}/${repo}:${branch}`;
      if (gh.refs.has(key)) return [422, { message: 'Reference already exists' }];
      gh.refs.set(key, String(body.sha));
      return [201, { ref: body.ref, object: { sha: body.sha, type: 'commit' } }];
    }),
    route('GET', '/repos/{owner}/{repo}/pulls', ({ owner, repo }, query) => {
      const list = gh.pulls.get(`${owner}/${repo}`) ?? [];
      const head = query.get('head')?.split(':')[1];
      const state = query.get('state') ?? 'open';
      return [
        200,
        list
          .filter((p) => (!head || p.head === head) && (state === 'all' || p.state === state))
          .map((p) => pullJson(gh, `${owner}/${repo}`, p)),
      ];
    }),
    route('POST', '/repos/{owner}/{repo}/pulls', ({ owner, repo }, _query, body) => {
      const key = `${owner}/${repo}`;
      const list = gh.pulls.get(key) ?? [];
      if (list.some((p) => p.head === body.head && p.state === 'open'))
        return [422, { message: `A pull request already exists for ${owner}:${String(body.head)}.` }];
      const pull: Pull = {
        number: own.newId(),
        head: String(body.head),
        base: String(body.base),
        title: String(body.title),
        body: String(body.body ?? ''),
        state: 'open',
        draft: body.draft === true,
        requestedReviewers: [],
        // The token's own login opened it (the emulator's `GET /user`), as GitHub records the author.
        author: gh.botLogin,
      };
      gh.pulls.set(key, [...list, pull]);
      return [201, pullJson(gh, key, pull)];
    }),
    route('GET', '/repos/{owner}/{repo}/pulls/{pull_number}', ({ owner, repo, pull_number }) => {
      const pull = (gh.pulls.get(`${owner}/${repo}`) ?? []).find((p) => p.number === Number(pull_number));
      return pull ? [200, pullJson(gh, `${owner}/${repo}`, pull)] : undefined;
    }),
    route('PATCH', '/repos/{owner}/{repo}/pulls/{pull_number}', ({ owner, repo, pull_number }, _query, body) => {
      const pull = (gh.pulls.get(`${owner}/${repo}`) ?? []).find((p) => p.number === Number(pull_number));
      if (!pull) return undefined;
      if (body.title !== undefined) pull.title = String(body.title);
      if (body.body !== undefined) pull.body = String(body.body);
      return [200, pullJson(gh, `${owner}/${repo}`, pull)];
    }),
    route('POST', '/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers', ({ owner, repo, pull_number }, _query, body) => {
      const pull = (gh.pulls.get(`${owner}/${repo}`) ?? []).find((p) => p.number === Number(pull_number));
      if (!pull) return undefined;
      const reviewers = Array.isArray(body.reviewers) ? body.reviewers.map(String) : [];
      // GitHub refuses a review request from the pull request's own author (the bot opened it).
      if (reviewers.some((r) => r.toLowerCase() === gh.botLogin.toLowerCase()))
        return [422, { message: 'Review cannot be requested from pull request author.' }];
      pull.requestedReviewers = [...new Set([...(pull.requestedReviewers ?? []), ...reviewers])];
      return [201, pullJson(gh, `${owner}/${repo}`, pull)];
    }),
    route('GET', '/repos/{owner}/{repo}/pulls/comments/{comment_id}', ({ comment_id }) => {
      for (const list of gh.reviewComments.values()) {
        const c = list.find((x) => x.id === Number(comment_id));
        if (c) return [200, c];
      }
      return undefined;
    }),
    route('GET', '/repos/{owner}/{repo}/issues/{issue_number}/comments', ({ owner, repo, issue_number }, query) => [
      200,
      page(gh.comments.get(`${owner}/${repo}#${issue_number}`) ?? [], query),
    ]),
    route('POST', '/repos/{owner}/{repo}/issues/{issue_number}/comments', ({ owner, repo, issue_number }, _query, body) => {
      const key = `${owner}/${repo}#${issue_number}`;
      const c: Comment = {
        id: own.newId(),
        body: String(body.body),
        user: { login: gh.botLogin },
        created_at: timestamp(),
        updated_at: timestamp(),
      };
      gh.comments.set(key, [...(gh.comments.get(key) ?? []), c]);
      return [201, c];
    }),
    route('GET', '/repos/{owner}/{repo}/issues/comments/{comment_id}', ({ owner, repo, comment_id }) => {
      for (const [key, list] of gh.comments) {
        if (!key.startsWith(`${owner}/${repo}#`)) continue;
        const c = list.find((x) => x.id === Number(comment_id));
        if (c) return [200, c];
      }
      return undefined;
    }),
    route('PATCH', '/repos/{owner}/{repo}/issues/comments/{comment_id}', ({ comment_id }, _query, body) => {
      for (const list of gh.comments.values()) {
        const c = list.find((x) => x.id === Number(comment_id));
        if (c) {
          c.body = String(body.body);
          c.updated_at = timestamp();
          return [200, c];
        }
      }
      return undefined;
    }),
    route(
      'GET',
      '/repos/{owner}/{repo}/pulls/{pull_number}/reviews/{review_id}/comments',
      ({ owner, repo, pull_number, review_id }, query) => [
        200,
        page(
          (gh.reviewComments.get(`${owner}/${repo}#${pull_number}`) ?? []).filter((c) => c.pull_request_review_id === Number(review_id)),
          query,
        ),
      ],
    ),
    route('GET', '/repos/{owner}/{repo}/pulls/{pull_number}/comments', ({ owner, repo, pull_number }, query) => [
      200,
      page(gh.reviewComments.get(`${owner}/${repo}#${pull_number}`) ?? [], query),
    ]),
    route(
      'POST',
      '/repos/{owner}/{repo}/pulls/{pull_number}/comments/{comment_id}/replies',
      ({ owner, repo, pull_number, comment_id }, _query, body) => {
        const key = `${owner}/${repo}#${pull_number}`;
        const list = gh.reviewComments.get(key) ?? [];
        if (!list.some((c) => c.id === Number(comment_id))) return undefined;
        const c: Comment = {
          id: own.newId(),
          body: String(body.body),
          user: { login: gh.botLogin },
          in_reply_to_id: Number(comment_id),
          created_at: timestamp(),
          updated_at: timestamp(),
        };
        gh.reviewComments.set(key, [...list, c]);
        return [201, c];
      },
    ),
    route('GET', '/repos/{owner}/{repo}/collaborators/{username}/permission', ({ owner, repo, username }) => {
      const permission = gh.permissions.get(`${owner}/${repo}:${username}`);
      return permission
        ? [200, { permission: permission === 'maintain' ? 'write' : permission, role_name: permission, user: { login: username } }]
        : undefined;
    }),
    // Who the token is: the login that authors the token's writes.
    route('GET', '/user', () => [
      200,
      { login: gh.botLogin, id: 1, type: gh.botLogin.endsWith('[bot]') ? 'Bot' : 'User', site_admin: false },
    ]),
    // GitHub App routes: authenticated with the app's JWT (see configureApp).
    route(
      'GET',
      '/app',
      () => {
        const app = own.app();
        return app
          ? [200, { id: app.appId, slug: gh.botLogin.replace(/\[bot\]$/, ''), name: gh.botLogin.replace(/\[bot\]$/, '') }]
          : undefined;
      },
      'app',
    ),
    route(
      'GET',
      '/repos/{owner}/{repo}/installation',
      ({ owner, repo }) => {
        const app = own.app();
        const id = app?.installations[`${owner}/${repo}`];
        return id === undefined
          ? undefined
          : [
              200,
              {
                id,
                app_id: app?.appId,
                account: { login: owner },
                repository_selection: 'selected',
                permissions: INSTALLATION_PERMISSIONS,
              },
            ];
      },
      'app',
    ),
    route(
      'POST',
      '/app/installations/{installation_id}/access_tokens',
      ({ installation_id }) => {
        const id = Number(installation_id);
        const app = own.app();
        if (!app || !Object.values(app.installations).includes(id)) return undefined;
        const token = `ghs_${randomBytes(18).toString('hex')}`;
        const expiresAt = new Date(Date.now() + 3600_000).toISOString();
        gh.installationTokens.set(token, id);
        return [201, { token, expires_at: expiresAt, permissions: INSTALLATION_PERMISSIONS, repository_selection: 'selected' }];
      },
      'app',
    ),
  ];
}

/** Declares a route; its template must be an operation of GitHub's OpenAPI description. */
function route(method: string, path: string, handle: RouteHandler, auth: Route['auth'] = 'token'): Route {
  const operation = findOperation(method, path);
  if (!operation) throw new Error(`The emulator serves ${method} ${path}, which is not an operation of GitHub's OpenAPI description.`);
  const names: string[] = [];
  const source = path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, (_m, name: string) => {
    names.push(name);
    return operation.pathParams[name] === 'integer' ? '(\\d+)' : '([^/]+)';
  });
  return { method, path, auth, operation, pattern: new RegExp(`^${source}$`), names, handle };
}

/** A pull request as GitHub's JSON shows it (`html_url` under `webUrl`). */
function pullJson(gh: EmulatorData, repo: string, p: Pull) {
  const webUrl = gh.webUrl;
  const repoJson = (fullName: string) => {
    const [owner, name] = fullName.split('/');
    return { name, full_name: fullName, owner: { login: owner }, default_branch: gh.repos.get(fullName)?.default_branch ?? 'main' };
  };
  const headRepo = p.headRepo === undefined ? repo : p.headRepo;
  return {
    number: p.number,
    // GitHub's GraphQL global id of the pull request (what `markPullRequestReadyForReview` takes).
    node_id: pullNodeId(repo, p.number),
    title: p.title,
    body: p.body,
    state: p.state,
    merged_at: p.mergedAt ?? null,
    draft: p.draft ?? false,
    requested_reviewers: (p.requestedReviewers ?? []).map((login) => ({ login, type: 'User' })),
    // GitHub's author of the pull request; null for a deleted account (GitHub shows it as `ghost`).
    user: p.author === null ? null : userJson(p.author ?? 'octocat'),
    head: { ref: p.head, label: `${(headRepo ?? repo).split('/')[0]}:${p.head}`, repo: headRepo === null ? null : repoJson(headRepo) },
    base: { ref: p.base, label: `${repo.split('/')[0]}:${p.base}`, repo: repoJson(repo) },
    html_url: `${webUrl}/${repo}/pull/${p.number}`,
  };
}

/** A user as GitHub's JSON shows one: an App's bot (`name[bot]`) has the type `Bot`. */
function userJson(login: string) {
  return { login, type: login.endsWith('[bot]') ? 'Bot' : 'User' };
}

/** The emulator's GraphQL node id of a pull request: opaque to clients, as GitHub's `PR_kw…` ids are. */
export function pullNodeId(repo: string, number: number): string {
  return `PR_${Buffer.from(`${repo}#${number}`).toString('base64url')}`;
}

/** One page of `list`, as `per_page` and `page` ask (GitHub's defaults: 30, 1). */
export function page<T>(list: T[], query: URLSearchParams): Page<T> {
  const perPage = Number(query.get('per_page') ?? 30);
  const page = Number(query.get('page') ?? 1);
  return new Page(list.slice((page - 1) * perPage, page * perPage), list.length > page * perPage);
}
