/**
 * Issue 5's crash guarantee with real processes: IssueImplementation runs in a worker process that is
 * killed with SIGKILL between pushing the branch and recording the pull request — by an armed fault
 * point, or by the GitHub emulator in the middle of the create-PR request — and a fresh worker
 * resumes. Every time: the run succeeds, exactly one PR for the branch, exactly one progress comment
 * (ending "Done"), and the branch has the commits of an uninterrupted run, none twice.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { marker } from '../src/rmapp/github/writes.ts';
import { stageLabel } from '../src/rmapp/run-texts.ts';
import { createCrashWorld, STAGES, stopWorker, type CrashWorld, type WorkerProcess } from './helpers/github-crash.ts';
import { until } from './helpers/processes.ts';

let world: CrashWorld;
let baseline: { commits: number; impl: string };
const repo = { owner: 'acme', repo: 'widgets' };

beforeAll(async () => {
  world = await createCrashWorld();
});
afterEach(() => world.killWorkers());
afterAll(() => world.close());

function openIssue(n: number): void {
  world.emulator.issues.set(`acme/widgets#${n}`, {
    title: `Make impl.txt say right (${n})`,
    body: 'PLAN write impl.txt\nWRITE impl.txt right',
  });
}

async function branchCommits(n: number): Promise<string[]> {
  const log = await world.git(world.remote, 'log', '--format=%s', `main..rmapp/issue-${n}`);
  return log ? log.split('\n') : [];
}

/** Waits for the run, then for its progress comment to show the end, then stops the worker gracefully. */
async function finish(id: string, worker: WorkerProcess, issue: number) {
  const run = await world.client.waitFor(id, { timeoutMs: 60_000 });
  const progress = () =>
    (world.emulator.comments.get(`acme/widgets#${issue}`) ?? []).filter((c) => c.body.includes(marker(`${id}/progress`)));
  await until(() => progress().some((c) => c.body.includes('✅ Done')), 15_000, `the progress comment of issue ${issue} to say Done`);
  await stopWorker(worker);
  return { run, progress: progress() };
}

/** Exactly one PR, one progress comment, the baseline's commits (none twice), and the resume on record. */
async function expectEffectsOnce(id: string, issue: number, result: Awaited<ReturnType<typeof finish>>) {
  expect(result.run.status, JSON.stringify(result.run.error)).toBe('succeeded');
  expect(result.run.state).toBe('complete');
  const pulls = (world.emulator.pulls.get('acme/widgets') ?? []).filter((p) => p.head === `rmapp/issue-${issue}`);
  expect(pulls).toHaveLength(1);
  expect((result.run.output as { pr?: { number: number } }).pr?.number).toBe(pulls[0]?.number);
  expect(result.progress).toHaveLength(1);
  // Every stage is ticked, also those finished by the worker that died (the view is rebuilt from history).
  for (const stage of STAGES.IssueImplementation) expect(result.progress[0]?.body).toContain(`- [x] ${stageLabel(stage)}`);
  const commits = await branchCommits(issue);
  expect(new Set(commits).size).toBe(commits.length);
  expect(commits).toHaveLength(baseline.commits);
  expect(await world.git(world.remote, 'show', `rmapp/issue-${issue}:impl.txt`)).toBe(baseline.impl);
  expect(world.emulator.violations()).toEqual([]);
  const history = await world.client.history(id);
  expect(history.filter((h) => h.type === 'run.resumed')).toHaveLength(1);
}

it('baseline: an uninterrupted run in a worker process', async () => {
  openIssue(1);
  const id = await world.client.start('IssueImplementation', { ...repo, issueNumber: 1 });
  const worker = world.worker();
  const { run, progress } = await finish(id, worker, 1);
  expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
  expect(progress).toHaveLength(1);
  const commits = await branchCommits(1);
  expect(commits.length).toBeGreaterThan(0);
  baseline = { commits: commits.length, impl: await world.git(world.remote, 'show', 'rmapp/issue-1:impl.txt') };
});

it.each([
  { name: 'after the implement step pushed, before its result is recorded', issue: 2, fault: 'after-side-effect:implement' },
  { name: 'entering createPR: the branch is pushed, no PR yet', issue: 3, fault: 'before-side-effect:createPR' },
  { name: 'in createPR after the PR was opened, before the step’s result is recorded', issue: 4, fault: 'after-side-effect:createPR' },
])('SIGKILL $name: resumed, one PR, one comment, no duplicate commit', async ({ issue, fault }) => {
  openIssue(issue);
  const id = await world.client.start('IssueImplementation', { ...repo, issueNumber: issue });
  const first = world.worker({ fault });
  const exit = await first.exited;
  expect(exit.signal, first.output()).toBe('SIGKILL');
  expect(first.output()).toContain(`rmapp: fault point ${fault}`);
  expect((await world.client.get(id)).status).toBe('running');
  if (fault.endsWith('createPR')) expect(await branchCommits(issue)).toHaveLength(baseline.commits); // pushed before the kill
  if (fault === 'after-side-effect:createPR')
    expect((world.emulator.pulls.get('acme/widgets') ?? []).filter((p) => p.head === `rmapp/issue-${issue}`)).toHaveLength(1);

  const second = world.worker();
  await expectEffectsOnce(id, issue, await finish(id, second, issue));
});

it.each([
  { name: 'while GitHub receives the draft PR request (no PR yet)', issue: 5, when: 'before' as const },
  { name: 'after GitHub opened the PR, before the worker hears back', issue: 6, when: 'after' as const },
])('SIGKILL $name: resumed, one PR, one comment, no duplicate commit', async ({ issue, when }) => {
  openIssue(issue);
  const id = await world.client.start('IssueImplementation', { ...repo, issueNumber: issue });
  const first = world.worker();
  world.emulator.hook({
    method: 'POST',
    route: '/repos/{owner}/{repo}/pulls',
    when,
    run: () => {
      first.child.kill('SIGKILL');
      return true; // the request is never answered: its caller is gone
    },
  });
  expect((await first.exited).signal).toBe('SIGKILL');
  const opened = (world.emulator.pulls.get('acme/widgets') ?? []).filter((p) => p.head === `rmapp/issue-${issue}`);
  expect(opened).toHaveLength(when === 'after' ? 1 : 0);
  // The pull request is opened as a draft once the plan is committed: only the plan was pushed before the request.
  expect(await branchCommits(issue)).toHaveLength(1);

  const second = world.worker();
  await expectEffectsOnce(id, issue, await finish(id, second, issue));
  // The resumed createPR found the PR (after) or opened it (before): one POST that GitHub served.
  const served = world.emulator
    .writes(/\/pulls$/)
    .filter((r) => r.method === 'POST' && (r.body as { head?: string }).head === `rmapp/issue-${issue}`);
  expect(served).toHaveLength(when === 'after' ? 1 : 2);
});
