/**
 * Turns a verified GitHub webhook into the small, validated input of a `GitHubDelivery` run — or into
 * a reason to ignore it. Only what the routing needs is kept (no tokens, no whole payloads in the
 * database), and the filter is pure and fast so the HTTP handler answers in milliseconds: comments
 * that do not mention the bot, bot-authored comments and unmapped labels never become runs.
 */
import { mentions } from '../commands.ts';
import { githubEventInput, type GitHubEventInput } from '../../machines/github-delivery.ts';

export type Normalized = { kind: 'run'; input: GitHubEventInput } | { kind: 'ignored'; reason: string };

interface Payload {
  action?: string;
  repository?: { name?: string; owner?: { login?: string } };
  installation?: { id?: number };
  sender?: { login?: string; type?: string };
  issue?: { number?: number; pull_request?: unknown; user?: { login?: string } };
  pull_request?: { number?: number };
  comment?: { id?: number; body?: string | null; user?: { login?: string; type?: string }; pull_request_review_id?: number | null };
  review?: { id?: number; body?: string | null; user?: { login?: string; type?: string } };
  label?: { name?: string };
}

/** The value when it is a string: a hostile payload may put a number, an array or a deep object anywhere. */
const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

const isBot = (user: { login?: unknown; type?: unknown } | undefined, botName: string) =>
  user?.type === 'Bot' ||
  text(user?.login)
    ?.replace(/\[bot\]$/, '')
    .toLowerCase() === botName.replace(/\[bot\]$/, '').toLowerCase();

const LONE_SURROGATES = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Text Postgres can store: NUL bytes and lone UTF-16 surrogates (both valid in JSON, both refused by
 * Postgres text and jsonb) become U+FFFD, as `String.prototype.toWellFormed` does for surrogates. A
 * comment that holds them is still answered; the odd character is shown as �.
 */
export function storableText(value: string): string {
  return value.replaceAll('\0', '\uFFFD').replace(LONE_SURROGATES, '\uFFFD');
}

/**
 * Decides whether a delivery matters. `labels` maps label names to templates (only mapped labels start runs).
 * Throws zod's `ZodError` when a relevant payload lacks a field it must have (answered with 400).
 */
export function normalizeWebhook(
  name: string,
  deliveryId: string,
  payload: Payload,
  options: { botName: string; labels: Record<string, string> },
): Normalized {
  const { botName } = options;
  const action = text(payload.action);
  const base = () => ({
    deliveryId,
    owner: payload.repository?.owner?.login,
    repo: payload.repository?.name,
    installationId: payload.installation?.id ?? null,
    action,
  });
  switch (name) {
    case 'issue_comment': {
      if (action !== 'created') return { kind: 'ignored', reason: `issue_comment.${action}` };
      if (isBot(payload.comment?.user, botName)) return { kind: 'ignored', reason: 'comment by a bot' };
      if (!mentions(text(payload.comment?.body) ?? '', botName)) return { kind: 'ignored', reason: 'comment does not mention the bot' };
      return run({
        ...base(),
        event: name,
        number: payload.issue?.number,
        isPullRequest: !!payload.issue?.pull_request,
        author: payload.comment?.user?.login,
        body: payload.comment?.body ?? '',
        commentId: payload.comment?.id,
        reviewId: null,
        label: null,
      });
    }
    case 'issues': {
      const label = text(payload.label?.name);
      if (action !== 'labeled' || !label || !Object.hasOwn(options.labels, label))
        return { kind: 'ignored', reason: `issues.${action} (no mapped label)` };
      if (isBot(payload.sender, botName)) return { kind: 'ignored', reason: 'labelled by a bot' };
      return run({
        ...base(),
        event: name,
        number: payload.issue?.number,
        isPullRequest: false,
        author: payload.sender?.login,
        body: '',
        commentId: null,
        reviewId: null,
        label,
      });
    }
    case 'pull_request_review_comment': {
      if (action !== 'created') return { kind: 'ignored', reason: `pull_request_review_comment.${action}` };
      if (isBot(payload.comment?.user, botName)) return { kind: 'ignored', reason: 'comment by a bot' };
      if (!mentions(text(payload.comment?.body) ?? '', botName)) return { kind: 'ignored', reason: 'comment does not mention the bot' };
      return run({
        ...base(),
        event: name,
        number: payload.pull_request?.number,
        isPullRequest: true,
        author: payload.comment?.user?.login,
        body: payload.comment?.body ?? '',
        commentId: payload.comment?.id,
        reviewId: payload.comment?.pull_request_review_id ?? null,
        label: null,
      });
    }
    case 'pull_request_review': {
      if (action !== 'submitted') return { kind: 'ignored', reason: `pull_request_review.${action}` };
      if (isBot(payload.review?.user, botName)) return { kind: 'ignored', reason: 'review by a bot' };
      // Whether its comments mention the bot is only known by listing them: a worker does that.
      return run({
        ...base(),
        event: name,
        number: payload.pull_request?.number,
        isPullRequest: true,
        author: payload.review?.user?.login,
        body: payload.review?.body ?? '',
        commentId: null,
        reviewId: payload.review?.id,
        label: null,
      });
    }
    default:
      return { kind: 'ignored', reason: `event ${name} needs no action` };
  }
}

function run(candidate: Record<string, unknown>): Normalized {
  const storable = Object.fromEntries(Object.entries(candidate).map(([k, v]) => [k, typeof v === 'string' ? storableText(v) : v]));
  return { kind: 'run', input: githubEventInput.parse(storable) };
}
