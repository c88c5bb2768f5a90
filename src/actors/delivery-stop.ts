/**
 * Stopping runs from GitHub: `@rmapp cancel`, an issue closed, a mapped label removed. Only runs asked
 * for before what stops them are stopped.
 */
import type { DeliveryOutcome, GitHubEventInput } from '../machines/github-delivery.ts';
import type { RunInfo } from '../state_machine/run-info.ts';
import { codeSpan } from '../rmapp/run-texts.ts';
import type { Subject } from '../rmapp/workflows/executor.ts';
import type { DeliveryContext } from './delivery-context.ts';
import { writtenBeforeRequest } from './delivery-order.ts';

/** `@rmapp cancel`: cancels the subject's unfinished runs that existed when the comment was written. */
export async function cancelRuns(ctx: DeliveryContext, e: GitHubEventInput, key: string): Promise<DeliveryOutcome> {
  const { deps, link, details, reply } = ctx;
  const executor = deps.executor();
  const subject = ctx.subjectOf(e);
  // Every unfinished run that existed when the comment was written (the one working and those
  // queued behind it; a PR can have many), oldest first: a run queued since is not what it asked
  // to stop. Checking only the newest cancelled a queued review while the working one pushed.
  const runs = await executor.activeRuns(subject, 1_000);
  if (!runs.length) return reply(e, key, 'there is no run to cancel here.');
  const targets = runs.filter((r) => !writtenBeforeRequest(e, r)).reverse();
  if (!targets.length)
    return reply(
      e,
      key,
      `your \`cancel\` was written before run ${link((runs.at(-1) as RunInfo).id)} started, so I did not cancel it. If you want it cancelled, comment \`@${deps.botName} cancel\` again.`,
    );
  const results: { message: string }[] = [];
  for (const run of targets) results.push(await executor.cancel(run.id, `cancelled by @${e.author} on GitHub`));
  const first = targets[0] as RunInfo;
  const text =
    targets.length === 1
      ? `cancelled the run.${details(first.id)}`
      : `cancelled ${targets.length} runs: the one working and those queued behind it.${details(
          first.id,
          targets.slice(1).map((r) => `- also: ${link(r.id)}`),
        )}`;
  return reply(e, key, text, { action: 'cancelled', runId: first.id }).then((o) => ({
    ...o,
    message: results.map((r) => r.message).join(' '),
  }));
}

/**
 * An issue closed, or a mapped label removed: the issue's unfinished runs asked for before it (for a
 * label, those that label started) are cancelled — a run waiting for plan approval too — and the one
 * who did it is told once. Nothing to stop: nothing said (most issues closed never had a run).
 */
export async function stopRuns(
  ctx: DeliveryContext,
  e: GitHubEventInput,
  key: string,
  subject: Subject,
  intent: { kind: 'closed' } | { kind: 'unlabeled'; label: string },
): Promise<DeliveryOutcome> {
  const { deps, link, details, reply } = ctx;
  const executor = deps.executor();
  const runs = (await executor.activeRuns(subject, 1_000))
    .filter((r) => !writtenBeforeRequest(e, r))
    .filter((r) => intent.kind === 'closed' || (r.input as { label?: unknown } | null)?.label === intent.label)
    .reverse();
  const what = intent.kind === 'closed' ? 'closing the issue' : `removing the label ${codeSpan(intent.label)}`;
  if (!runs.length) return { action: 'ignored', runId: null, message: `${what}: no unfinished run to stop` };
  const reason = intent.kind === 'closed' ? `the issue was closed by @${e.author}` : `label ${intent.label} removed by @${e.author}`;
  for (const run of runs) await executor.cancel(run.id, reason);
  const first = runs[0] as RunInfo;
  const again =
    intent.kind === 'closed'
      ? `Reopen the issue and comment \`@${deps.botName} implement\` to start again.`
      : `Add the label again, or comment \`@${deps.botName} implement\`, to start again.`;
  const text = `${what} stopped ${runs.length === 1 ? 'the run working on it' : `the ${runs.length} runs working on it`}; nothing more will be pushed, and a draft pull request it opened stays a draft. ${again}${details(
    first.id,
    runs.slice(1).map((r) => `- also: ${link(r.id)}`),
  )}`;
  return reply(e, key, text, { action: 'cancelled', runId: first.id });
}
