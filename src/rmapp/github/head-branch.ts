/**
 * Whose branch a pull request's head is, for a review run about to push to it.
 *
 * rmapp pushes a review's change only to a branch it made itself: the branch of a pull request its
 * own issue run opened. A review comment on anyone else's pull request (`feature-x`, `release-2.1`, a
 * protected branch that is not the default) is refused before the agent runs, as GitHub's Copilot
 * coding agent only ever pushes to the branches it created. Teams that want rmapp on their own
 * branches opt a repository in with the operator's `reviewAnyBranch` setting.
 *
 * "Made by rmapp" is two facts, both from GitHub, neither of which a person can forge:
 *
 * - **the pull request's author is rmapp's own login** — the login its credentials write as (`GET /user`
 *   for a token, `<slug>[bot]` for a GitHub App: client.ts `ownLogin`, the same check that tells the bot's
 *   comments from others'). Only rmapp's credentials open a pull request as that login; GitHub never
 *   changes a pull request's author, nor its head branch;
 * - **its head branch has the name rmapp gives** (`rmapp/issue-<n>`, issue-branch.ts): with a personal
 *   token the bot's login is a user's, who may open pull requests of their own by hand — those come from
 *   branches of their own names.
 *
 * The branch's name alone is no proof: anyone who can push may create `rmapp/issue-5` and open a pull
 * request from it. Nor is rmapp's run store: the issue run that opened a pull request is pruned with the
 * other finished runs (7 days by default), and a review of an older pull request of rmapp's would then be
 * refused. Who pushed to the branch since does not matter: a person with write access may add commits to
 * rmapp's branch (or force-push it) and ask rmapp for more; the push is a fast-forward of what the run
 * read (workspace.ts `push`), so their commits are never overwritten.
 */
import { issueOfBranch } from '../../machines/issue-branch.ts';
import { WorkflowError } from '../../state_machine/errors.ts';
import { codeSpan } from '../run-texts.ts';
import { ownLogin, type GitHubOctokit } from './client.ts';
import { sameLogin } from './logins.ts';

/** The error code of a review refused because the pull request's branch is not rmapp's (run-texts.ts `OWN_MESSAGES`). */
export const NOT_OWN_BRANCH = 'NOT_OWN_BRANCH';

/** What a review run knows of a pull request (GitHub's `GET /pulls/{n}`). */
export interface PullHead {
  user?: { login?: string | null } | null;
  head: { ref: string };
}

/** Why a pull request's branch is not rmapp's, or `own` when it is. */
export type HeadOwnership = 'own' | 'other-name' | 'other-author';

/**
 * Pure: whose branch the pull request's head is, `self` being the login rmapp writes as. Logins compare
 * case-insensitively in ASCII ({@link sameLogin}, as GitHub's do); the name must be exactly one {@link issueOfBranch} gives back.
 *
 * @example
 * headOwnership({ user: { login: 'rmapp[bot]' }, head: { ref: 'rmapp/issue-12' } }, 'rmapp[bot]'); // 'own'
 * headOwnership({ user: { login: 'alice' }, head: { ref: 'rmapp/issue-12' } }, 'rmapp[bot]');      // 'other-author'
 * headOwnership({ user: { login: 'rmapp[bot]' }, head: { ref: 'feature-x' } }, 'rmapp[bot]');       // 'other-name'
 */
export function headOwnership(pr: PullHead, self: string): HeadOwnership {
  if (issueOfBranch(pr.head.ref) === null) return 'other-name';
  return sameLogin(pr.user?.login, self) ? 'own' : 'other-author';
}

/**
 * True when the operator's `reviewAnyBranch` lets rmapp push review changes to any non-default branch
 * of `owner/repo`: an entry `owner/repo` or `owner/*`, compared case-insensitively as GitHub compares names.
 *
 * @example
 * mayPushAnyBranch(['acme/*'], 'Acme', 'widgets'); // true
 */
export function mayPushAnyBranch(allowed: readonly string[] | undefined, owner: string, repo: string): boolean {
  const full = `${owner}/${repo}`.toLowerCase();
  const all = `${owner}/*`.toLowerCase();
  return (allowed ?? []).some((entry) => {
    const e = entry.toLowerCase();
    return e === full || e === all;
  });
}

/**
 * A branch's name as a reply shows it: a code span (no mention, link or HTML), control and format
 * characters — NUL, a newline, a right-to-left override that would show the name reversed — written as
 * `\u{…}` escapes, and at most 100 characters. A branch name on GitHub is anyone's choice.
 */
export function shownBranch(name: string): string {
  return codeSpan(escapedBranch(name));
}

/** {@link shownBranch} without the code span: for error details (no NUL reaches the store) and quoted messages. */
export function escapedBranch(name: string): string {
  const visible = name.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]|\p{Cs}/gu, (c) => `\\u{${(c.codePointAt(0) as number).toString(16)}}`);
  const chars = [...visible];
  return chars.length > 100 ? `${chars.slice(0, 99).join('')}…` : visible;
}

/**
 * Refuses, with the reason and what to do instead, a review's push to a pull request's branch rmapp did
 * not make ({@link headOwnership}), unless the operator opted the repository in ({@link mayPushAnyBranch}).
 * Called before anything of the run changes a file (PRReview's `parseComment`) and again just before the
 * push (`applyChanges`). `bot` is the name people mention (`botName`), for the advice.
 *
 * @throws WorkflowError `NOT_OWN_BRANCH` (category `validation`: a retry reads the same pull request)
 */
export async function checkHeadBranch(
  gh: GitHubOctokit,
  pr: PullHead,
  at: { owner: string; repo: string; bot: string; reviewAnyBranch?: readonly string[] | undefined },
): Promise<void> {
  if (mayPushAnyBranch(at.reviewAnyBranch, at.owner, at.repo)) return;
  // Without a look-up for a name rmapp never gives: the author is asked only of `rmapp/issue-<n>`.
  const ownership = issueOfBranch(pr.head.ref) === null ? 'other-name' : headOwnership(pr, await ownLogin(gh));
  if (ownership === 'own') return;
  throw foreignBranchError(pr, ownership, at);
}

/** The refusal of {@link checkHeadBranch}: why the branch is not rmapp's, and the ways to get the change. */
function foreignBranchError(pr: PullHead, why: Exclude<HeadOwnership, 'own'>, at: { owner: string; repo: string; bot: string }) {
  const branch = shownBranch(pr.head.ref);
  const author = pr.user?.login;
  // A zero-width space after `@`: the reply names the author without notifying them.
  const opener = author ? `@\u200b${author}` : 'an account that no longer exists';
  const b = `@${at.bot.replace(/\[bot\]$/, '')}`;
  const fact =
    why === 'other-name'
      ? `This pull request's branch ${branch} is not one rmapp created (rmapp's own are \`rmapp/issue-<n>\`, opened for an issue)`
      : `This pull request was opened by ${opener}, not by rmapp: its branch ${branch} has the name of one of rmapp's, but rmapp did not create it`;
  return new WorkflowError(
    `${fact}, so rmapp changed nothing: it pushes review changes only to the branches of the pull requests it opened itself, never to someone else's branch. ` +
      `To have rmapp make this change, describe it in an issue and comment \`${b} implement\` there (rmapp then opens a pull request of its own), or make the change on ${branch} yourself. ` +
      `An operator can let rmapp push to the branches of other pull requests of ${at.owner}/${at.repo} with the \`reviewAnyBranch\` setting`,
    {
      code: NOT_OWN_BRANCH,
      category: 'validation',
      details: { branch: escapedBranch(pr.head.ref), author: author ?? null, reason: why },
    },
  );
}
