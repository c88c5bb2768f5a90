/**
 * The shapes the GitHub emulator (./github-emulator.ts) keeps and serves, and how it checks a GitHub
 * App's JWT: kept apart so the emulator's file holds its routes.
 */
import { verify, type KeyObject } from 'node:crypto';
import type { SpecOperation } from './github-openapi.ts';

export interface Comment {
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

/**
 * An issue as the emulator keeps it: open unless `state` says otherwise. `closedAt` is GitHub's
 * `closed_at` (set it with the state, as closing does on GitHub).
 */
export interface Issue {
  title: string;
  body: string;
  state?: 'open' | 'closed';
  closedAt?: string | null;
  /** Names of the labels on it; absent: the answer lists none (GitHub's always does). */
  labels?: string[];
}

export interface Pull {
  number: number;
  head: string;
  base: string;
  title: string;
  body: string;
  state: 'open' | 'closed';
  /** When it was merged (ISO 8601; its state is then `closed`); null or absent when it was not. */
  mergedAt?: string | null;
  /** Opened as a draft (`POST /pulls` with `draft: true`); GraphQL's `markPullRequestReadyForReview` clears it. */
  draft?: boolean;
  /** Logins asked for a review (`POST /pulls/{n}/requested_reviewers`). */
  requestedReviewers?: string[];
  /** The repository the head branch is in (`owner/name`): another one for a fork's PR; null when the fork was deleted. Default: the PR's own. */
  headRepo?: string | null;
  /**
   * Who opened it (GitHub's `user.login`): `POST /pulls` records the token's own login, as GitHub does.
   * Default: `octocat`, a person — a pull request a test puts here is someone's, never the bot's, unless
   * the test says so (rmapp pushes review changes only to the pull requests it opened itself).
   */
  author?: string | null;
}

export interface Fault {
  method: string;
  path: RegExp;
  status: number;
  headers: Record<string, string>;
  message: string;
  times: number;
}

export interface RecordedRequest {
  method: string;
  /** The decoded path, without the prefix (`/api/v3`). */
  path: string;
  /** The repository it acted on (`owner/repo`), named by its path or by id (`/repositories/{id}/…`). */
  repository?: string | undefined;
  body: unknown;
  /** The OpenAPI template of the route that served it (unset: no route, 404). */
  route?: string | undefined;
  /** Who made it: `token` (the static token), `installation:<id>` (an issued installation token), `app` (the app's JWT). */
  auth?: string | undefined;
  /** What GitHub's description says is wrong with it; the emulator answered 422. */
  problems?: string[] | undefined;
}

export type RouteHandler = (
  params: Record<string, string>,
  query: URLSearchParams,
  body: Record<string, unknown>,
) => [number, unknown] | undefined;

/** A route the emulator serves: an operation of GitHub's REST API. */
export interface Route {
  method: string;
  /** OpenAPI path template, e.g. `/repos/{owner}/{repo}/pulls`. */
  path: string;
  /** `token`: a token or installation token; `app`: the GitHub App's JWT. */
  auth: 'token' | 'app';
  operation: SpecOperation;
  pattern: RegExp;
  names: string[];
  handle: RouteHandler;
}

/** Runs before a matching request is served (`before`) or after its handler ran (`after`). */
export interface RouteHook {
  method: string;
  /** OpenAPI template of the route. */
  route: string;
  when: 'before' | 'after';
  /**
   * Return true to leave the request unanswered (the caller is gone, e.g. killed), or the answer to
   * give instead: after the write was carried out (`when: 'after'`), as GitHub's 502 of a request it
   * applied, whose caller cannot tell it from one it did not; or `data` as the body (a list that lags
   * behind a write, as GitHub's may).
   */
  run: (request: RecordedRequest) => boolean | void | { status: number; message?: string; data?: unknown };
  /** Matching requests it still fires for (default 1). */
  times?: number;
}

/** A GitHub App the emulator knows: its id, public key and where it is installed. */
export interface EmulatedApp {
  appId: number;
  publicKey: KeyObject | string;
  /** Installation id by repository full name (`owner/repo`). */
  installations: Record<string, number>;
}

/** How the emulator is served: see {@link GitHubEmulator.start}. */
export interface EmulatorServeOptions {
  /** Path prefix of the API, `/api/v3` (GitHub Enterprise Server) by default; `''` for the root (api.github.com). */
  pathPrefix?: string | undefined;
  /** How `link` headers name a repository: by id (`/repositories/{id}/…`, GitHub's way, the default) or by path. */
  links?: 'repository-id' | 'path' | undefined;
  /** The web address `html_url`s point at (default `https://github.example`; the demo serves its own pages). */
  webUrl?: string | undefined;
  /**
   * The web pages outside the API prefix (as GitHub Enterprise Server serves its web UI next to
   * `/api/v3`): the HTML of a GET path, or undefined for 404. Default: none.
   */
  web?: ((path: string) => string | undefined | Promise<string | undefined>) | undefined;
}

/** A GitHub App JWT: RS256, signed by the app's key, `iss` the app id, issued and not expired. */
export function verifyAppJwt(jwt: string, appId: number, key: KeyObject): boolean {
  const [header, payload, signature] = jwt.split('.');
  if (!header || !payload || !signature) return false;
  try {
    const h = JSON.parse(Buffer.from(header, 'base64url').toString()) as { alg?: string };
    const p = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { iss?: unknown; iat?: number; exp?: number };
    if (h.alg !== 'RS256') return false;
    if (!verify('RSA-SHA256', Buffer.from(`${header}.${payload}`), key, Buffer.from(signature, 'base64url'))) return false;
    const now = Date.now() / 1000;
    // GitHub: iat not in the future (60 s of clock drift allowed), exp at most 10 minutes after iat.
    if (typeof p.iat !== 'number' || typeof p.exp !== 'number' || p.iat > now + 60 || p.exp < now || p.exp - p.iat > 600) return false;
    return String(p.iss) === String(appId);
  } catch {
    return false;
  }
}
