/**
 * A repository asks for sandbox network hosts in `.github/rmapp.yml` on its default branch — never on
 * the branch being worked on, which the agent or a pull request's author controls.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { toErrorData } from '../src/index.ts';
import { runCommand } from '../src/rmapp/process.ts';
import { parseRepositoryPolicy, Workspaces } from '../src/rmapp/workspace.ts';
import { createBareRemote } from './helpers/git-remote.ts';

it('reads the hosts from the default branch, ignores the working branch, and names a wrong file', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'rmapp-policy-'));
  const remote = await createBareRemote(tmp, 'widgets', { 'README.md': 'x\n' });
  // .github/ needs a directory: commit the file through a clone.
  const seed = join(tmp, 'seed');
  const git = (cwd: string, ...args: string[]) => runCommand(['git', '-c', 'user.name=t', '-c', 'user.email=t@x', ...args], { cwd });
  await git(tmp, 'clone', '-q', remote, seed);
  await runCommand(['mkdir', '-p', join(seed, '.github')]);
  await runCommand([
    'sh',
    '-c',
    `printf 'sandbox:\\n  network: [registry.npmjs.org, "*.pythonhosted.org"]\\n' > ${join(seed, '.github/rmapp.yml')}`,
  ]);
  await git(seed, 'add', '-A');
  await git(seed, 'commit', '-qm', 'policy');
  await git(seed, 'push', '-q', 'origin', 'HEAD:main');

  const workspaces = new Workspaces({ root: join(tmp, 'runs'), author: { name: 'rmapp', email: 'rmapp@example.com' } });
  const ws = await workspaces.prepare({ runId: 'p-1', remoteUrl: remote, branch: 'rmapp/issue-1', base: 'main' });
  // The working branch asks for more: ignored.
  await runCommand(['sh', '-c', `printf 'sandbox:\\n  network: [evil.example.com]\\n' > .github/rmapp.yml`], { cwd: ws.dir });
  await workspaces.commitAll(ws, 'widen the network');
  expect(await workspaces.repositoryPolicy(ws, 'main')).toEqual({ network: ['registry.npmjs.org', '*.pythonhosted.org'] });

  expect(parseRepositoryPolicy('')).toEqual({ network: [] });
  for (const [text, problem] of [
    ['sandbox:\n  network: ["bad host!"]\n', /\.github\/rmapp\.yml:sandbox\.network\.0: must be a host name/],
    ['sandbox:\n  netwrk: []\n', /unknown setting\(s\) netwrk/],
    ['sandbox: [\n', /is not valid YAML/],
  ] as const) {
    const err = (() => {
      try {
        return parseRepositoryPolicy(text);
      } catch (e) {
        return e;
      }
    })();
    expect(toErrorData(err), text).toMatchObject({ category: 'validation' });
    expect((err as Error).message, text).toMatch(problem);
  }
});
