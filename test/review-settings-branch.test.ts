/**
 * PRReview's test step reads the repository's settings (`.github/rmapp.yml`: the test command, the
 * sandbox's hosts) from the default branch only. With no `origin/HEAD` in the workspace it fails;
 * it never falls back to the pull request's own branch, whose author would then choose the command
 * run on the change and the hosts it may reach.
 */
import { existsSync, mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createActor, toPromise } from 'xstate';
import { expect, it } from 'vitest';
import { prReviewSteps } from '../src/actors/pr-review.ts';
import { runCommand } from '../src/rmapp/process.ts';
import { createBareRemote } from './helpers/git-remote.ts';
import { reviewDeps } from './helpers/github-world.ts';
import { testSandbox } from './helpers/sandbox.ts';

const git = async (cwd: string, ...args: string[]) => {
  const r = await runCommand(['git', '-c', 'user.name=t', '-c', 'user.email=t@x', ...args], { cwd });
  if (r.exitCode !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
};

it("fails rather than take the test command from the pull request's branch when the default branch is unknown", async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'rmapp-review-settings-'));
  const remote = await createBareRemote(tmp, 'widgets', { 'app.txt': 'let foo = 1;\n' }, ['feature']);
  // The pull request's branch carries settings of its author's choosing: a test command that leaves a mark.
  const clone = join(tmp, 'author');
  await git(tmp, 'clone', '-q', '-b', 'feature', remote, clone);
  mkdirSync(join(clone, '.github'));
  writeFileSync(join(clone, '.github/rmapp.yml'), 'test: [sh, -c, "echo from-the-pr > ran-pr-settings.txt"]\n');
  await git(clone, 'add', '-A');
  await git(clone, 'commit', '-q', '-m', 'settings of my own');
  await git(clone, 'push', '-q', 'origin', 'HEAD:feature');
  // The remote's HEAD names no branch, so a clone of it has no origin/HEAD.
  await git(remote, 'symbolic-ref', 'HEAD', 'refs/heads/gone');

  const deps = { ...reviewDeps('http://127.0.0.1:9', tmp, remote), tests: { command: ['true'], timeoutMs: 20_000, sandbox: testSandbox } };
  const input = {
    owner: 'acme',
    repo: 'widgets',
    pullNumber: 1,
    commentId: 1,
    review: { request: 'rename foo', path: null, line: null, author: 'reviewer', branch: 'feature' },
  };
  const actor = createActor(prReviewSteps(deps).testChange, { input: input as never });
  actor.start();
  const error = await toPromise(actor).then(
    () => null,
    (err: unknown) => err as { code?: string; message?: string },
  );
  expect(error?.code, `the test step ended with ${JSON.stringify(error?.message ?? 'success')}`).toBe('DEFAULT_BRANCH_UNKNOWN');
  const workspace = deps.workspaces.dirOf('local');
  expect(existsSync(join(workspace, 'ran-pr-settings.txt')), "the pull request's test command ran").toBe(false);
});
