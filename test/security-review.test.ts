/**
 * Review comments on pull requests an attacker controls: a fork's PR (also one whose branch has the
 * base branch's name), a branch that is not in the repository, a committed symlink to a host file,
 * `..` in the comment's path. Nothing is pushed anywhere, no host file reaches the agent, and every
 * failure answers the reviewer in the comment's thread.
 */
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/index.ts';
import { prReviewSteps } from '../src/actors/pr-review.ts';
import { prReviewWorkflow } from '../src/machines/pr-review.ts';
import { runCommand } from '../src/rmapp/process.ts';
import { GitHubEmulator } from './helpers/github-emulator.ts';
import { createBareRemote } from './helpers/git-remote.ts';
import { reviewDeps } from './helpers/github-world.ts';

const HOST_SECRET = 'HOST-ONLY-SECRET-7f3a9c';
let tmp: string;
let emulator: GitHubEmulator;
let engine: Engine;
let remote: string;
const git = async (cwd: string, ...args: string[]) =>
  (await runCommand(['git', '-c', 'user.name=t', '-c', 'user.email=t@x', ...args], { cwd })).stdout.trim();
/** Every ref of the remote with its commit: compared before and after, nothing may move. */
const refs = () => git(remote, 'for-each-ref', '--format=%(refname) %(objectname)');

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'rmapp-review-attack-'));
  writeFileSync(join(tmp, 'host-secret.txt'), `${HOST_SECRET}\n`);
  remote = await createBareRemote(tmp, 'widgets', { 'app.txt': 'let foo = 1;\n' }, ['feature', 'linked']);
  // The `linked` branch commits symlinks to a host file (absolute and relative).
  const seed = join(tmp, 'linked-seed');
  await git(tmp, 'clone', '-q', '-b', 'linked', remote, seed);
  symlinkSync(join(tmp, 'host-secret.txt'), join(seed, 'notes.txt'));
  symlinkSync('../../../../../../../../..' + join(tmp, 'host-secret.txt'), join(seed, 'relative.txt'));
  await git(seed, 'add', '-A');
  await git(seed, 'commit', '-q', '-m', 'links');
  await git(seed, 'push', '-q', 'origin', 'HEAD:linked');

  emulator = new GitHubEmulator('t0ken');
  const baseUrl = await emulator.start();
  emulator.repos.set('acme/widgets', { default_branch: 'main' });
  emulator.permissions.set('acme/widgets:reviewer', 'write');
  // The repository is opted in to reviews on any branch (`reviewAnyBranch`): the pull requests here are
  // people's, from their own branches, and every defence below must hold in that widest setting too.
  // Without it each would be refused first as not rmapp's (test/review-branch-owner.test.ts).
  const deps = { ...reviewDeps(baseUrl, tmp, remote), reviewAnyBranch: ['acme/widgets'] };
  engine = createEngine({ database: { url: '', dataDir: 'memory://' }, workflows: [prReviewWorkflow(prReviewSteps(deps))], pollMs: 50 });
  await engine.startWorker();
});

afterAll(async () => {
  await engine?.stop();
  await emulator?.stop();
});

function pull(head: string, headRepo: string | null | undefined): number {
  const list = emulator.pulls.get('acme/widgets') ?? [];
  const number = 100 + list.length;
  emulator.pulls.set('acme/widgets', [...list, { number, head, base: 'main', title: `PR ${number}`, body: '', state: 'open', headRepo }]);
  return number;
}

async function review(pullNumber: number, body: string, where: { path?: string; line?: number } = {}) {
  const commentId = emulator.addReviewComment('acme', 'widgets', pullNumber, body, 'reviewer', where);
  const id = await engine.start('PRReview', { owner: 'acme', repo: 'widgets', pullNumber, commentId });
  const run = await engine.waitFor(id, { timeoutMs: 60_000 });
  const replies = (emulator.reviewComments.get(`acme/widgets#${pullNumber}`) ?? []).filter((c) => c.in_reply_to_id === commentId);
  const entered = (await engine.history(id)).filter((h) => h.type === 'state.entered').map((h) => h.state);
  return { run, replies, entered };
}

it("refuses a fork's pull request, also one whose branch is named like the base's: nothing pushed, the reviewer told why", async () => {
  const before = await refs();
  for (const [headRepo, why] of [
    ['mallory/widgets', /branch is in the fork mallory\/widgets/],
    [null, /fork that no longer exists/],
  ] as const) {
    const { run, replies, entered } = await review(pull('main', headRepo), '@rmapp tidy this\nWRITE app.txt pwned', {
      path: 'app.txt',
      line: 1,
    });
    expect(run.status, `PR from ${headRepo}`).toBe('failed');
    expect(run.error).toMatchObject({ category: 'validation', code: 'FORK_PULL_REQUEST' });
    expect(entered, 'the run went no further than parsing').toEqual(['parsingComment', 'reportingFailure', 'failed']);
    expect(replies, `one reply for the PR from ${headRepo}`).toHaveLength(1);
    expect(replies[0]?.body).toMatch(why);
    expect(replies[0]?.body).toMatch(/^@reviewer I could not do this/);
  }
  expect(await refs(), 'a ref of the repository moved').toBe(before);
});

it('a branch that is not in the repository is not created from anything: the reviewer is told', async () => {
  const before = await refs();
  const { run, replies } = await review(pull('gone-branch', undefined), '@rmapp fix it\nWRITE app.txt x');
  expect(run.status).toBe('failed');
  expect(run.error).toMatchObject({ code: 'BRANCH_NOT_FOUND', category: 'validation' });
  expect(replies).toHaveLength(1);
  expect(replies[0]?.body).toMatch(/"gone-branch" is not in the repository/);
  expect(await refs()).toBe(before);
});

it('a committed symlink or a `..` path never brings a host file into the prompt', async () => {
  const number = pull('linked', undefined);
  for (const path of ['notes.txt', 'relative.txt', '../../host-secret.txt', '.git/config']) {
    const { run, replies, entered } = await review(number, '@rmapp explain this line', { path, line: 1 });
    expect(run.status, `path ${path}`).toBe('failed');
    expect(run.error?.message, `path ${path}`).toMatch(/outside the repository/);
    expect(entered, `the agent never ran for ${path}`).not.toContain('generatingFix');
    expect(replies, `path ${path}`).toHaveLength(1);
    expect(JSON.stringify(await engine.history(run.id))).not.toContain(HOST_SECRET);
  }
});

it('any failed stage answers the reviewer with the reason and what to do (the category stays out of the reply)', async () => {
  const { run, replies } = await review(pull('feature', undefined), '@rmapp try\nFAIL 3', { path: 'app.txt', line: 1 });
  expect(run.status).toBe('failed');
  expect(run.error).toMatchObject({ category: 'agent' });
  expect(replies).toHaveLength(1);
  expect(replies[0]?.body).toMatch(
    /I could not do this: the coding agent did not finish: ` The coding agent .* exited with 3: the agent gave up `\. Comment `@rmapp retry` to try again\./,
  );
  expect(replies[0]?.body).not.toContain('`agent`'); // categories stay out of the reply
});

it('a PR branch deleted or moved on while the run works is neither re-created nor overwritten', async () => {
  for (const [what, change] of [
    ['deleted', () => git(remote, 'update-ref', '-d', 'refs/heads/doomed')],
    ['moved on', async () => git(remote, 'update-ref', 'refs/heads/doomed', await git(remote, 'rev-parse', 'refs/heads/linked'))],
  ] as const) {
    await git(remote, 'update-ref', 'refs/heads/doomed', await git(remote, 'rev-parse', 'refs/heads/main'));
    const number = pull('doomed', undefined);
    const commentId = emulator.addReviewComment(
      'acme',
      'widgets',
      number,
      '@rmapp change it\nSLEEP 3000\nWRITE app.txt changed',
      'reviewer',
      { path: 'app.txt', line: 1 },
    );
    const id = await engine.start('PRReview', { owner: 'acme', repo: 'widgets', pullNumber: number, commentId });
    // While the agent works (it sleeps), the branch goes.
    for (let i = 0; i < 200 && !(await engine.history(id)).some((h) => h.type === 'state.entered' && h.state === 'generatingFix'); i += 1)
      await new Promise((r) => setTimeout(r, 50));
    await change();
    const after = await refs();
    const run = await engine.waitFor(id, { timeoutMs: 60_000 });
    expect(run.status, `branch ${what}`).toBe('failed');
    expect(run.error, `branch ${what}`).toMatchObject({ code: 'BRANCH_CHANGED' });
    expect(await refs(), `a ref moved after the branch was ${what}`).toBe(after);
    const replies = (emulator.reviewComments.get(`acme/widgets#${number}`) ?? []).filter((c) => c.in_reply_to_id === commentId);
    expect(replies[0]?.body).toMatch(/deleted or changed in the repository while the run worked on it; nothing was pushed/);
  }
});
