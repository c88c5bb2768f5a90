/**
 * git reads every `.gitignore` and `.gitattributes` of the working tree by opening it, and `open` on a
 * FIFO waits for a writer. A sandboxed command (the agent, or a repository's setup or tests) that left
 * `mkfifo .gitignore` in the workspace held the service's next `git add -A` (the commit) or `git
 * ls-files` (after setup) for git's whole timeout — 10 minutes by default, per command — with the run's
 * concurrency slot. The service refuses such a workspace before its git reads it, as it refuses a nested
 * repository. The commands run in the real bubblewrap sandbox.
 */
import { closeSync, constants, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { runCommand } from '../src/rmapp/process.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Workspaces, type Workspace } from '../src/rmapp/workspace.ts';
import { createBareRemote } from './helpers/git-remote.ts';
import { testSandbox } from './helpers/sandbox.ts';

const root = mkdtempSync(join(tmpdir(), 'sb-gitignore-fifo-'));
const fifos: string[] = [];
afterAll(() => {
  // A git left waiting on a FIFO (the defect) is let go: a writer opening the FIFO ends the reader's `open`.
  for (const fifo of fifos) {
    try {
      closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // No reader waits.
    }
  }
  rmSync(root, { recursive: true, force: true });
});

async function sandboxed(id: string, script: string, fifo: string): Promise<{ workspaces: Workspaces; ws: Workspace }> {
  const remote = await createBareRemote(root, `repo-${id}`, { 'src/index.js': 'x\n' });
  // A bounded timeout, so that a git left waiting ends after the test has failed.
  const workspaces = new Workspaces({
    root: join(root, `ws-${id}`),
    author: { name: 'rmapp', email: 'rmapp@example.com' },
    timeoutMs: 90_000,
  });
  const ws = await workspaces.prepare({ runId: `run-${id}`, remoteUrl: remote, branch: 'rmapp/issue-1', base: 'main' });
  fifos.push(join(ws.dir, fifo));
  const r = await testSandbox.run({ argv: ['/bin/sh', '-c', script], workspace: ws.dir, timeoutMs: 30_000 });
  expect(r.exitCode, r.stderr).toBe(0);
  return { workspaces, ws };
}

describe("a FIFO where git reads a workspace's ignore or attributes file", () => {
  it('refuses the commit of a workspace with a FIFO .gitignore instead of waiting on it', async () => {
    const { workspaces, ws } = await sandboxed('commit', 'echo y > src/new.js && mkfifo src/.gitignore', 'src/.gitignore');
    const err = await workspaces.commitAll(ws, 'rmapp: change').then(
      () => null,
      (e: { code?: string; message: string }) => e,
    );
    expect(err?.code, `commitAll: ${err?.message ?? 'committed'}`).toBe('FIFO_IN_WORKSPACE');
    expect(err?.message).toContain('src/.gitignore');
  });

  it('refuses to list what setup left when it left a FIFO .gitignore', async () => {
    const { workspaces, ws } = await sandboxed('setup', 'mkdir -p node_modules && mkfifo .gitignore', '.gitignore');
    const err = await workspaces.excludeUntracked(ws).then(
      () => null,
      (e: { code?: string; message: string }) => e,
    );
    expect(err?.code, `excludeUntracked: ${err?.message ?? 'listed'}`).toBe('FIFO_IN_WORKSPACE');
  });
});

describe('a FIFO .gitattributes left for the next step', () => {
  it('refuses to resume the workspace instead of waiting on it in `git checkout`', async () => {
    const { workspaces, ws } = await sandboxed('resume', 'echo y > src/index.js && mkfifo .gitattributes', '.gitattributes');
    // The next step of the run prepares the same workspace again (the analysing agent left it so for implementing).
    const err = await workspaces.prepare({ runId: 'run-resume', remoteUrl: ws.remoteUrl, branch: ws.branch, base: 'main' }).then(
      () => null,
      (e: { code?: string; message: string }) => e,
    );
    expect(err?.code, `prepare: ${err?.message ?? 'prepared'}`).toBe('FIFO_IN_WORKSPACE');
  });
});

describe('a FIFO .gitmodules in a repository with a submodule', () => {
  it('refuses to resume the workspace instead of waiting on it in `git checkout`', async () => {
    const remote = await createBareRemote(root, 'repo-modules', { 'src/index.js': 'x\n' });
    // A submodule's entry (a gitlink) and its .gitmodules, committed to main.
    const seed = join(root, 'repo-modules-seed');
    const git = async (...args: string[]) => {
      const r = await runCommand(['git', '-c', 'user.name=t', '-c', 'user.email=t@x', ...args], { cwd: seed });
      if (r.exitCode !== 0) throw new Error(`git ${args[0]}: ${r.stderr}`);
    };
    writeFileSync(join(seed, '.gitmodules'), '[submodule "lib"]\n\tpath = lib\n\turl = ./lib\n');
    await git('update-index', '--add', '--cacheinfo', `160000,${'1'.repeat(40)},lib`);
    await git('add', '.gitmodules');
    await git('commit', '-q', '-m', 'a submodule');
    await git('push', '-q', 'origin', 'HEAD:main');
    const workspaces = new Workspaces({
      root: join(root, 'ws-modules'),
      author: { name: 'rmapp', email: 'rmapp@example.com' },
      timeoutMs: 90_000,
    });
    const ws = await workspaces.prepare({ runId: 'run-modules', remoteUrl: remote, branch: 'rmapp/issue-1', base: 'main' });
    fifos.push(join(ws.dir, '.gitmodules'));
    const r = await testSandbox.run({
      argv: ['/bin/sh', '-c', 'rm .gitmodules && mkfifo .gitmodules'],
      workspace: ws.dir,
      timeoutMs: 30_000,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const err = await workspaces.prepare({ runId: 'run-modules', remoteUrl: remote, branch: ws.branch, base: 'main' }).then(
      () => null,
      (e: { code?: string; message: string }) => e,
    );
    expect(err?.code, `prepare: ${err?.message ?? 'prepared'}`).toBe('FIFO_IN_WORKSPACE');
  });
});

describe('throwing an attempt away', () => {
  it('removes a FIFO .gitignore or .gitattributes the tests left instead of waiting on it', async () => {
    // A review's tests failed: the attempt is discarded (pr-review.ts testChange) with what the tests left.
    const { workspaces, ws } = await sandboxed(
      'discard',
      'echo y > src/index.js && mkfifo .gitattributes src/.gitignore',
      '.gitattributes',
    );
    fifos.push(join(ws.dir, 'src', '.gitignore'));
    await workspaces.discardChanges(ws);
    expect(readFileSync(join(ws.dir, 'src', 'index.js'), 'utf8'), 'the change is thrown away').toBe('x\n');
    expect(existsSync(join(ws.dir, '.gitattributes')), 'the FIFO is gone').toBe(false);
  });
});
