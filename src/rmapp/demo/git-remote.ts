/** A real git "origin" (tests, and the sample repository of `rmapp demo`): a bare repository whose `main` has one commit holding `files`. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { runCommand } from '../process.ts';

/** Creates `<dir>/<name>.git` (`files` may name subdirectories); `branches` are pushed at the same commit as `main`. Returns its path. */
export async function createBareRemote(dir: string, name: string, files: Record<string, string>, branches: string[] = []): Promise<string> {
  const git = async (cwd: string, ...args: string[]) => {
    const r = await runCommand(['git', '-c', 'user.name=t', '-c', 'user.email=t@x', ...args], { cwd });
    if (r.exitCode !== 0) throw new Error(`git ${args[0]} failed: ${r.stderr}`);
  };
  const remote = join(dir, `${name}.git`);
  await git(dir, 'init', '-q', '--bare', '-b', 'main', remote);
  const seed = join(dir, `${name}-seed`);
  await git(dir, 'clone', '-q', remote, seed);
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(dirname(join(seed, file)), { recursive: true });
    writeFileSync(join(seed, file), text);
  }
  await git(seed, 'add', '-A');
  await git(seed, 'commit', '-q', '--allow-empty', '-m', 'init');
  for (const branch of ['main', ...branches]) await git(seed, 'push', '-q', 'origin', `HEAD:${branch}`);
  return remote;
}
