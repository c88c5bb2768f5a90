/**
 * The commit a step started from and the files its commit changed (`Workspaces.head`,
 * `changedFiles`, used by the implement and review steps) are read by the service's git with its own
 * settings — not the service's environment, where a `GIT_DIR` or a `GIT_CONFIG_*` setting (an fsmonitor
 * command, say) would point git elsewhere or run a program, and where the service's secrets are.
 */
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { runCommand } from '../src/rmapp/process.ts';
import { Workspaces } from '../src/rmapp/workspace.ts';
import { createBareRemote } from './helpers/git-remote.ts';

const hostile = { GIT_DIR: '/nonexistent/.git', GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'core.fsmonitor', GIT_CONFIG_VALUE_0: '' };
afterEach(() => {
  for (const k of Object.keys(hostile)) delete process.env[k];
});

it("head and changedFiles run git with the workspaces' settings, never the service's environment", async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'rmapp-git-env-'));
  const remote = await createBareRemote(tmp, 'env', { 'a.txt': 'a\n' });
  const workspaces = new Workspaces({ root: join(tmp, 'runs'), author: { name: 'rmapp', email: 'rmapp@example.com' } });
  const ws = await workspaces.prepare({ runId: 'env-1', remoteUrl: remote, branch: 'rmapp/issue-1', base: 'main' });
  const before = await workspaces.head(ws);
  writeFileSync(join(ws.dir, 'b.txt'), 'b\n');
  const { sha } = await workspaces.commitAll(ws, 'add b');
  const marker = join(tmp, 'fsmonitor-ran');
  Object.assign(process.env, { ...hostile, GIT_CONFIG_VALUE_0: `touch ${marker}` });
  expect(await workspaces.head(ws)).toBe(sha);
  expect(await workspaces.changedFiles(ws, before, sha)).toEqual(['b.txt']);
  expect(await workspaces.changedFiles(ws, null, sha)).toEqual(['b.txt']);
  expect(existsSync(marker), "git ran the service environment's fsmonitor").toBe(false);
  // The same environment reaches a plain git: the test would prove nothing otherwise.
  const plain = await runCommand(['git', 'rev-parse', 'HEAD'], { cwd: ws.dir });
  expect(plain.exitCode).not.toBe(0);
});

it("the service's git reads neither the operator's global nor the system git configuration, which a repository's .gitattributes could call into", async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'rmapp-git-global-'));
  const remote = await createBareRemote(tmp, 'global', { 'a.txt': 'a\n', '.gitattributes': '*.txt filter=evil\n' });
  const workspaces = new Workspaces({ root: join(tmp, 'runs'), author: { name: 'rmapp', email: 'rmapp@example.com' } });
  const ws = await workspaces.prepare({ runId: 'global-1', remoteUrl: remote, branch: 'rmapp/issue-1', base: 'main' });
  // The operator's own ~/.gitconfig defines a filter driver (as git-lfs's install does): a repository
  // names drivers in its .gitattributes, so any command one defines would run on the repository's say.
  const home = join(tmp, 'home');
  const marker = join(tmp, 'filter-ran');
  mkdirSync(home);
  writeFileSync(
    join(home, '.gitconfig'),
    `[filter "evil"]\n\tclean = "sh -c 'touch ${marker}; cat'"\n\tsmudge = "sh -c 'touch ${marker}; cat'"\n`,
  );
  // And git's default ignore and attributes files under HOME, read without any configuration: the
  // operator's ignore rules left the agent's file out of its commit (a second pass).
  mkdirSync(join(home, '.config', 'git'), { recursive: true });
  writeFileSync(join(home, '.config', 'git', 'ignore'), 'b.txt\n');
  writeFileSync(join(home, '.config', 'git', 'attributes'), '*.txt filter=evil\n');
  const savedHome = process.env.HOME;
  process.env.HOME = home;
  try {
    writeFileSync(join(ws.dir, 'b.txt'), 'b\n');
    const { sha } = await workspaces.commitAll(ws, 'add b');
    expect(await workspaces.changedFiles(ws, null, sha), 'what the commit holds').toEqual(['b.txt']);
    await workspaces.head(ws);
    // The same configuration reaches a plain git: the test would prove nothing otherwise.
    const plain = await runCommand(['git', 'config', '--global', 'filter.evil.clean'], { cwd: ws.dir });
    expect(plain.stdout).toContain('touch');
  } finally {
    process.env.HOME = savedHome;
  }
  expect(existsSync(marker), "git ran a filter from the operator's global configuration").toBe(false);
});
