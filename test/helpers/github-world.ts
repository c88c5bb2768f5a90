/**
 * A world for GitHub workflow tests: a bare git remote with `main`, the GitHub emulator with the repo
 * `acme/widgets`, a real Octokit client pointed at it, and the adapters the steps use (workspaces,
 * the scripted agent, a test command that passes when `impl.txt` says `right`).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IssueImplementationDeps } from '../../src/actors/issue-implementation.ts';
import type { PrReviewDeps } from '../../src/actors/pr-review.ts';
import { createGitHubClient, type GitHubOctokit } from '../../src/rmapp/github/client.ts';
import { runCommand } from '../../src/rmapp/process.ts';
import { Workspaces } from '../../src/rmapp/workspace.ts';
import { GitHubEmulator } from './github-emulator.ts';
import { ROOT } from './processes.ts';
import { createBareRemote } from './git-remote.ts';
import { testSandbox } from './sandbox.ts';

export interface GitHubWorld {
  emulator: GitHubEmulator;
  github: GitHubOctokit;
  remote: string;
  deps: IssueImplementationDeps;
  git(cwd: string, ...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

/**
 * A client of the emulator at `baseUrl` (no write spacing) and the adapters a pull-request review
 * needs: workspaces under `<root>/runs` cloning `remote`, and the scripted agent in the sandbox.
 */
export function reviewDeps(baseUrl: string, root: string, remote: string): PrReviewDeps {
  return {
    github: createGitHubClient({ baseUrl, token: 't0ken', minWriteIntervalMs: 0, minNotifyingWriteIntervalMs: 0, retryBaseMs: 10 }),
    workspaces: new Workspaces({ root: join(root, 'runs'), author: { name: 'rmapp', email: 'rmapp@example.com' } }),
    remoteUrl: () => remote,
    agent: { command: ['node', join(ROOT, 'src/rmapp/demo/scripted-agent.mjs')], timeoutMs: 20_000, sandbox: testSandbox },
    botName: 'rmapp',
  };
}

export async function createGitHubWorld(files: Record<string, string> = {}): Promise<GitHubWorld> {
  const tmp = mkdtempSync(join(tmpdir(), 'rmapp-world-'));
  const git = async (cwd: string, ...args: string[]) => (await runCommand(['git', ...args], { cwd })).stdout.trim();
  const remote = await createBareRemote(tmp, 'widgets', files);

  const emulator = new GitHubEmulator('t0ken');
  const baseUrl = await emulator.start();
  emulator.repos.set('acme/widgets', { default_branch: 'main' });
  const review = reviewDeps(baseUrl, tmp, remote);
  const { github } = review;
  const deps: IssueImplementationDeps = {
    ...review,
    tests: {
      command: [
        'node',
        '-e',
        "const fs = require('fs'); const v = fs.existsSync('impl.txt') ? fs.readFileSync('impl.txt', 'utf8').trim() : '(missing)'; console.log('expected impl.txt to say right, got ' + v); process.exit(v === 'right' ? 0 : 1)",
      ],
      timeoutMs: 20_000,
      sandbox: testSandbox,
    },
    botName: 'rmapp',
  };
  return { emulator, github, remote, deps, git, stop: () => emulator.stop() };
}
