/**
 * Turns a verified GitHub webhook into the small, validated input of a `GitHubDelivery` run — or into
 * a reason to ignore it. Only what the routing needs is kept (no tokens, no whole payloads in the
 * database), and the filter is pure and fast so the HTTP handler answers in milliseconds: comments
 * that do not mention the bot, bot-authored comments and unmapped labels never become runs.
 */
import { z } from 'zod';
import { mentions } from '../commands.ts';

/** Events rmapp subscribes to (the README's GitHub App set-up lists the same). */
export const HANDLED_EVENTS = ['issue_comment', 'issues', 'pull_request_review', 'pull_request_review_comment', 'installation', 'ping'] as const;

export const githubEventInput = z.object({
  deliveryId: z.string().min(1).max(100),
  event: z.enum(['issue_comment', 'issues', 'pull_request_review', 'pull_request_review_comment']),
  action: z.string().min(1),
  owner: z.string().min(1),
  repo: z.string().min(1),
  installationId: z.number().int().positive().nullable(),
  /** The issue or pull request number. */
  number: z.number().int().positive(),
  isPullRequest: z.boolean(),
  /** Who wrote the comment or review, or who added the label. */
  author: z.string().min(1),
  body: z.string().max(65_536),
  commentId: z.number().int().positive().nullable(),
  reviewId: z.number().int().positive().nullable(),
  label: z.string().nullable(),
});
export type GitHubEventInput = z.infer<typeof githubEventInput>;

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

const isBot = (user: { login?: string; type?: string } | undefined, botName: string) =>
  user?.type === 'Bot' || user?.login?.replace(/\[bot\]$/, '').toLowerCase() === botName.replace(/\[bot\]$/, '').toLowerCase();

/**
 * Decides whether a delivery matters. `labels` maps label names to templates (only mapped labels start runs).
 * Throws a {@link z.ZodError} when a relevant payload lacks a field it must have (answered with 400).
 */
export function normalizeWebhook(name: string, deliveryId: string, payload: Payload, options: { botName: string; labels: Record<string, string> }): Normalized {
  const { botName } = options;
  const base = () => ({
    deliveryId,
    owner: payload.repository?.owner?.login,
    repo: payload.repository?.name,
    installationId: payload.installation?.id ?? null,
    action: payload.action,
  });
  switch (name) {
    case 'issue_comment': {
      if (payload.action !== 'created') return { kind: 'ignored', reason: `issue_comment.${payload.action}` };
      if (isBot(payload.comment?.user, botName)) return { kind: 'ignored', reason: 'comment by a bot' };
      if (!mentions(payload.comment?.body ?? '', botName)) return { kind: 'ignored', reason: 'comment does not mention the bot' };
      return run({
        ...base(), event: name, number: payload.issue?.number, isPullRequest: !!payload.issue?.pull_request, author: payload.comment?.user?.login,
        body: payload.comment?.body ?? '', commentId: payload.comment?.id, reviewId: null, label: null,
      });
    }
    case 'issues': {
      const label = payload.label?.name;
      if (payload.action !== 'labeled' || !label || !(label in options.labels)) return { kind: 'ignored', reason: `issues.${payload.action} (no mapped label)` };
      if (isBot(payload.sender, botName)) return { kind: 'ignored', reason: 'labelled by a bot' };
      return run({ ...base(), event: name, number: payload.issue?.number, isPullRequest: false, author: payload.sender?.login, body: '', commentId: null, reviewId: null, label });
    }
    case 'pull_request_review_comment': {
      if (payload.action !== 'created') return { kind: 'ignored', reason: `pull_request_review_comment.${payload.action}` };
      if (isBot(payload.comment?.user, botName)) return { kind: 'ignored', reason: 'comment by a bot' };
      if (!mentions(payload.comment?.body ?? '', botName)) return { kind: 'ignored', reason: 'comment does not mention the bot' };
      return run({
        ...base(), event: name, number: payload.pull_request?.number, isPullRequest: true, author: payload.comment?.user?.login, body: payload.comment?.body ?? '',
        commentId: payload.comment?.id, reviewId: payload.comment?.pull_request_review_id ?? null, label: null,
      });
    }
    case 'pull_request_review': {
      if (payload.action !== 'submitted') return { kind: 'ignored', reason: `pull_request_review.${payload.action}` };
      if (isBot(payload.review?.user, botName)) return { kind: 'ignored', reason: 'review by a bot' };
      // Whether its comments mention the bot is only known by listing them: a worker does that.
      return run({
        ...base(), event: name, number: payload.pull_request?.number, isPullRequest: true, author: payload.review?.user?.login, body: payload.review?.body ?? '',
        commentId: null, reviewId: payload.review?.id, label: null,
      });
    }
    default:
      return { kind: 'ignored', reason: `event ${name} needs no action` };
  }
}

function run(candidate: Record<string, unknown>): Normalized {
  return { kind: 'run', input: githubEventInput.parse(candidate) };
}
