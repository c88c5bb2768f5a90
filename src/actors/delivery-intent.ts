/**
 * What a GitHub event asks of rmapp (its intent), and which intents anyone may cause without write
 * access. Pure: no client, no engine.
 */
import type { GitHubEventInput } from '../machines/github-delivery.ts';
import type { TemplateName } from '../machines/issue-templates.ts';
import { conversationRequest, parseCommand, type Command } from '../rmapp/commands.ts';

/**
 * What an event asks for. `closed`: the issue was closed, which stops its runs asked for before;
 * `unlabeled`: a mapped label was removed, which stops the runs it started.
 */
export type Intent =
  Command | { kind: 'review' } | { kind: 'ignore'; reason: string } | { kind: 'closed' } | { kind: 'unlabeled'; label: string };

/** What an event's intent depends on besides the event: the bot's name, and which label starts which template. */
export interface IntentSettings {
  botName: string;
  /** Label → template. */
  labels: Record<string, TemplateName>;
}

/** Pure: the intent of an event. */
export function intentOf(event: GitHubEventInput, deps: IntentSettings): Intent {
  if (event.event === 'issues' && event.action === 'closed') return { kind: 'closed' };
  if (event.event === 'issues' && event.action === 'unlabeled')
    return event.label ? { kind: 'unlabeled', label: event.label } : { kind: 'ignore', reason: 'no label' };
  if (event.event === 'issues') {
    const template = event.label ? deps.labels[event.label] : undefined;
    return template
      ? { kind: 'implement', template, options: {} }
      : { kind: 'ignore', reason: `label ${event.label} is not mapped to a template` };
  }
  if (event.event === 'pull_request_review' || event.event === 'pull_request_review_comment') return { kind: 'review' };
  // `@rmapp <request>` in a pull request's conversation continues on its branch like a review comment.
  if (event.isPullRequest && conversationRequest(event.body, deps.botName)) return { kind: 'review' };
  return parseCommand(event.body, deps.botName) ?? { kind: 'ignore', reason: 'no command' };
}

/**
 * Intents anyone may cause. `closed`: GitHub let its author close the issue (its own author may, without
 * write access), and the run would stop at its next pull request step anyway (github/issue-closed.ts).
 */
const READ_ONLY = new Set<Intent['kind']>(['help', 'status', 'ignore', 'closed']);

/** True when anyone may cause the intent, write access or not (see `READ_ONLY`). */
export function anyoneMay(intent: Intent): boolean {
  return READ_ONLY.has(intent.kind);
}
