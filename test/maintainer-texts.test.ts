/**
 * What a maintainer reads on GitHub, end to end: the real engine, the GitHub emulator through real
 * Octokit, a real git remote whose tests run with `node --test` in the sandbox, and the scripted agent.
 * Asserts the texts themselves — the progress checklist, the comment that mentions the requester when
 * the run ends, the failure report (failing tests by name, no paths, no runtime frames, what next), the
 * draft pull request that is ready with a review request at the end, its title and body, and the
 * commit messages on the remote.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/index.ts';
import { issueImplementationSteps } from '../src/actors/issue-implementation.ts';
import { ISSUE_TEMPLATES, issueWorkflow } from '../src/machines/issue-implementation.ts';
import { attachProgressComments, type ProgressComments } from '../src/rmapp/progress-comment.ts';
import { marker } from '../src/rmapp/github/writes.ts';
import { stagesOf } from '../src/rmapp/workflows/github-workflows.ts';
import { createGitHubWorld, type GitHubWorld } from './helpers/github-world.ts';
import { testSandbox } from './helpers/sandbox.ts';

let world: GitHubWorld;
let engine: Engine;
let progress: ProgressComments;

/** The repository's own tests: the second passes once `impl.txt` says `right`. */
const TESTS = `const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
test('joins with a comma', () => assert.strictEqual(['a', 'b'].join(','), 'a,b'));
test('supports a custom separator', () => assert.strictEqual(fs.readFileSync('impl.txt', 'utf8').trim(), 'right'));
`;

/** Words of the engine that must never reach the main text of a comment. */
const ENGINE_WORDS =
  /IssueImplementation|ComplexFeature|creatingPR|openingDraftPR|parsingComment|awaitingApproval|\bcomplete\b|test_failure|TESTS_FAILED/;

beforeAll(async () => {
  world = await createGitHubWorld({ 'test/join.test.js': TESTS });
  world.emulator.issues.set('acme/widgets#1', {
    title: 'Add a custom separator',
    body: 'PLAN support a custom separator\nWRITE impl.txt wrong\nIF_FAILED WRITE impl.txt right\nSAY Added the separator option; impl.txt now says right.',
  });
  world.emulator.issues.set('acme/widgets#2', {
    title: 'Never passes',
    body: 'PLAN try hard\nWRITE impl.txt wrong\nIF_FAILED WRITE impl.txt still wrong',
  });
  world.emulator.issues.set('acme/widgets#3', { title: 'A big feature', body: 'PLAN design it\nWRITE impl.txt right' });
  const deps = { ...world.deps, tests: { command: ['node', '--test'], timeoutMs: 30_000, sandbox: testSandbox } };
  const steps = issueImplementationSteps(deps);
  const workflows = [issueWorkflow(steps, ISSUE_TEMPLATES.IssueImplementation), issueWorkflow(steps, ISSUE_TEMPLATES.ComplexFeature)];
  engine = createEngine({ database: { url: '', dataDir: 'memory://' }, workflows, pollMs: 50 });
  progress = attachProgressComments(engine, world.github, {
    stages: stagesOf(workflows),
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

const commentsOf = (issue: number) => world.emulator.comments.get(`acme/widgets#${issue}`) ?? [];
const commentWith = (issue: number, key: string) => commentsOf(issue).find((c) => c.body.includes(marker(key)))?.body ?? '';
const pullOf = (issue: number) => (world.emulator.pulls.get('acme/widgets') ?? []).find((p) => p.head === `rmapp/issue-${issue}`);

it('a run that passes in round 2: draft PR before the tests, ready with a review request, texts a maintainer can read', async () => {
  const id = await engine.start('IssueImplementation', { owner: 'acme', repo: 'widgets', issueNumber: 1, requestedBy: 'alice' });
  expect(await engine.waitFor(id, { timeoutMs: 90_000 })).toMatchObject({ status: 'succeeded' });
  await progress.flush();

  // The draft was opened (as a draft) before the first test ran, and marked ready through GraphQL at the end.
  const history = await engine.history(id);
  const opened = history.findIndex((h) => h.type === 'step.succeeded' && h.step === 'openDraftPR');
  const firstTest = history.findIndex((h) => h.type === 'step.started' && h.step === 'test');
  expect(opened, 'the draft PR must exist before the tests run').toBeGreaterThan(-1);
  expect(opened).toBeLessThan(firstTest);
  const created = world.emulator.writes(/\/pulls$/).filter((r) => r.method === 'POST');
  expect(created.map((r) => (r.body as { draft?: boolean }).draft)).toEqual([true]);
  expect(world.emulator.requests.filter((r) => r.route === 'graphql')).toHaveLength(1);
  const pr = pullOf(1);
  expect(pr).toMatchObject({ draft: false, requestedReviewers: ['alice'], title: 'feat: Add a custom separator (#1)' });
  // While the run worked, the draft's description followed the stages (edited in place).
  const edits = world.emulator.writes(new RegExp(`/pulls/${pr?.number}$`)).map((r) => (r.body as { body?: string }).body ?? '');
  expect(edits.some((b) => b.includes('## Progress') && b.includes('- [x] Implement the change'))).toBe(true);
  const body = pr?.body ?? '';
  expect(body).toContain('Closes #1. Requested by @alice.');
  expect(body).toContain('## Summary\n\nAdded the separator option; impl.txt now says right.');
  expect(body).toContain('✅ The tests pass.');
  expect(body).toContain('- [x] support a custom separator');
  expect(body).not.toMatch(/```yaml|done: false/);

  // The progress comment: plain stages, both test rounds, nothing in progress, elapsed time.
  const comment = commentWith(1, `${id}/progress`);
  const [main] = comment.split('<details>');
  expect(main).not.toMatch(ENGINE_WORDS);
  expect(main).not.toContain('in progress');
  expect(main).toMatch(/^\*\*rmapp\*\* is implementing this issue for @\u200balice · took \d+(s|m \d\ds)$/m);
  expect(main).toContain('- [x] Open a draft pull request: #');
  expect(main).toContain('- [x] Run the tests — round 2 of 3, all passed');
  expect(main).toContain('  - round 1: 1 failing: *supports a custom separator*');
  expect(main).not.toMatch(/^> /m); // no status line once done
  // The requester is told in a new comment (edits notify no one).
  expect(commentWith(1, `${id}/outcome`)).toMatch(
    new RegExp(`^@alice done: https://github\\.example/acme/widgets/pull/${pr?.number} is ready for your review\\. The tests pass\\.`),
  );

  // Commits: a subject by kind, a body with the agent's summary and the attempt, and the requester as co-author.
  const log = await world.git(world.remote, 'log', '--reverse', '--format=%B%x00', 'main..rmapp/issue-1');
  const messages = log
    .split('\0')
    .map((m) => m.trim())
    .filter(Boolean);
  expect(messages[0]).toBe('rmapp: plan for #1 (tasks/issue-1.yml)');
  expect(messages[1]).toBe(
    `feat: Add a custom separator (#1)\n\nAdded the separator option; impl.txt now says right.\n\nAttempt 1 of 3, following the plan in tasks/issue-1.yml.\n\nCo-authored-by: alice <alice@users.noreply.github.com>\nRmapp-Run: ${id}\nRmapp-Attempt: implement 1`,
  );
  expect(messages[2]).toContain('Attempt 2 of 3: fixes what the previous test run reported.');
});

it('a run whose tests never pass: failing tests by name, what each attempt did, no paths or frames, what next', async () => {
  const id = await engine.start('IssueImplementation', {
    owner: 'acme',
    repo: 'widgets',
    issueNumber: 2,
    requestedBy: 'bob',
    maxTestAttempts: 2,
  });
  expect(await engine.waitFor(id, { timeoutMs: 90_000 })).toMatchObject({ status: 'failed', error: { code: 'TESTS_FAILED' } });
  await progress.flush();
  const rawOutput = (await engine.getArtifact<string>(id, 'test-output')) ?? '';
  expect(rawOutput, 'the raw output is kept for the dashboard').toContain('not ok 2 - supports a custom separator');

  const comment = commentWith(2, `${id}/progress`);
  const [main] = comment.split('<details>');
  expect(main).not.toMatch(ENGINE_WORDS);
  expect(main).toContain('❌ **Stopped at “Run the tests”:** the tests still fail after 2 attempts.');
  expect(main).toContain(
    "Failing tests:\n- *supports a custom separator* — `Expected values to be strictly equal: 'still wrong' !== 'right'`",
  );
  expect(main).not.toContain('joins with a comma'); // passing tests are not listed
  expect(main).toMatch(/- Attempt 1: changed `impl\.txt`; tests: 1 failing: \*supports a custom separator\*/);
  expect(main).toMatch(/- Attempt 2: changed `impl\.txt`; tests: 1 failing/);
  expect(main).toContain('**What next:**');
  expect(main).toContain('`@rmapp retry`');
  // Nowhere in the comment: the server's workspace path, the run id outside Details, runtime frames.
  expect(comment).not.toMatch(/rmapp-world-|\/workspace\/|node:internal|async_hooks|file:\/\//);
  expect(main).not.toContain(id);

  // The draft stays a draft and says why; the requester is mentioned in a new comment.
  expect(pullOf(2)).toMatchObject({ draft: true, requestedReviewers: [] });
  expect(pullOf(2)?.body).toContain('rmapp stopped: the tests still fail after 2 attempts (1 failing: *supports a custom separator*).');
  const outcome = commentWith(2, `${id}/outcome`);
  expect(outcome).toMatch(/^@bob I stopped: the tests still fail after 2 attempts \(1 failing: \*supports a custom separator\*\)\./);
  expect(outcome).toContain('**What next:**');
});

it('a feature waiting for approval: the requester is mentioned, and the status line is not stale', async () => {
  const id = await engine.start('ComplexFeature', { owner: 'acme', repo: 'widgets', issueNumber: 3, requestedBy: 'carol' });
  await expect.poll(async () => (await engine.get(id)).state, { timeout: 60_000 }).toBe('awaitingApproval');
  await expect
    .poll(
      async () => {
        await progress.flush();
        return commentWith(3, `${id}/progress`);
      },
      { timeout: 10_000 },
    )
    .toContain('⏸ Waiting for a maintainer');
  const comment = commentWith(3, `${id}/progress`);
  expect(comment).toContain('- [x] Plan the change');
  expect(comment).toContain('- [ ] Wait for approval of the plan ← in progress');
  expect(comment).not.toMatch(/^> /m);
  const plan = commentsOf(3).find((c) => c.body.startsWith('@carol the plan for #3 is ready and waits for approval.'));
  expect(plan, 'the plan comment mentions the requester').toBeDefined();
  await engine.cancel(id, 'test over');
});
