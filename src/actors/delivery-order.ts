/**
 * Which of two things said on GitHub came first, when GitHub delivers them in another order: a command
 * against a plan or run (written before it existed, or after a request it overtook). Times written on
 * GitHub are compared with GitHub's; one of this machine's with a slack.
 */
import type { GitHubEventInput } from '../machines/github-delivery.ts';
import { parseCommand } from '../rmapp/commands.ts';
import type { WorkflowExecutor } from '../rmapp/workflows/executor.ts';
import type { RunInfo } from '../state_machine/run-info.ts';

/**
 * GitHub's times are whole seconds (a comment written 0.9 s after a plan is posted can read as before
 * it), and two machines' clocks differ a little: a command counts as written before an instant only
 * this much before it. A person reads a plan for longer than that before approving it.
 */
const WRITTEN_BEFORE_SLACK_MS = 2_000;

/** True when the delivery's comment was written before `instant` (by more than the slack); false when either is unknown. */
export function writtenBefore(e: GitHubEventInput, instant: Date | null): boolean {
  if (!e.writtenAt || !instant) return false;
  return Date.parse(e.writtenAt) + WRITTEN_BEFORE_SLACK_MS < instant.getTime();
}

/**
 * True when the delivery (a `cancel`, a close, a label's removal) was written before the request that
 * started `run`, so it is not about that run. The run's `requestedAt` is GitHub's time of its request,
 * compared with GitHub's time of this one: a request delivered late (after the cancel was written, or
 * even after it was answered) still counts as asked before it. A run without one (started before it
 * was recorded) is dated by its creation, with the slack of our clock against GitHub's.
 */
export function writtenBeforeRequest(e: GitHubEventInput, run: RunInfo): boolean {
  const requestedAt = (run.input as { requestedAt?: unknown } | null)?.requestedAt;
  if (typeof requestedAt === 'string' && e.writtenAt) return Date.parse(e.writtenAt) < Date.parse(requestedAt);
  return writtenBefore(e, run.createdAt);
}

/**
 * A `cancel` on the same issue or pull request as `e`, written after it and by someone allowed to steer
 * (its delivery went on to act), that reached the service first — GitHub does not deliver in order — and
 * found nothing to cancel: `e`'s run is not to start. Its author, or null. A cancel received but not yet
 * acted on needs no looking for: it cancels the run once it acts, as the run's request was written before
 * it ({@link writtenBeforeRequest}).
 *
 * @example
 * const by = await cancelledAfter(executor, 'rmapp', delivery);
 * if (by) return reply(`@${by}'s cancel, written after this request, reached me first`);
 */
export async function cancelledAfter(executor: WorkflowExecutor, botName: string, e: GitHubEventInput): Promise<string | null> {
  if (!e.writtenAt) return null;
  const written = Date.parse(e.writtenAt);
  const subject = { owner: e.owner, repo: e.repo, kind: e.isPullRequest ? ('pulls' as const) : ('issues' as const), number: e.number };
  // Received after it was written; an hour for the clocks of GitHub and of this machine (webhooks/event-age.ts).
  // Only the cancels (the delivery's `command`): among the newest 100 comment deliveries of all kinds, a
  // cancel followed by a hundred `@bot help` from anyone was out of sight. A delivery stored before the
  // field existed is not found: an upgrade's first hour.
  for (const d of await executor.commentDeliveriesSince(subject, new Date(written - 3600_000), 'cancel')) {
    const other = d.input as GitHubEventInput;
    if (!other.writtenAt || !writtenLater(other, e)) continue;
    if (parseCommand(other.body, botName)?.kind !== 'cancel') continue;
    if (await executor.enteredAt(d.id, 'acting')) return other.author;
  }
  return null;
}

/**
 * Whether comment `later` was written after comment `first`: by GitHub's times, whole seconds, and within
 * one second by their ids, which GitHub gives in the order comments are made.
 */
function writtenLater(later: GitHubEventInput, first: GitHubEventInput): boolean {
  const a = Date.parse(later.writtenAt ?? '');
  const b = Date.parse(first.writtenAt ?? '');
  if (a !== b) return a > b;
  return later.commentId !== null && first.commentId !== null && later.commentId > first.commentId;
}
