/**
 * IssueImplementation end to end: the real engine (PGlite), GitHub emulated and reached through the
 * real Octokit client, a real git remote, the coding agent as a real external command (scripted).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/index.ts';
import { issueImplementationSteps } from '../src/actors/issue-implementation.ts';
import { issueImplementationWorkflow } from '../src/machines/issue-implementation.ts';
import { createGitHubClient } from '../src/rmapp/github/client.ts';
import { runCommand } from '../src/rmapp/process.ts';
import { Workspaces } from '../src/rmapp/workspace.ts';
import { attachProgressComments } from '../src/rmapp/progress-comment.ts';
import { marker } from '../src/rmapp/github/writes.ts';
import { GitHubEmulator } from './helpers/github-emulator.ts';
import { ROOT } from './helpers/processes.ts';

let emulator: GitHubEmulator;
let engine: Engine;
let progress: { stop(): void; flush(): Promise<void> };
let remote: string;
const git = async (cwd: string, ...args: string[]) => (await runCommand(['git', ...args], { cwd })).stdout.trim();

beforeAll(async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'rmapp-issue-'));
  remote = join(tmp, 'widgets.git');
  await runCommand(['git', 'init', '-q', '--bare', '-b', 'main', remote]);
  const seed = join(tmp, 'seed');
  await runCommand(['git', 'clone', '-q', remote, seed]);
  await runCommand(['git', '-c', 'user.name=t', '-c', 'user.email=t@x', 'commit', '-q', '--allow-empty', '-m', 'init'], { cwd: seed });
  await git(seed, 'push', '-q', 'origin', 'HEAD:main');

  emulator = new GitHubEmulator('t0ken');
  const baseUrl = await emulator.start();
  emulator.repos.set('acme/widgets', { default_branch: 'main' });
  emulator.issues.set('acme/widgets#1', {
    title: 'Make impl.txt say right',
    body: 'PLAN write impl.txt\nWRITE impl.txt wrong\nIF_FAILED WRITE impl.txt right',
  });
  emulator.issues.set('acme/widgets#2', { title: 'Never passes', body: 'PLAN try\nWRITE impl.txt wrong' });
  const github = createGitHubClient({ baseUrl, token: 't0ken', minWriteIntervalMs: 0, minNotifyingWriteIntervalMs: 0, retryBaseMs: 10 });
  const steps = issueImplementationSteps({
    github,
    workspaces: new Workspaces({ root: join(tmp, 'runs'), author: { name: 'rmapp', email: 'rmapp@example.com' } }),
    remoteUrl: () => remote,
    agent: { command: ['node', join(ROOT, 'test/fixtures/scripted-agent.mjs')], timeoutMs: 20_000 },
    tests: { command: ['node', '-e', "process.exit(require('fs').readFileSync('impl.txt','utf8').trim() === 'right' ? 0 : 1)"], timeoutMs: 20_000 },
  });
  engine = createEngine({ database: { url: '', dataDir: 'memory://' }, workflows: [issueImplementationWorkflow(steps)], pollMs: 50 });
  progress = attachProgressComments(engine, github, {
    stages: { IssueImplementation: ['analyzing', 'planning', 'implementing', 'testing', 'creatingPR', 'complete'] },
    minIntervalMs: 50,
  });
  await engine.startWorker();
});

afterAll(async () => {
  progress.stop();
  await engine.stop();
  await emulator.stop();
});

it('implements an issue: the failed tests send it back to implementing, then one PR is opened', async () => {
  const id = await engine.start('IssueImplementation', { owner: 'acme', repo: 'widgets', issueNumber: 1, requestedBy: 'octocat' });
  const run = await engine.waitFor(id, { timeoutMs: 60_000 });
  expect(run.status).toBe('succeeded');
  expect(run.state).toBe('complete');
  expect(run.output).toMatchObject({ testAttempts: 2, error: null });
  const pulls = emulator.pulls.get('acme/widgets') ?? [];
  expect(pulls).toHaveLength(1);
  expect(pulls[0]).toMatchObject({ head: 'rmapp/issue-1', base: 'main', title: 'Fix #1: Make impl.txt say right' });
  expect(pulls[0]?.body).toContain('Requested by @octocat');
  expect(pulls[0]?.body).toContain('write impl.txt');
  // Two commits on the branch: the wrong attempt and the fix.
  expect(await git(remote, 'rev-list', '--count', 'main..rmapp/issue-1')).toBe('2');
  expect(await git(remote, 'show', 'rmapp/issue-1:impl.txt')).toBe('right');
  const entered = (await engine.history(id)).filter((h) => h.type === 'state.entered').map((h) => h.state);
  expect(entered).toEqual(['analyzing', 'planning', 'implementing', 'testing', 'implementing', 'testing', 'creatingPR', 'complete']);
  expect(await engine.getArtifact(id, 'plan')).toBe('write impl.txt');

  // One progress comment on the issue, edited in place, ending with every stage done and the PR link.
  await progress.flush();
  const comments = (emulator.comments.get('acme/widgets#1') ?? []).filter((c) => c.body.includes(marker(`${id}/progress`)));
  expect(comments).toHaveLength(1);
  const body = comments[0]?.body ?? '';
  for (const stage of ['analyzing', 'planning', 'implementing', 'testing', 'creatingPR']) expect(body).toContain(`- [x] ${stage}`);
  expect(body).toContain(`✅ Done: ${pulls[0] ? `https://github.example/acme/widgets/pull/${(emulator.pulls.get('acme/widgets') ?? [])[0]?.number}` : ''}`);
});

it('fails with category test_failure when the tests never pass, and opens no PR', async () => {
  const id = await engine.start('IssueImplementation', { owner: 'acme', repo: 'widgets', issueNumber: 2, maxTestAttempts: 2 });
  const run = await engine.waitFor(id, { timeoutMs: 60_000 });
  expect(run.status).toBe('failed');
  expect(run.state).toBe('failed');
  expect(run.error).toMatchObject({ category: 'test_failure', code: 'TESTS_FAILED' });
  expect((emulator.pulls.get('acme/widgets') ?? []).filter((p) => p.head === 'rmapp/issue-2')).toHaveLength(0);
  await progress.flush();
  const comments = emulator.comments.get('acme/widgets#2') ?? [];
  expect(comments).toHaveLength(1);
  expect(comments[0]?.body).toContain('❌ failed');
  expect(comments[0]?.body).toContain('`test_failure` testing: the tests still fail after 2 attempts');
});

it('fails at analyzing with the GitHub error category when the issue does not exist', async () => {
  const id = await engine.start('IssueImplementation', { owner: 'acme', repo: 'widgets', issueNumber: 404 });
  const run = await engine.waitFor(id, { timeoutMs: 60_000 });
  expect(run.status).toBe('failed');
  expect(run.error).toMatchObject({ category: 'permanent', code: 'HTTP_404' });
  expect(run.error?.message).toMatch(/^analyzing: /);
});
