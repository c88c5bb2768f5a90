/**
 * Turns a verified GitHub webhook into the small, validated input of a `GitHubDelivery` run — or into
 * a reason to ignore it. Only what the routing needs is kept (no tokens, no whole payloads in the
 * database), and the filter is pure and fast so the HTTP handler answers in milliseconds: comments
 * that do not mention the bot, bot-authored comments and unmapped labels never become runs.
 */
import { ZodError } from 'zod';
import { mentions, parseCommand } from '../commands.ts';
import { githubEventInput, type GitHubEventInput } from '../../machines/github-delivery.ts';
import { WEBHOOK_EVENT_MAX_AGE_MS } from './event-age.ts';
import { endsWithServiceMarker } from '../github/writes.ts';
import { sameLogin } from '../github/logins.ts';

/** `stale`: the event is older than GitHub ever redelivers — a kept copy sent again (see event-age.ts `WEBHOOK_EVENT_MAX_AGE_MS`). */
export type Normalized = { kind: 'run'; input: GitHubEventInput } | { kind: 'ignored'; reason: string; stale?: true };

interface Payload {
  action?: string;
  repository?: { name?: string; owner?: { login?: string } };
  installation?: { id?: number };
  sender?: { login?: string; type?: string };
  issue?: { number?: number; pull_request?: unknown; user?: { login?: string }; state?: string };
  pull_request?: { number?: number };
  comment?: { id?: number; body?: string | null; user?: { login?: string; type?: string }; pull_request_review_id?: number | null };
  review?: { id?: number; body?: string | null; user?: { login?: string; type?: string } };
  label?: { name?: string };
}

/** The value when it is a string: a hostile payload may put a number, an array or a deep object anywhere. */
const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

const isBot = (user: { login?: unknown; type?: unknown } | undefined, botName: string) =>
  user?.type === 'Bot' || isOwnAccount(user, botName);

/** The command kind a comment gives the bot, as the delivery's `command` (absent when none). */
const commandOf = (body: string, botName: string): { command?: string } => {
  const kind = parseCommand(body, botName)?.kind;
  return kind ? { command: kind } : {};
};

/** The service's own account (its login, with or without `[bot]`), whatever its type. */
function isOwnAccount(user: { login?: unknown } | undefined, botName: string): boolean {
  return sameLogin(text(user?.login)?.replace(/\[bot\]$/, ''), botName.replace(/\[bot\]$/, ''));
}

/**
 * A comment the service wrote: every one ends with its step's marker (src/rmapp/github/writes.ts). Its
 * author may not look like the bot — under a personal token the service writes as that token's user,
 * whose login need not be the configured bot name — and an answer that quoted a mention would be
 * answered again, and again. Anyone may end a comment with a marker: it only has that comment ignored.
 */
const byTheService = (body: unknown) => endsWithServiceMarker(text(body));

const LONE_SURROGATES = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Text Postgres can store: NUL bytes and lone UTF-16 surrogates (both valid in JSON, both refused by
 * Postgres text and jsonb) become U+FFFD, as `String.prototype.toWellFormed` does for surrogates. A
 * comment that holds them is still answered; the odd character is shown as �.
 */
export function storableText(value: string): string {
  return value.replaceAll('\0', '\uFFFD').replace(LONE_SURROGATES, '\uFFFD');
}

/** Options of {@link normalizeWebhook}: the bot's name, and label name → template (only mapped labels start runs). */
export interface NormalizeOptions {
  botName: string;
  labels: Record<string, string>;
}

/**
 * Decides whether a delivery matters: a relevant event becomes a run's input, unless it happened longer
 * ago than GitHub redelivers (ignored as `stale`: event-age.ts `WEBHOOK_EVENT_MAX_AGE_MS`).
 * Throws zod's `ZodError` when a relevant payload lacks a field it must have, or has a time that is not
 * one (answered with 400).
 */
export function normalizeWebhook(name: string, deliveryId: string, payload: Payload, options: NormalizeOptions): Normalized {
  const decided = decide(name, deliveryId, payload, options);
  if (decided.kind === 'ignored') return decided;
  const at = eventTime(name, payload);
  if (!at) return decided; // not GitHub's shape, but signed with the secret
  const ageMs = Date.now() - at.time;
  if (ageMs <= WEBHOOK_EVENT_MAX_AGE_MS) return { kind: 'run', input: { ...decided.input, writtenAt: new Date(at.time).toISOString() } };
  return {
    kind: 'ignored',
    stale: true,
    reason:
      `${at.field} is ${at.text}, ${Math.floor(ageMs / 3_600_000)} h ago: GitHub redelivers nothing older than ` +
      `${Math.round(WEBHOOK_EVENT_MAX_AGE_MS / 3_600_000)} h, so this is a copy sent again`,
  };
}

/**
 * Where a payload says when its event happened, for the events {@link decide} turns into runs. A review
 * comment may have been drafted days before its review was submitted (and delivered): the latest of its
 * times and its pull request's `updated_at` (moved by the submission) is the event's.
 */
const EVENT_TIMES: Record<string, string[]> = {
  issue_comment: ['comment.created_at'],
  pull_request_review_comment: ['comment.created_at', 'comment.updated_at', 'pull_request.updated_at'],
  pull_request_review: ['review.submitted_at'],
  // Adding or removing a label, and closing, update the issue: its `updated_at` is the event's time.
  issues: ['issue.updated_at'],
};

/** ISO 8601 as GitHub writes it (`2026-12-05T10:00:00Z`, or with an offset or fractions): nothing looser. */
const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;

/**
 * A day the month has and an hour before 24: `Date.parse` reads `2026-02-30` as 2 March and `24:00` as the
 * next day's midnight, neither of which GitHub writes.
 */
function onTheCalendar(value: string): boolean {
  const [year, month, day, hour] = [value.slice(0, 4), value.slice(5, 7), value.slice(8, 10), value.slice(11, 13)].map(Number) as [
    number,
    number,
    number,
    number,
  ];
  const daysInMonth = new Date(Date.UTC(2000 + (year % 400), month, 0)).getUTCDate(); // the same leap years, any year
  return month >= 1 && month <= 12 && day <= daysInMonth && hour < 24;
}

/**
 * The latest time the payload gives for its event, or null when it gives none. Throws zod's `ZodError`
 * (a 400) for a time that is not one; the value is named by its kind, or its head for a string — a
 * signed payload may put anything there, of any size or depth.
 */
function eventTime(name: string, payload: Payload): { field: string; text: string; time: number } | null {
  let latest: { field: string; text: string; time: number } | null = null;
  for (const field of EVENT_TIMES[name] ?? []) {
    let value: unknown = payload;
    for (const key of field.split('.')) value = value && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
    if (value === undefined || value === null) continue;
    const time = typeof value === 'string' && ISO_DATE_TIME.test(value) && onTheCalendar(value) ? Date.parse(value) : Number.NaN;
    if (Number.isNaN(time)) {
      const shown =
        typeof value === 'string'
          ? JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)
          : Array.isArray(value)
            ? 'an array'
            : `a ${typeof value}`;
      throw new ZodError([
        { code: 'custom', path: field.split('.'), message: `not a date-time in ISO 8601 as GitHub sends it: ${shown}`, input: undefined },
      ]);
    }
    if (!latest || time > latest.time) latest = { field, text: value as string, time };
  }
  return latest;
}

function decide(name: string, deliveryId: string, payload: Payload, options: NormalizeOptions): Normalized {
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
      if (isBot(payload.comment?.user, botName) || byTheService(payload.comment?.body))
        return { kind: 'ignored', reason: 'comment by a bot' };
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
        ...commandOf(text(payload.comment?.body) ?? '', botName),
      });
    }
    case 'issues': {
      const label = text(payload.label?.name);
      // What an issue's close or labelling asks of the service: who did it, on which issue, with which label.
      const issueEvent = (withLabel: string | null) =>
        run({
          ...base(),
          event: name,
          number: payload.issue?.number,
          isPullRequest: false,
          author: payload.sender?.login,
          body: '',
          commentId: null,
          reviewId: null,
          label: withLabel,
        });
      // A closed issue stops the runs asked for before (delivery-stop.ts): whoever closed it, a stale
      // bot too — only the service's own account is not listened to, and it closes no issue.
      if (action === 'closed') {
        if (isOwnAccount(payload.sender, botName)) return { kind: 'ignored', reason: 'closed by the service' };
        return issueEvent(null);
      }
      if ((action !== 'labeled' && action !== 'unlabeled') || !label || !Object.hasOwn(options.labels, label))
        return { kind: 'ignored', reason: `issues.${action} (no mapped label)` };
      if (isBot(payload.sender, botName)) return { kind: 'ignored', reason: `${action} by a bot` };
      // A closed issue is done with: labels go on closed issues when people triage or tidy them up (a
      // mapped `bug` on fifty old issues at once), and each had started a run and opened a pull request.
      // Asking in a comment (`@rmapp implement`) still works there.
      if (payload.issue?.state === 'closed') return { kind: 'ignored', reason: `issues.${action} on a closed issue` };
      return issueEvent(label);
    }
    case 'pull_request_review_comment': {
      if (action !== 'created') return { kind: 'ignored', reason: `pull_request_review_comment.${action}` };
      if (isBot(payload.comment?.user, botName) || byTheService(payload.comment?.body))
        return { kind: 'ignored', reason: 'comment by a bot' };
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
