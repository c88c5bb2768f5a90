/**
 * Whether an issue run may build on, push to and open its pull request from `rmapp/issue-<n>`.
 *
 * The name is no proof that rmapp made the branch: anyone who can push may create `rmapp/issue-5`
 * (and open a pull request from it) before rmapp is asked about issue 5. An issue run that took such a
 * branch built on its commits and took its pull request over — retitled, marked ready for review, its
 * reviewer asked — so rmapp's pull request carried a stranger's commits under rmapp's name, and a
 * review of it (github/head-branch.ts) would then push there too. GitHub's Copilot coding agent never
 * builds on a branch it did not create; neither does rmapp: such a branch is refused with the reason
 * and the fix (delete or rename it), before the agent runs.
 *
 * The branch is rmapp's when the run's own records say so — the commits it pushed, recorded before each
 * push (`branch-pushes`, an artifact of the run), one of which is still in the branch: a crash after the
 * push resumes on it — or when an open pull request of this repository from the branch was opened by
 * rmapp's own login (a run asked for again, or retried, continues the draft an earlier run opened; the
 * same rule as a review's). A person who added commits to rmapp's branch since changes neither.
 */
import { WorkflowError } from '../../state_machine/errors.ts';
import { ownLogin, type GitHubOctokit } from './client.ts';
import { shownBranch } from './head-branch.ts';
import { sameLogin } from './logins.ts';

/** The error code of an issue run refused a branch it did not create (run-texts.ts `OWN_MESSAGES`). */
export const ISSUE_BRANCH_TAKEN = 'ISSUE_BRANCH_TAKEN';

/** What the check needs of a pull request (GitHub's `GET /pulls` items). */
interface ListedPull {
  number: number;
  merged_at?: string | null;
  user?: { login?: string | null } | null;
  head: { ref: string; repo?: { full_name?: string | null } | null };
}

/**
 * The open pull requests of `owner/repo` whose head is its own `branch`, split into rmapp's (opened by
 * its login) and others'. `head=owner:branch` alone also lists a same-named branch of a fork the owner
 * holds (`acme/widgets-fork`), so the head's repository is compared too.
 */
export async function openPullsOfBranch(
  gh: GitHubOctokit,
  at: { owner: string; repo: string; branch: string },
): Promise<{ own: ListedPull[]; others: ListedPull[] }> {
  const { data } = await gh.pulls.list({ owner: at.owner, repo: at.repo, state: 'open', head: `${at.owner}:${at.branch}`, per_page: 100 });
  const full = `${at.owner}/${at.repo}`.toLowerCase();
  const from = (data as ListedPull[]).filter((p) => p.head.ref === at.branch && p.head.repo?.full_name?.toLowerCase() === full);
  if (!from.length) return { own: [], others: [] };
  const self = await ownLogin(gh);
  return { own: from.filter((p) => sameLogin(p.user?.login, self)), others: from.filter((p) => !sameLogin(p.user?.login, self)) };
}

/**
 * Refuses the issue run's branch unless it is rmapp's: an open pull request from it opened by rmapp, or
 * — `provenByRun`, the run's records show it pushed there — no pull request from it opened by anyone
 * else (one rmapp would take over as its own). Called when the branch exists and before a pull request
 * is opened or updated from it.
 *
 * @throws WorkflowError `ISSUE_BRANCH_TAKEN` (category `validation`: the same branch refuses again)
 */
export async function checkIssueBranch(
  gh: GitHubOctokit,
  at: { owner: string; repo: string; branch: string; bot: string },
  provenByRun: boolean,
  /**
   * Proven only by the pushes of earlier runs (a retry's, or the issue's runs before when asked again):
   * then a branch whose pull request of rmapp's was closed is not built on again either — an earlier
   * run's commit is in it whether that run failed before its draft opened or its draft was turned down.
   */
  byEarlierRuns = false,
): Promise<void> {
  const { own, others } = await openPullsOfBranch(gh, at);
  if (own.length) return;
  if (provenByRun && !others.length) {
    const closed = byEarlierRuns ? await closedOwnPull(gh, at) : null;
    if (!closed) return;
    throw issueBranchTaken(at, null, closed);
  }
  throw issueBranchTaken(at, others[0] ?? null, others.length ? null : await closedOwnPull(gh, at));
}

/**
 * rmapp's newest closed pull request from the repository's own `branch`, if any. A run asked for again
 * after its pull request was closed (unmerged or merged, the branch left in place) has no open draft to
 * show and no records of its own: it is refused as any branch rmapp did not create, and was told so —
 * "rmapp did not create it" — of the branch rmapp had made. The refusal names the closed pull request.
 */
async function closedOwnPull(gh: GitHubOctokit, at: { owner: string; repo: string; branch: string }): Promise<ListedPull | null> {
  const { data } = await gh.pulls.list({
    owner: at.owner,
    repo: at.repo,
    state: 'closed',
    head: `${at.owner}:${at.branch}`,
    per_page: 100,
  });
  const full = `${at.owner}/${at.repo}`.toLowerCase();
  const from = (data as ListedPull[]).filter((p) => p.head.ref === at.branch && p.head.repo?.full_name?.toLowerCase() === full);
  if (!from.length) return null;
  const self = await ownLogin(gh);
  return from.filter((p) => sameLogin(p.user?.login, self)).sort((a, b) => b.number - a.number)[0] ?? null;
}

function issueBranchTaken(
  at: { owner: string; repo: string; branch: string },
  pull: ListedPull | null,
  closedOwn: ListedPull | null = null,
): WorkflowError {
  if (closedOwn) {
    // Not adopted: the closed pull request's work may be what was turned down, and the branch may hold
    // commits pushed since; the person decides (reopen it, or delete the branch for a fresh start).
    const how = closedOwn.merged_at
      ? 'merged'
      : `closed without merging (reopen it, then ask me to implement the issue again, to have me continue there)`;
    return new WorkflowError(
      `the branch ${shownBranch(at.branch)} in ${at.owner}/${at.repo} is left from my pull request #${closedOwn.number}, which was ${how}, so I changed nothing: I do not build again on the branch of a closed pull request`,
      {
        code: ISSUE_BRANCH_TAKEN,
        category: 'validation',
        details: { branch: at.branch, pullRequest: null, author: null, closedPullRequest: closedOwn.number },
      },
    );
  }
  const author = pull?.user?.login;
  // A zero-width space after `@`: the reply names the author without notifying them.
  const whose = pull
    ? `pull request #${pull.number} from it was opened by ${author ? `@\u200b${author}` : 'an account that no longer exists'}`
    : 'no pull request rmapp opened comes from it';
  return new WorkflowError(
    `the branch ${shownBranch(at.branch)} already exists in ${at.owner}/${at.repo} and rmapp did not create it (${whose}), so I changed nothing: I build only on branches I created, and on this one my pull request would carry someone else's commits under my name`,
    {
      code: ISSUE_BRANCH_TAKEN,
      category: 'validation',
      details: { branch: at.branch, pullRequest: pull?.number ?? null, author: author ?? null },
    },
  );
}
