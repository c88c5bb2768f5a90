/**
 * A submodule's configuration is the sandbox's. A repository with a submodule checks out an empty folder
 * for it; a test (or the agent) run in the sandbox makes a repository there whose `.git/config` names
 * `remote.origin.url = ext::sh -c …` with `protocol.ext.allow = always`. The next step of the run
 * prepares its workspace again with `git fetch`, which recursed into submodules by default ("on-demand":
 * once a fetched commit moves the gitlink — a bot's submodule bump, anyone's push to any branch) and
 * ran that command as the service, outside the sandbox.
 */
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from '../src/rmapp/process.ts';
import { createSandbox } from '../src/rmapp/sandbox/index.ts';
import { Workspaces } from '../src/rmapp/workspace.ts';
import { removeTree } from '../src/rmapp/workspace-access.ts';

async function git(cwd: string, ...args: string[]): Promise<string> {
  const r = await runCommand(['git', '-c', 'user.name=t', '-c', 'user.email=t@x', ...args], {
    cwd,
    env: { PATH: process.env.PATH, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' },
    inheritEnv: false,
  });
  if (r.exitCode !== 0) throw new Error(`git ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.trim();
}

describe("a submodule's folder the sandbox made a repository of", () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'rmapp-adv5-submodule-'));
  });
  afterAll(async () => {
    await removeTree(root);
  });

  it("runs nothing of its configuration when the service's git fetches", async () => {
    // The repository: a file, a .gitmodules and a gitlink `sub`.
    const remote = join(root, 'remote.git');
    const seed = join(root, 'seed');
    await git(root, 'init', '-q', '--bare', '-b', 'main', remote);
    await git(root, 'init', '-q', '-b', 'main', seed);
    await runCommand(['sh', '-c', `echo hi > f && printf '[submodule "sub"]\\n\\tpath = sub\\n\\turl = ./sub\\n' > .gitmodules`], {
      cwd: seed,
    });
    await git(seed, 'add', 'f', '.gitmodules');
    await git(seed, 'update-index', '--add', '--cacheinfo', `160000,${'1'.repeat(40)},sub`);
    await git(seed, 'commit', '-q', '-m', 'with a submodule');
    await git(seed, 'push', '-q', remote, 'HEAD:refs/heads/main');

    const workspaces = new Workspaces({ root: join(root, 'workspaces'), author: { name: 'rmapp', email: 'rmapp@example.com' } });
    const job = { runId: 'acme/widgets/issues/1/d1', remoteUrl: remote, branch: 'rmapp/issue-1', base: 'main' };
    const ws = await workspaces.prepare(job);

    // The sandboxed test command: a repository in the submodule's empty folder, its remote a command.
    const pwned = join(root, 'PWNED');
    const plant = [
      'git init -q sub',
      'git -C sub config protocol.ext.allow always',
      `git -C sub config remote.origin.url 'ext::sh -c touch% ${pwned}'`,
      "git -C sub config remote.origin.fetch '+refs/heads/*:refs/remotes/origin/*'",
      // The working tree's .gitmodules is the sandbox's too: it asks for the recursion per submodule.
      'printf \'[submodule "sub"]\\n\\tpath = sub\\n\\turl = ./sub\\n\\tfetchRecurseSubmodules = true\\n\' > .gitmodules',
    ].join(' && ');
    const r = await createSandbox({ driver: 'bubblewrap' }).run({ argv: ['sh', '-c', plant], workspace: ws.dir, timeoutMs: 60_000 });
    expect(r.exitCode, r.stderr).toBe(0);

    // Meanwhile a commit on another branch moves the gitlink.
    await git(seed, 'update-index', '--cacheinfo', `160000,${'2'.repeat(40)},sub`);
    await git(seed, 'commit', '-q', '-m', 'bump the submodule');
    await git(seed, 'push', '-q', remote, 'HEAD:refs/heads/bump');

    // The run's next step prepares its workspace again (a fetch).
    await workspaces.prepare(job).catch(() => {});
    expect(existsSync(pwned), "the service's git fetch recursed into the sandbox's submodule repository and ran its ext:: remote").toBe(
      false,
    );
  });
});
