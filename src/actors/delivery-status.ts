/** `@rmapp status`: where the subject's newest run is, in words, with its details folded. */
import type { DeliveryOutcome, GitHubEventInput } from '../machines/github-delivery.ts';
import { codeSpan, failureReason } from '../rmapp/run-texts.ts';
import type { DeliveryContext } from './delivery-context.ts';

/** The answer to `@rmapp status` on the delivery's issue or pull request. */
export async function statusReply(ctx: DeliveryContext, e: GitHubEventInput, key: string): Promise<DeliveryOutcome> {
  const { details, whereIs, reply } = ctx;
  const executor = ctx.deps.executor();
  const subject = ctx.subjectOf(e);
  const run = await executor.latestRun(subject);
  if (!run) return reply(e, key, 'no run has worked on this yet.');
  const queued = run.status === 'pending' ? await queuedText(ctx, run.id) : null;
  if (queued) return reply(e, key, `${queued}${details(run.id)}`, { action: 'replied', runId: run.id });
  const error = run.error ? `: ${failureReason(run.error)}` : '';
  const extra = [
    `- state: \`${JSON.stringify(run.state)}\``,
    ...(run.error ? [`- error: \`${run.error.category}\` ${codeSpan(run.error.message)}`] : []),
  ];
  return reply(e, key, `the run is **${run.status}** (${whereIs(run.state)})${error}.${details(run.id, extra)}`, {
    action: 'replied',
    runId: run.id,
  });
}

/**
 * What a run waiting for its concurrency key's slot waits for, in words — the run working on the issue
 * or pull request the key names (a review of an issue run's draft waits for the run) — or null
 * for a run that is not queued. "pending (working)" said nothing of why nothing happened.
 */
async function queuedText({ deps, whereIs }: DeliveryContext, runId: string): Promise<string | null> {
  const executor = deps.executor();
  const { queue } = await executor.status(runId);
  if (!queue) return null;
  const place = queue.position === 1 ? 'first in line' : `number ${queue.position} in line`;
  const named = /^(issue|pull):([^/]+)\/(.+)#(\d+)$/.exec(queue.key);
  if (!named) return `the run is **pending**: it waits for its turn (${place}).`;
  const [, kind, owner, repo, number] = named as unknown as [string, string, string, string, string];
  const where = `${kind === 'issue' ? 'issue' : 'pull request'} #${number}`;
  const runs = await executor.activeRuns({ owner, repo, kind: kind === 'issue' ? 'issues' : 'pulls', number: Number(number) }, 20);
  const working = runs.filter((r) => r.status !== 'pending').at(-1);
  return working
    ? `the run is **pending**: it waits for its turn (${place}) behind the run on ${where} (now: ${whereIs(working.state)}); it starts once that run finishes.`
    : `the run is **pending**: it waits for its turn (${place}) behind the runs on ${where}.`;
}
