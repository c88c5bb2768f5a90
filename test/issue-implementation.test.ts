/**
 * IssueImplementation end to end: the real engine (PGlite), GitHub emulated and reached through the
 * real Octokit client, a real git remote, the coding agent as a real external command (scripted).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/index.ts';
import { issueImplementationSteps } from '../src/actors/issue-implementation.ts';
import { issueImplementationWorkflow } from '../src/machines/issue-implementation.ts';
import { attachProgressComments, type ProgressComments } from '../src/rmapp/progress-comment.ts';
import { marker } from '../src/rmapp/github/writes.ts';
import { parsePlanYaml } from '../src/rmapp/plan.ts';
import { createGitHubWorld, type GitHubWorld } from './helpers/github-world.ts';
import type { GitHubEmulator } from './helpers/github-emulator.ts';

let world: GitHubWorld;
let emulator: GitHubEmulator;
let engine: Engine;
let remote: string;
let progress: ProgressComments;
const git = (cwd: string, ...args: string[]) => world.git(cwd, ...args);

beforeAll(async () => {
  world = await createGitHubWorld();
  emulator = world.emulator;
  remote = world.remote;
  emulator.issues.set('acme/widgets#1', {
    title: 'Make impl.txt say right',
    body: 'PLAN write impl.txt\nWRITE impl.txt wrong\nIF_FAILED WRITE impl.txt right',
  });
  // Each attempt changes something (an attempt that changes nothing ends the run as NO_CHANGE instead).
  emulator.issues.set('acme/widgets#2', {
    title: 'Never passes',
    body: 'PLAN try\nWRITE impl.txt wrong\nIF_FAILED WRITE impl.txt still-wrong',
  });
  emulator.issues.set('acme/widgets#3', { title: 'Sloppy planner', body: 'PLAN write impl.txt\nBADJSON_ONCE\nWRITE impl.txt right' });
  emulator.issues.set('acme/widgets#4', { title: 'Hopeless planner', body: 'PLAN x\nBADJSON plan\nWRITE impl.txt right' });
  emulator.issues.set('acme/widgets#5', { title: 'Hopeless analyst', body: 'BADJSON analysis' });
  engine = createEngine({
    database: { url: '', dataDir: 'memory://' },
    workflows: [issueImplementationWorkflow(issueImplementationSteps(world.deps))],
    pollMs: 50,
  });
  progress = attachProgressComments(engine, world.github, {
    stages: { IssueImplementation: ['analyzing', 'planning', 'openingDraftPR', 'implementing', 'testing', 'creatingPR', 'complete'] },
    minIntervalMs: 50,
    webUrl: 'https://github.example',
    dashboardUrl: 'http://rmapp.example/',
    branchOf: (run) => `rmapp/issue-${(run.input as { issueNumber: number }).issueNumber}`,
  });
  await engine.startWorker();
});

afterAll(async () => {
  progress.stop();
  await engine.stop();
  await world.stop();
});

it('implements an issue: the failed tests send it back to implementing, then one PR is opened', async () => {
  const id = await engine.start('IssueImplementation', { owner: 'acme', repo: 'widgets', issueNumber: 1, requestedBy: 'octocat' });
  const run = await engine.waitFor(id, { timeoutMs: 60_000 });
  expect(run.status).toBe('succeeded');
  expect(run.state).toBe('complete');
  expect(run.output).toMatchObject({ testAttempts: 2, error: null });
  const pulls = emulator.pulls.get('acme/widgets') ?? [];
  expect(pulls).toHaveLength(1);
  // The analysis says `feature`: the title says so; the draft opened before the tests is ready now, and the requester asked to review.
  expect(pulls[0]).toMatchObject({ head: 'rmapp/issue-1', base: 'main', title: 'feat: Make impl.txt say right (#1)', draft: false });
  expect(pulls[0]?.requestedReviewers).toEqual(['octocat']);
  expect(pulls[0]?.body).toContain('Closes #1. Requested by @octocat.');
  expect(pulls[0]?.body).toContain('- [x] write impl.txt (`impl.txt`)');
  // Three commits on the branch: the plan (once, though both attempts wrote it), the wrong attempt, the fix.
  expect(await git(remote, 'rev-list', '--count', 'main..rmapp/issue-1')).toBe('3');
  expect(await git(remote, 'log', '--reverse', '--format=%s', 'main..rmapp/issue-1')).toMatch(
    /^rmapp: plan for #1 \(tasks\/issue-1\.yml\)\n/,
  );
  const committedPlan = parsePlanYaml(await git(remote, 'show', 'rmapp/issue-1:tasks/issue-1.yml'));
  expect(committedPlan).toMatchObject({
    goal: 'write impl.txt',
    tasks: [{ title: 'write impl.txt', files: ['impl.txt'], steps: [{ prompt: 'write impl.txt', done: false }] }],
  });
  expect(pulls[0]?.body).toContain('**Goal:** write impl.txt');
  expect(pulls[0]?.body).not.toContain('```yaml');
  expect(await git(remote, 'show', 'rmapp/issue-1:impl.txt')).toBe('right');
  const entered = (await engine.history(id)).filter((h) => h.type === 'state.entered').map((h) => h.state);
  expect(entered).toEqual([
    'analyzing',
    'planning',
    'openingDraftPR',
    'implementing',
    'testing',
    'implementing',
    'testing',
    'creatingPR',
    'complete',
  ]);
  const plan = await engine.getArtifact<string>(id, 'plan');
  expect(parsePlanYaml(plan ?? '')).toEqual(committedPlan);
  expect(await engine.getArtifact(id, 'analysis')).toEqual({ summary: 'write impl.txt', kind: 'feature', risks: [] });

  // One progress comment on the issue, edited in place, ending with every stage done and the PR link.
  await progress.flush();
  const comments = (emulator.comments.get('acme/widgets#1') ?? []).filter((c) => c.body.includes(marker(`${id}/progress`)));
  expect(comments).toHaveLength(1);
  const body = comments[0]?.body ?? '';
  for (const stage of [
    'Read the issue',
    'Plan the change',
    'Open a draft pull request',
    'Implement the change',
    'Run the tests',
    'Open the pull request',
  ])
    expect(body).toMatch(new RegExp(`- \\[x\\] ${stage}`));
  expect(body).not.toContain('in progress');
  expect(body).toContain(`✅ Done. The pull request is ready for review: https://github.example/acme/widgets/pull/${pulls[0]?.number}`);
  // Its final edit written, the finished run's view is no longer held.
  expect(progress.heldRuns(), `run ${id} finished but its progress view is still held`).not.toContain(id);
});

it('fails with category test_failure when the tests never pass; the draft PR stays a draft', async () => {
  const id = await engine.start('IssueImplementation', { owner: 'acme', repo: 'widgets', issueNumber: 2, maxTestAttempts: 2 });
  const run = await engine.waitFor(id, { timeoutMs: 60_000 });
  expect(run.status).toBe('failed');
  expect(run.state).toBe('failed');
  expect(run.error).toMatchObject({ category: 'test_failure', code: 'TESTS_FAILED' });
  const drafts = (emulator.pulls.get('acme/widgets') ?? []).filter((p) => p.head === 'rmapp/issue-2');
  expect(drafts).toMatchObject([{ draft: true }]);
  expect(drafts[0]?.body).toContain('rmapp stopped: the tests still fail after 2 attempts');
  await progress.flush();
  const comments = emulator.comments.get('acme/widgets#2') ?? [];
  const progressComment = comments.find((c) => c.body.includes(marker(`${id}/progress`)))?.body ?? '';
  expect(progressComment).toContain('❌ **Stopped at “Run the tests”:** the tests still fail after 2 attempts.');
  // The category and the run's page are behind Details; the end of the output (not a TAP run: no test names) too.
  const [main, details] = progressComment.split('<details><summary>Details</summary>');
  expect(main).not.toMatch(/test_failure|TESTS_FAILED|http:\/\/rmapp\.example/);
  expect(details).toContain('`test_failure` `TESTS_FAILED`');
  expect(details).toContain('expected impl.txt to say right, got still-wrong');
  expect(details).toContain(`[${run.id}](http://rmapp.example/runs/${encodeURIComponent(run.id)})`);
  expect(main).toContain('**What next:**');
  // No requester: the outcome comment still comes, as a new comment.
  expect(comments.filter((c) => c.body.includes(marker(`${id}/outcome`)))).toHaveLength(1);
  expect(progress.heldRuns(), `run ${id} failed but its progress view is still held`).not.toContain(id);
});

it('fails at analyzing with the GitHub error category when the issue does not exist', async () => {
  const id = await engine.start('IssueImplementation', { owner: 'acme', repo: 'widgets', issueNumber: 404 });
  const run = await engine.waitFor(id, { timeoutMs: 60_000 });
  expect(run.status).toBe('failed');
  expect(run.error).toMatchObject({ category: 'permanent', code: 'HTTP_404' });
  expect(run.error?.message).toMatch(/^analyzing: /);
});

it('re-asks once when the agent answers the analysis and the plan with JSON of the wrong shape', async () => {
  const id = await engine.start('IssueImplementation', { owner: 'acme', repo: 'widgets', issueNumber: 3 });
  const run = await engine.waitFor(id, { timeoutMs: 60_000 });
  expect(run.status).toBe('succeeded');
  const messages = (await engine.history(id))
    .filter((h) => h.type === 'progress')
    .map((h) => `${h.step}: ${(h.data as { message: string }).message}`);
  const reasks = messages.filter((m) => m.includes('asking once more'));
  expect(reasks).toHaveLength(2);
  expect(reasks[0]).toMatch(/^analyze: the agent's analysis was invalid \(summary: .*kind: Invalid option/);
  expect(reasks[1]).toMatch(/^plan: the agent's plan was invalid \(goal: Invalid input/);
  expect(parsePlanYaml(await git(remote, 'show', 'rmapp/issue-3:tasks/issue-3.yml')).goal).toBe('write impl.txt');
});

it('fails in planning with category agent when the plan is invalid again after the re-ask', async () => {
  const id = await engine.start('IssueImplementation', { owner: 'acme', repo: 'widgets', issueNumber: 4 });
  const run = await engine.waitFor(id, { timeoutMs: 60_000 });
  expect(run.status).toBe('failed');
  expect(run.error).toMatchObject({ category: 'agent', code: 'AGENT_OUTPUT_INVALID' });
  expect(run.error?.message).toMatch(
    /^planning: The coding agent's plan was invalid, also after a corrective re-ask: goal: .*tasks\.0\.steps: Invalid input: expected array/,
  );
  expect(await engine.getArtifact(id, 'plan')).toBeUndefined();
  expect(await git(remote, 'branch', '--list', 'rmapp/issue-4')).toBe('');
});

it('fails in analyzing with category agent when the analysis is invalid twice', async () => {
  const run = await engine.waitFor(await engine.start('IssueImplementation', { owner: 'acme', repo: 'widgets', issueNumber: 5 }), {
    timeoutMs: 60_000,
  });
  expect(run.status).toBe('failed');
  expect(run.state).toBe('failed');
  expect(run.error).toMatchObject({ category: 'agent', code: 'AGENT_OUTPUT_INVALID' });
  expect(run.error?.message).toMatch(/^analyzing: The coding agent's analysis was invalid.*kind: Invalid option/);
});
