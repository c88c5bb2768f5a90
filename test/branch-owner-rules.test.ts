/**
 * The rules of whose branch rmapp writes to, as pure functions and one git question: logins compared
 * as GitHub compares them (no Unicode look-alike matches), refusals shown in plain words (no code span
 * nested in another), a retry of a refusal decided once, and the run's own pushes as its evidence.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { headOwnership, mayPushAnyBranch } from '../src/rmapp/github/head-branch.ts';
import { sameLogin } from '../src/rmapp/github/logins.ts';
import { normalizeWebhook } from '../src/rmapp/webhooks/event.ts';
import { example } from './helpers/service-world.ts';
import { errorText } from '../src/rmapp/run-texts.ts';
import { decideRetry } from '../src/rmapp/workflows/retry.ts';
import { runCommand } from '../src/rmapp/process.ts';
import { Workspaces } from '../src/rmapp/workspace.ts';
import { createBareRemote } from './helpers/git-remote.ts';

describe('the bot login', () => {
  const own = (login: string, self: string) => headOwnership({ user: { login }, head: { ref: 'rmapp/issue-4' } }, self);
  it('matches in any ASCII case, as GitHub logins do', () => {
    expect(own('RMAPP[bot]', 'rmapp[bot]')).toBe('own');
    expect(sameLogin('Alice', 'alice')).toBe(true);
  });
  it('never matches a look-alike that Unicode case folding would make equal, nor a homoglyph', () => {
    // U+212A KELVIN SIGN lower-cases to `k`; U+0130 to `i̇`; U+0430 is Cyrillic `а`.
    expect(own('rmapp-\u212a[bot]', 'rmapp-k[bot]')).toBe('other-author');
    expect(own('rm\u0430pp[bot]', 'rmapp[bot]')).toBe('other-author');
    expect(sameLogin('\u0130', 'i\u0307')).toBe(false);
    expect(sameLogin('', '')).toBe(false);
    expect(sameLogin(null, null)).toBe(false);
  });
  it('the webhook takes a look-alike of the bot for the person it is: its command is not dropped as the bot’s own', () => {
    const by = (login: string) =>
      normalizeWebhook(
        'issue_comment',
        `d-${login}`,
        example('issue_comment', 'created', (p) => {
          delete p.issue.pull_request;
          p.comment.body = '@rmapp-k status';
          p.comment.user.login = login;
          p.comment.user.type = 'User';
          p.sender.login = login;
        }),
        { botName: 'rmapp-k[bot]', labels: {} },
      ).kind;
    expect(by('RMAPP-K'), 'the bot itself, in another ASCII case').toBe('ignored');
    expect(by('rmapp-\u212a'), 'a Kelvin-sign look-alike (toLowerCase made it the bot)').toBe('run');
  });
  it('reviewAnyBranch matches owner/repo and owner/* only', () => {
    expect(mayPushAnyBranch(['acme/*'], 'ACME', 'widgets')).toBe(true);
    expect(mayPushAnyBranch(['acme/*'], 'acme-labs', 'widgets')).toBe(false);
    expect(mayPushAnyBranch(['acme/widgets'], 'acme', 'widgets-2')).toBe(false);
    expect(mayPushAnyBranch(['*/*', '*'], 'acme', 'widgets')).toBe(false);
  });
});

describe('refusals in plain words', () => {
  it('shows the fork and default-branch refusals without nesting a code span', () => {
    const fork = errorText({
      code: 'FORK_PULL_REQUEST',
      message: 'parsingComment: This pull request’s branch is in the fork mallory/widgets. rmapp only pushes to branches of acme/widgets.',
    });
    expect(fork.startsWith('This pull request')).toBe(true);
    const main = errorText({
      code: 'DEFAULT_BRANCH_HEAD',
      message: "parsingComment: This pull request's branch is ` main `, the repository's default branch, so rmapp changed nothing.",
    });
    expect(main.startsWith('This pull request')).toBe(true);
    expect(main).not.toContain('``');
  });
});

describe('a retry of a refusal', () => {
  const refused = (code: string) => ({
    workflow: 'PRReview',
    input: { owner: 'acme', repo: 'widgets', pullNumber: 8, commentId: 5, source: 'conversation' },
    error: {
      name: 'WorkflowError',
      message: 'parsingComment: This pull request was not opened by rmapp.',
      code,
      category: 'validation' as const,
    },
  });
  const none = async () => undefined;
  it('is refused once for a pull request that is not rmapp’s, unless the repository is opted in since', async () => {
    const no = await decideRetry(refused('NOT_OWN_BRANCH'), none, 'rmapp');
    expect(no.kind).toBe('refuse');
    expect(no.kind === 'refuse' && no.why).toMatch(/^This pull request was not opened by rmapp\. A retry would stop the same way/);
    expect((await decideRetry(refused('NOT_OWN_BRANCH'), none, 'rmapp', ['acme/*'])).kind).toBe('review-comment');
    expect((await decideRetry(refused('NOT_OWN_BRANCH'), none, 'rmapp', ['acme/gadgets'])).kind).toBe('refuse');
  });
  it('is refused for an issue run that found someone else’s branch', async () => {
    const run = {
      workflow: 'IssueImplementation',
      input: { owner: 'acme', repo: 'widgets', issueNumber: 5 },
      error: {
        name: 'WorkflowError',
        message: 'analyzing: the branch ` rmapp/issue-5 ` already exists.',
        code: 'ISSUE_BRANCH_TAKEN',
        category: 'validation' as const,
      },
    };
    const d = await decideRetry(run, async (name) => (name === 'plan' ? 'goal: x' : undefined), 'rmapp');
    expect(d.kind).toBe('refuse');
    expect(d.kind === 'refuse' && d.why).toContain('delete or rename the branch');
  });
});

describe('Workspaces.remoteBranchOwner: the run’s own pushes as evidence', () => {
  it('tells absent, the run’s own (a person’s commit on top too), and anyone else’s', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'rmapp-owner-'));
    const remote = await createBareRemote(tmp, 'widgets', { 'a.txt': 'a\n' });
    const git = async (cwd: string, ...args: string[]) => (await runCommand(['git', ...args], { cwd })).stdout.trim();
    const ws = new Workspaces({ root: join(tmp, 'runs'), author: { name: 'rmapp', email: 'rmapp@example.com' } });
    const mainTip = await git(remote, 'rev-parse', 'main');

    const mine = await ws.prepare({ runId: 'r1', remoteUrl: remote, branch: 'rmapp/issue-5', base: 'main' });
    expect(await ws.remoteBranchOwner(mine, [], undefined)).toBe('absent');
    await ws.writeFile(mine.dir, 'plan.txt', 'plan\n');
    const { sha } = await ws.commitAll(mine, 'rmapp: plan', undefined, ['plan.txt']);
    await ws.push(mine);

    // Resumed in a fresh clone (another worker): its recorded commit proves the branch its own.
    const again = await ws.prepare({ runId: 'r2', remoteUrl: remote, branch: 'rmapp/issue-5', base: 'main' });
    expect(await ws.remoteBranchOwner(again, [sha])).toBe('ours');
    expect(await ws.remoteBranchOwner(again, [])).toBe('unknown');
    // A commit of the default branch proves nothing: anyone's branch made from it holds it.
    expect(await ws.remoteBranchOwner(again, [mainTip])).toBe('unknown');
    expect(await ws.remoteBranchOwner(again, ['not a sha', '--all'])).toBe('unknown');

    // A person added a commit on top: still the run's branch.
    await git(again.dir, '-c', 'user.name=p', '-c', 'user.email=p@x', 'commit', '-q', '--allow-empty', '-m', 'a person’s commit');
    await git(again.dir, 'push', '-q', 'origin', 'HEAD:refs/heads/rmapp/issue-5');
    const later = await ws.prepare({ runId: 'r4', remoteUrl: remote, branch: 'rmapp/issue-5', base: 'main' });
    expect(await ws.remoteBranchOwner(later, [sha])).toBe('ours');

    // Someone else's branch of the same name, made before the run: not the run's.
    await git(remote, 'branch', '-f', 'rmapp/issue-5', 'main');
    const other = await ws.prepare({ runId: 'r3', remoteUrl: remote, branch: 'rmapp/issue-5', base: 'main' });
    expect(await ws.remoteBranchOwner(other, [sha])).toBe('unknown');
  });

  it('takes no commit as proof in a workspace that cannot tell the default branch (no origin/HEAD)', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'rmapp-owner-nohead-'));
    const remote = await createBareRemote(tmp, 'widgets', { 'a.txt': 'a\n' });
    const git = async (cwd: string, ...args: string[]) => (await runCommand(['git', ...args], { cwd })).stdout.trim();
    const ws = new Workspaces({ root: join(tmp, 'runs'), author: { name: 'rmapp', email: 'rmapp@example.com' } });
    const mine = await ws.prepare({ runId: 'r1', remoteUrl: remote, branch: 'rmapp/issue-5', base: 'main' });
    await ws.writeFile(mine.dir, 'plan.txt', 'plan\n');
    const { sha } = await ws.commitAll(mine, 'rmapp: plan', undefined, ['plan.txt']);
    await ws.push(mine);
    // rmapp's pull request was merged; the branch was deleted, and someone made one of the same name from main.
    await git(remote, 'branch', '-f', 'main', sha);
    await git(remote, 'branch', '-D', 'rmapp/issue-5');
    await git(remote, 'branch', 'rmapp/issue-5', 'main');
    const theirs = await ws.prepare({ runId: 'r2', remoteUrl: remote, branch: 'rmapp/issue-5', base: 'main' });
    expect(await ws.remoteBranchOwner(theirs, [sha]), 'with origin/HEAD: a merged commit proves nothing').toBe('unknown');
    await git(theirs.dir, 'symbolic-ref', '--delete', 'refs/remotes/origin/HEAD');
    expect(await ws.remoteBranchOwner(theirs, [sha]), 'without origin/HEAD the merged commit was taken as proof').toBe('unknown');
  });
});
