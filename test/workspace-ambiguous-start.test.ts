/**
 * A workspace's branch starts from the remote-tracking branch named in full (`Workspaces.prepare`): a
 * short `origin/<base>` is ambiguous once the repository holds a tag (or a branch) of that very name,
 * which anyone who may push can create, and `git checkout -B <branch> origin/<base>` then failed — every
 * issue run of that repository failed with GIT_FAILED. The tag's commit must not be the start either.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { Workspaces } from '../src/rmapp/workspace.ts';
import { createBareRemote } from './helpers/git-remote.ts';

const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd, encoding: 'utf8' }).trim();

it.each(['origin/main', 'refs/remotes/origin/main'])(
  'a tag named %s in the repository neither breaks a new branch nor becomes its start',
  async (tag) => {
    const tmp = mkdtempSync(join(tmpdir(), 'rmapp-ambiguous-'));
    const remote = await createBareRemote(tmp, 'amb', { 'a.txt': 'main\n' });
    // A writer pushes a tag of that name, on a commit that is not the default branch's.
    const clone = join(tmp, 'clone');
    git(tmp, 'clone', '-q', remote, clone);
    writeFileSync(join(clone, 'a.txt'), 'tagged\n');
    git(clone, 'commit', '-qam', 'tagged');
    git(clone, 'tag', tag);
    git(clone, 'push', '-q', 'origin', `refs/tags/${tag}`);
    const mainTip = git(clone, 'rev-parse', 'HEAD~1');

    const workspaces = new Workspaces({ root: join(tmp, 'runs'), author: { name: 'rmapp', email: 'rmapp@example.com' } });
    const ws = await workspaces.prepare({ runId: 'amb-1', remoteUrl: remote, branch: 'rmapp/issue-1', base: 'main' });
    expect(await workspaces.head(ws), `the branch's start (the tag ${tag} is at another commit)`).toBe(mainTip);
    expect(readFileSync(join(ws.dir, 'a.txt'), 'utf8')).toBe('main\n');
  },
);
