/** The issue templates end to end: complex feature (plan approval), bug fix (reproduce first), docs update (no tests). */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/index.ts';
import { issueImplementationSteps } from '../src/actors/issue-implementation.ts';
import { ISSUE_TEMPLATES, issueWorkflow } from '../src/machines/issue-implementation.ts';
import { marker } from '../src/rmapp/github/writes.ts';
import { createGitHubWorld, type GitHubWorld } from './helpers/github-world.ts';
import { until } from './helpers/processes.ts';

let world: GitHubWorld;
let engine: Engine;
const states = async (id: string) => (await engine.history(id)).filter((h) => h.type === 'state.entered').map((h) => h.state);

beforeAll(async () => {
  world = await createGitHubWorld();
  const steps = issueImplementationSteps(world.deps);
  engine = createEngine({
    database: { url: '', dataDir: 'memory://' },
    workflows: [
      issueWorkflow(steps, ISSUE_TEMPLATES.ComplexFeature),
      issueWorkflow(steps, ISSUE_TEMPLATES.BugFix),
      issueWorkflow(steps, ISSUE_TEMPLATES.DocsUpdate),
    ],
    pollMs: 50,
  });
  await engine.startWorker();
});
afterAll(async () => {
  await engine.stop();
  await world.stop();
});

it('complex feature: posts the plan, waits for approve, then implements', async () => {
  world.emulator.issues.set('acme/widgets#10', { title: 'Big feature', body: 'PLAN step one, step two\nWRITE impl.txt right' });
  const id = await engine.start('ComplexFeature', { owner: 'acme', repo: 'widgets', issueNumber: 10 });
  // The state and the status are not written together: wait for both (the run is evicted while it waits).
  await until(
    async () => ((r) => r.state === 'awaitingApproval' && r.status === 'waiting')(await engine.get(id)),
    30_000,
    'the approval wait',
  );
  const planComment = (world.emulator.comments.get('acme/widgets#10') ?? []).find((c) => c.body.includes('the plan for #10 is ready'));
  expect(planComment?.body).toContain('```yaml\ngoal: step one, step two\n');
  expect(planComment?.body).toContain('`@rmapp approve`');
  expect((await engine.get(id)).status).toBe('waiting');
  await engine.send(id, { type: 'approve' }, { dedupeKey: 'comment-123' });
  const run = await engine.waitFor(id, { timeoutMs: 60_000 });
  expect(run.status).toBe('succeeded');
  expect(await states(id)).toEqual([
    'analyzing',
    'planning',
    'postingPlan',
    'awaitingApproval',
    'openingDraftPR',
    'implementing',
    'testing',
    'creatingPR',
    'complete',
  ]);
  expect((world.emulator.pulls.get('acme/widgets') ?? []).filter((p) => p.head === 'rmapp/issue-10')).toHaveLength(1);
  expect(
    (world.emulator.comments.get('acme/widgets#10') ?? []).filter((c) =>
      c.body.includes(marker(`${id}/0.issueImplementation.postingPlan`)),
    ),
  ).toHaveLength(1);
});

it('complex feature: a rejected plan fails the run, and an unanswered one times out', async () => {
  world.emulator.issues.set('acme/widgets#11', { title: 'Risky', body: 'PLAN risky' });
  const rejected = await engine.start('ComplexFeature', { owner: 'acme', repo: 'widgets', issueNumber: 11 });
  await until(async () => (await engine.get(rejected)).state === 'awaitingApproval', 30_000, 'the approval wait');
  await engine.send(rejected, { type: 'reject' });
  expect((await engine.waitFor(rejected, { timeoutMs: 30_000 })).error).toMatchObject({ code: 'PLAN_REJECTED' });
  const ignored = await engine.start(
    'ComplexFeature',
    { owner: 'acme', repo: 'widgets', issueNumber: 11, approvalTimeoutMs: 300 },
    { runId: 'ignored-plan' },
  );
  const run = await engine.waitFor(ignored, { timeoutMs: 30_000 });
  expect(run.status).toBe('failed');
  expect(run.error).toMatchObject({ code: 'APPROVAL_TIMEOUT', category: 'timeout' });
});

it('bug fix: a failing test reproduces the bug first, then the fix makes the tests pass', async () => {
  world.emulator.issues.set('acme/widgets#12', {
    title: 'impl.txt is wrong',
    body: 'PLAN reproduce then fix\nREPRO WRITE impl.txt wrong\nFIX WRITE impl.txt right',
  });
  const id = await engine.start('BugFix', { owner: 'acme', repo: 'widgets', issueNumber: 12 });
  const run = await engine.waitFor(id, { timeoutMs: 60_000 });
  expect(run.status).toBe('succeeded');
  expect(await states(id)).toEqual([
    'analyzing',
    'planning',
    'openingDraftPR',
    'reproducing',
    'verifyingReproduction',
    'implementing',
    'testing',
    'creatingPR',
    'complete',
  ]);
  // The plan, the reproducing test, the fix.
  expect(await world.git(world.remote, 'rev-list', '--count', 'main..rmapp/issue-12')).toBe('3');
});

it('bug fix: a "reproduction" that passes fails the run as not reproduced', async () => {
  world.emulator.issues.set('acme/widgets#13', { title: 'Not a bug', body: 'PLAN x\nREPRO WRITE impl.txt right' });
  const run = await engine.waitFor(await engine.start('BugFix', { owner: 'acme', repo: 'widgets', issueNumber: 13 }), {
    timeoutMs: 60_000,
  });
  expect(run.status).toBe('failed');
  expect(run.error).toMatchObject({ code: 'NOT_REPRODUCED', category: 'test_failure' });
});

it('docs update: no test step', async () => {
  world.emulator.issues.set('acme/widgets#14', { title: 'Document widgets', body: 'PLAN docs\nWRITE README.md docs' });
  const id = await engine.start('DocsUpdate', { owner: 'acme', repo: 'widgets', issueNumber: 14 });
  const run = await engine.waitFor(id, { timeoutMs: 60_000 });
  expect(run.status).toBe('succeeded');
  expect(await states(id)).toEqual(['analyzing', 'planning', 'openingDraftPR', 'implementing', 'creatingPR', 'complete']);
  expect(await world.git(world.remote, 'show', 'rmapp/issue-14:README.md')).toBe('docs');
});
