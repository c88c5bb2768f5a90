/**
 * Which repository a GitHub REST request acts on — what the App's routed client needs to pick the
 * installation token for it (see `createRoutedGitHubClient`).
 *
 * A request names its repository in one of three ways:
 * - the route's `owner` and `repo` parameters (`GET /repos/{owner}/{repo}/issues`, as the steps call it);
 * - the path of an absolute URL without those parameters: the first page of `octokit.paginate` is
 *   already expanded to `https://HOST/api/v3/repos/acme/widgets/issues/1/comments?per_page=100`, and
 *   a `link` header may point to `…/repos/{owner}/{repo}/…` too. The path is read after the base
 *   URL's own path (`/api/v3` on GitHub Enterprise Server, nothing on api.github.com);
 * - a `/repositories/{id}/…` URL: GitHub's `link` headers name a repository by id
 *   (`https://api.github.com/repositories/1300192/issues?page=2`). The id is taken from the `link`
 *   header of the response that handed it out, a request on a named repository (page 1), so page 2
 *   knows it; a repository's own JSON (`GET /repos/{owner}/{repo}`) teaches its id too. An id never
 *   seen is refused rather than resolved: nothing the client does sends it one, and resolving it
 *   would need a token of the right installation, the very thing not known.
 *
 * A URL on another origin than the base URL, or outside its path, names no repository: the
 * installation token is never sent anywhere but the configured GitHub.
 */

/** A repository, as GitHub names it in URLs. */
export interface RepositoryName {
  owner: string;
  repo: string;
}

/** The parts of an Octokit endpoint that name a repository. */
export interface EndpointLike {
  method: string;
  url: string;
  owner?: unknown;
  repo?: unknown;
  /**
   * Octokit's request options, never sent: a GraphQL call (whose URL names no repository) says which
   * repository it acts on in `request.repository`.
   */
  request?: { repository?: unknown } | undefined;
}

/** Why a request names no repository (the message says which request and why). */
export class NoRepositoryError extends Error {
  override name = 'NoRepositoryError';
}

/**
 * Tells the repository of each request of a client on `baseUrl`, and remembers the repository ids
 * GitHub's responses use (one small entry per repository the service acts on, kept for the life
 * of the client).
 */
export class RequestRepositories {
  private readonly origin: string;
  /** The base URL's path without its trailing slash: `` or `/api/v3`. */
  private readonly prefix: string;
  private readonly byId = new Map<string, RepositoryName>();

  constructor(baseUrl: string) {
    const base = new URL(baseUrl);
    this.origin = base.origin;
    this.prefix = base.pathname.replace(/\/+$/, '');
  }

  /** The repository `endpoint` acts on; throws {@link NoRepositoryError} when it names none. */
  of(endpoint: EndpointLike): RepositoryName {
    const { owner, repo } = endpoint;
    if (typeof owner === 'string' && owner && typeof repo === 'string' && repo) return { owner, repo };
    const named = endpoint.request?.repository as Partial<RepositoryName> | undefined;
    if (typeof named?.owner === 'string' && named.owner && typeof named.repo === 'string' && named.repo)
      return { owner: named.owner, repo: named.repo };
    const path = this.apiPath(endpoint.url);
    const what = `${endpoint.method} ${endpoint.url}`;
    if (path === null)
      throw new NoRepositoryError(
        `GitHub App: cannot tell the installation of ${what}: it is not a URL of the configured GitHub API (${this.origin}${this.prefix}).`,
      );
    const [, first, second, third] = path.split('/').map(safeDecode);
    if (first === 'repos' && second && third && !/[{}]/.test(second + third)) return { owner: second, repo: third };
    if (first === 'repositories' && second && /^\d+$/.test(second)) {
      const known = this.byId.get(second);
      if (known) return known;
      throw new NoRepositoryError(
        `GitHub App: cannot tell the installation of ${what}: repository id ${second} was not named by an earlier response.`,
      );
    }
    throw new NoRepositoryError(`GitHub App: cannot tell the installation of ${what}: it names no repository.`);
  }

  /**
   * Learns from the response to a request on `repository`: the repository ids in its `link` header
   * (the next pages), and the id of a repository object that is `repository` itself.
   */
  learn(repository: RepositoryName, response: { headers?: Record<string, unknown> | undefined; data?: unknown }): void {
    const link = response.headers?.link;
    if (typeof link === 'string') {
      for (const [, url] of link.matchAll(/<([^<>]+)>/g)) {
        const path = url ? this.apiPath(url) : null;
        const id = path ? /^\/repositories\/(\d+)(?:[/?#]|$)/.exec(path)?.[1] : undefined;
        if (id) this.byId.set(id, repository);
      }
    }
    const data = response.data as { id?: unknown; full_name?: unknown } | null | undefined;
    if (
      data &&
      typeof data.id === 'number' &&
      typeof data.full_name === 'string' &&
      data.full_name.toLowerCase() === `${repository.owner}/${repository.repo}`.toLowerCase()
    ) {
      this.byId.set(String(data.id), repository);
    }
  }

  /**
   * The path of `url` below the API root (`/repos/…`), or null when it is not under this client's
   * base URL. A relative URL is relative to the API root already (Octokit prefixes the base URL).
   */
  private apiPath(url: string): string | null {
    if (!/^[a-z][a-z\d+.-]*:/i.test(url)) return new URL(url, 'http://relative.invalid').pathname;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return null;
    }
    if (parsed.origin !== this.origin) return null;
    if (!this.prefix) return parsed.pathname;
    if (parsed.pathname !== this.prefix && !parsed.pathname.startsWith(`${this.prefix}/`)) return null;
    return parsed.pathname.slice(this.prefix.length) || '/';
  }
}

/** A path segment decoded, or as it is when it is not valid percent-encoding. */
function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
