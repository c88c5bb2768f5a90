/**
 * What every step of GitHubDelivery acts with: its dependencies, bound to one step execution's client
 * and abort signal, and the few things each answer is made of (the reply, a run's link, the folded
 * details, the repository's settings or the one refusal a wrong settings file gets).
 */
import type { DeliveryOutcome, GitHubEventInput } from '../machines/github-delivery.ts';
import { issueOfBranch } from '../machines/issue-branch.ts';
import { ValidationError } from '../state_machine/errors.ts';
import { mentions } from '../rmapp/commands.ts';
import type { GitHubOctokit } from '../rmapp/github/client.ts';
import { endsWithServiceMarker, upsertComment } from '../rmapp/github/writes.ts';
import { REPOSITORY_CONFIG, type RepositorySettings } from '../rmapp/repository-config.ts';
import { codeSpan, detailsSection, oneLine, stageLabel, untrustedMarkdown } from '../rmapp/run-texts.ts';
import type { Subject, WorkflowExecutor } from '../rmapp/workflows/executor.ts';
import type { IntentSettings } from './delivery-intent.ts';

export interface GitHubDeliveryDeps extends IntentSettings {
  github: GitHubOctokit;
  /** Resolved lazily: the executor needs the engine, which needs these steps. */
  executor: () => WorkflowExecutor;
  /** Base URL of the dashboard, for links in replies. */
  publicUrl?: string | undefined;
  /**
   * The repository's `.github/rmapp.yml` (and instruction files) on its default branch, read before a
   * run starts: a wrong file is answered once and nothing runs. Absent: not checked here (the run's
   * steps still read it).
   */
  repositorySettings?: ((owner: string, repo: string, signal?: AbortSignal) => Promise<RepositorySettings>) | undefined;
}

/** One step execution's view of GitHubDelivery: made by {@link deliveryContext}. */
export type DeliveryContext = ReturnType<typeof deliveryContext>;

/**
 * The context of one step execution, with `deps.github` the client of that execution and `signal` its
 * abort signal.
 */
export function deliveryContext(deps: GitHubDeliveryDeps, signal: AbortSignal) {
  const repoOf = (e: GitHubEventInput) => ({ owner: e.owner, repo: e.repo });
  const subjectOf = (e: GitHubEventInput): Subject => ({
    owner: e.owner,
    repo: e.repo,
    kind: e.isPullRequest ? 'pulls' : 'issues',
    number: e.number,
  });
  const link = (runId: string) =>
    deps.publicUrl ? `[${runId}](${deps.publicUrl.replace(/\/$/, '')}/runs/${encodeURIComponent(runId)})` : `\`${runId}\``;
  /** The run id and its dashboard link (most people cannot open it) stay folded, after the answer. */
  const details = (runId: string, extra: string[] = []) =>
    `\n\n${detailsSection('Details', [`- run: ${link(runId)}`, ...extra]).join('\n')}`;
  /** Where a run is, in words: its stage's label (a nested state's engine name is only in Details). */
  const whereIs = (state: unknown) => (typeof state === 'string' ? stageLabel(state).toLowerCase() : 'working');
  const reply = async (
    e: GitHubEventInput,
    key: string,
    text: string,
    outcome: Omit<DeliveryOutcome, 'message'> = { action: 'replied', runId: null },
  ): Promise<DeliveryOutcome> => {
    await upsertComment(deps.github, repoOf(e), e.number, key, `@${e.author} ${text}`);
    return { ...outcome, message: text };
  };
  /**
   * The issue whose run owns the pull request's branch (`rmapp/issue-<n>` of this repository: the draft
   * an issue run opened), so that a review of it queues behind that issue's runs (github-workflows.ts
   * `perPull`): the two pushed to one branch at once, and the issue run's push was rejected.
   */
  const branchIssueOf = async (e: GitHubEventInput): Promise<number | null> => {
    const { data: pr } = await deps.github.pulls.get({ ...repoOf(e), pull_number: e.number });
    if (pr.head.repo?.full_name?.toLowerCase() !== `${e.owner}/${e.repo}`.toLowerCase()) return null;
    return issueOfBranch(pr.head.ref);
  };
  /** Review comments of a review that mention the bot. */
  const botComments = async (e: GitHubEventInput, reviewId: number) => {
    const comments = await deps.github.paginate(deps.github.pulls.listCommentsForReview, {
      ...repoOf(e),
      pull_number: e.number,
      review_id: reviewId,
      per_page: 100,
    });
    // The service's own comments (ending with its marker) are not requests, as on their own events.
    return comments.filter((c) => mentions(c.body, deps.botName) && !endsWithServiceMarker(c.body)).map((c) => c.id);
  };

  /** The repository's settings, or the one reply a wrong `.github/rmapp.yml` gets (nothing runs). */
  const settingsOr = async (
    e: GitHubEventInput,
    key: string,
  ): Promise<{ settings: RepositorySettings | null; refused?: undefined } | { refused: DeliveryOutcome }> => {
    if (!deps.repositorySettings) return { settings: null };
    try {
      return { settings: await deps.repositorySettings(e.owner, e.repo, signal) };
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      const problems = err.issues.filter((i) => i.path !== REPOSITORY_CONFIG);
      const list = problems.length
        ? // Each key as a code span and each message flat and inert (run-texts.ts): the file is the repository's,
          // and a key holding a backtick or a carriage return, or a value quoted in a message, wrote Markdown here.
          problems.map((i) => `- ${codeSpan(i.path)}: ${untrustedMarkdown(oneLine(i.message))}`).join('\n')
        : untrustedMarkdown(err.message.replace(`${REPOSITORY_CONFIG} `, ''));
      const text = `I did not start: \`${REPOSITORY_CONFIG}\` on the default branch is invalid, so nothing ran.\n\n${list}\n\nFix it on the default branch, then ask again.`;
      return { refused: await reply(e, key, text, { action: 'replied', runId: null }) };
    }
  };

  return { deps, repoOf, subjectOf, link, details, whereIs, reply, branchIssueOf, botComments, settingsOr };
}
