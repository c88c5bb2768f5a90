/** PRReview end to end: a review comment becomes a commit on the PR's branch and one reply. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/index.ts';
import { prReviewSteps, reviewResponseSteps } from '../src/actors/pr-review.ts';
import { prReviewWorkflow } from '../src/machines/pr-review.ts';
import { reviewResponseWorkflow } from '../src/machines/review-response.ts';
import { ensurePullRequest } from '../src/rmapp/github/writes.ts';
import { runCommand } from '../src/rmapp/process.ts';
import { GitHubEmulator } from './helpers/github-emulator.ts';
import { createBareRemote } from './helpers/git-remote.ts';
import { reviewDeps } from './helpers/github-world.ts';
import { testSandbox } from './helpers/sandbox.ts';

let emulator: GitHubEmulator;
let engine: Engine;
let remote: string;
let pullNumber: number;
const git = async (cwd: string, ...args: string[]) => (await runCommand(['git', ...args], { cwd })).stdout.trim();

beforeAll(async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'rmapp-review-'));
  remote = await createBareRemote(tmp, 'widgets', { 'app.txt': 'let foo = 1;\n' }, ['rmapp/issue-1']);

  emulator = new GitHubEmulator('t0ken');
  const baseUrl = await emulator.start();
  // The comments' authors may steer rmapp (checked again when a comment is read).
  for (const login of ['reviewer', 'maintainer']) emulator.permissions.set(`acme/widgets:${login}`, 'write');
  // The repository's tests (run on the change before the push): they fail when app.txt says `broken`.
  const deps = {
    ...reviewDeps(baseUrl, tmp, remote),
    tests: {
      command: [
        'node',
        '-e',
        "const t = require('fs').readFileSync('app.txt', 'utf8'); if (t.includes('broken')) { console.log('not ok 1 - app.txt is valid'); console.log('  ---'); console.log(\"  error: 'app.txt is broken'\"); console.log('  ...'); process.exit(1); }",
      ],
      timeoutMs: 20_000,
      sandbox: testSandbox,
    },
  };
  // rmapp's own pull request (opened by its client, from a branch it names): a review pushes only there.
  pullNumber = (
    await ensurePullRequest(
      deps.github,
      { owner: 'acme', repo: 'widgets' },
      { head: 'rmapp/issue-1', base: 'main', title: 'Feature', body: '', key: 'seed' },
    )
  ).number;
  engine = createEngine({
    database: { url: '', dataDir: 'memory://' },
    workflows: [prReviewWorkflow(prReviewSteps(deps)), reviewResponseWorkflow(reviewResponseSteps(deps))],
    pollMs: 50,
  });
  await engine.startWorker();
});

afterAll(async () => {
  await engine.stop();
  await emulator.stop();
});

it('turns a review comment into a commit on the PR branch and one reply', async () => {
  const commentId = emulator.addReviewComment(
    'acme',
    'widgets',
    pullNumber,
    '@rmapp rename foo to bar\nWRITE app.txt let bar = 1;\nSAY Renamed foo to bar.',
    'reviewer',
    { path: 'app.txt', line: 1 },
  );
  const id = await engine.start('PRReview', { owner: 'acme', repo: 'widgets', pullNumber, commentId });
  const run = await engine.waitFor(id, { timeoutMs: 60_000 });
  expect(run.status).toBe('succeeded');
  expect(run.state).toBe('complete');
  const commit = (run.output as { commit: string }).commit;
  expect(await git(remote, 'rev-parse', 'refs/heads/rmapp/issue-1')).toBe(commit);
  expect(await git(remote, 'show', 'rmapp/issue-1:app.txt')).toBe('let bar = 1;');
  const replies = (emulator.reviewComments.get(`acme/widgets#${pullNumber}`) ?? []).filter((c) => c.in_reply_to_id === commentId);
  expect(replies).toHaveLength(1);
  // The reply says what changed, after the tests ran; no top-level comment is added for a review comment.
  expect(replies[0]?.body).toMatch(
    new RegExp(
      `^@reviewer pushed ${commit.slice(0, 12)}\\. The tests pass with it\\.\n\nRenamed foo to bar\\.\n\nChanged: \`app\\.txt\`\\.`,
    ),
  );
  const entered = (await engine.history(id)).filter((h) => h.type === 'state.entered').map((h) => h.state);
  expect(entered).toEqual([
    'parsingComment',
    'locatingCode',
    'generatingFix',
    'testingChange',
    'applyingChanges',
    'responding',
    'complete',
  ]);
  // A descriptive commit with the reviewer as co-author.
  expect(await git(remote, 'log', '-1', '--format=%B', 'rmapp/issue-1')).toMatch(
    /^review: rename foo to bar\n\nRequested by @reviewer on app\.txt line 1:\n\n> rename foo to bar\n> WRITE app\.txt let bar = 1;\n> SAY Renamed foo to bar\.\n\nCo-authored-by: reviewer <reviewer@users\.noreply\.github\.com>\nRmapp-Run: \S+\n?$/,
  );
});

it('a change whose tests fail is not pushed, and the reply names the failing test', async () => {
  const before = await git(remote, 'rev-parse', 'refs/heads/rmapp/issue-1');
  const commentId = emulator.addReviewComment('acme', 'widgets', pullNumber, '@rmapp break it\nWRITE app.txt broken', 'reviewer', {
    path: 'app.txt',
    line: 1,
  });
  const run = await engine.waitFor(await engine.start('PRReview', { owner: 'acme', repo: 'widgets', pullNumber, commentId }), {
    timeoutMs: 60_000,
  });
  expect(run).toMatchObject({ status: 'failed', error: { category: 'test_failure' } });
  expect(await git(remote, 'rev-parse', 'refs/heads/rmapp/issue-1'), 'nothing may be pushed when the tests fail').toBe(before);
  const reply = (emulator.reviewComments.get(`acme/widgets#${pullNumber}`) ?? []).find((c) => c.in_reply_to_id === commentId);
  expect(reply?.body).toMatch(
    /^@reviewer I could not do this: the tests fail with this change \(1 failing: \*app\.txt is valid\*\), so I pushed nothing\./,
  );
  expect(reply?.body).not.toMatch(/test_failure|testingChange|at "failed"/);
});

it('a comment in the pull request conversation continues on its branch and is answered there', async () => {
  const commentId = emulator.addIssueComment(
    'acme',
    'widgets',
    pullNumber,
    '@rmapp add a changelog\nWRITE CHANGES.md added\nSAY Added CHANGES.md.',
    'maintainer',
  );
  const run = await engine.waitFor(
    await engine.start('PRReview', { owner: 'acme', repo: 'widgets', pullNumber, commentId, source: 'conversation' }),
    { timeoutMs: 60_000 },
  );
  expect(run.status).toBe('succeeded');
  expect(await git(remote, 'show', 'rmapp/issue-1:CHANGES.md')).toBe('added');
  const commit = (run.output as { commit: string }).commit;
  const answer = (emulator.comments.get(`acme/widgets#${pullNumber}`) ?? []).filter((c) => c.body.startsWith('@maintainer'));
  expect(answer).toHaveLength(1);
  expect(answer[0]?.body).toContain(
    `@maintainer pushed ${commit.slice(0, 12)}. The tests pass with it.\n\nAdded CHANGES.md.\n\nChanged: \`CHANGES.md\`.`,
  );
});

it('fails at parsingComment with a validation error when the comment asks for nothing', async () => {
  const commentId = emulator.addReviewComment('acme', 'widgets', pullNumber, '@rmapp', 'reviewer');
  const run = await engine.waitFor(await engine.start('PRReview', { owner: 'acme', repo: 'widgets', pullNumber, commentId }), {
    timeoutMs: 60_000,
  });
  expect(run.status).toBe('failed');
  expect(run.error).toMatchObject({ category: 'validation' });
  expect(run.error?.message).toMatch(/^parsingComment: .*asks for nothing/);
});

/** A comment of review `review` on app.txt line 1. */
const reviewComment = (review: number, body: string) =>
  emulator.addReviewComment('acme', 'widgets', pullNumber, body, 'reviewer', { path: 'app.txt', line: 1, pull_request_review_id: review });

it('review response: one child workflow per comment of the review, then one summary reply', async () => {
  const review = 777;
  const a = reviewComment(review, '@rmapp add a file\nWRITE a.txt alpha');
  const b = reviewComment(review, '@rmapp add another\nWRITE b.txt beta');
  emulator.addReviewComment('acme', 'widgets', pullNumber, 'looks good otherwise', 'reviewer', { pull_request_review_id: review });
  const id = await engine.start('ReviewResponse', { owner: 'acme', repo: 'widgets', pullNumber, reviewId: review });
  const run = await engine.waitFor(id, { timeoutMs: 60_000 });
  expect(run.status).toBe('succeeded');
  const results = (run.output as { results: { commentId: number; commit: string | null }[] }).results;
  expect(results.map((r) => r.commentId)).toEqual([a, b]);
  expect(
    results.filter((r) => !r.commit),
    'comments answered without a commit',
  ).toEqual([]);
  expect(await git(remote, 'show', 'rmapp/issue-1:a.txt')).toBe('alpha');
  expect(await git(remote, 'show', 'rmapp/issue-1:b.txt')).toBe('beta');
  const replies = (emulator.reviewComments.get(`acme/widgets#${pullNumber}`) ?? []).filter(
    (c) => c.in_reply_to_id === a || c.in_reply_to_id === b,
  );
  expect(replies).toHaveLength(2);
  const summary = (emulator.comments.get(`acme/widgets#${pullNumber}`) ?? []).filter((c) =>
    c.body.startsWith('Addressed 2 of 2 review comments'),
  );
  expect(summary).toHaveLength(1);
  // Each child's transitions were persisted under its own path.
  const childStates = (await engine.history(id)).filter((h) => h.type === 'state.entered' && h.path === 'comment').map((h) => h.state);
  expect(childStates.filter((s) => s === 'complete')).toHaveLength(2);
});

it('review response: each comment’s change passes the tests before it is pushed; a failing one is left out of the next', async () => {
  const review = 778;
  const broken = reviewComment(review, '@rmapp break it\nWRITE app.txt broken');
  const fine = reviewComment(review, '@rmapp add a file\nWRITE d.txt delta');
  const run = await engine.waitFor(await engine.start('ReviewResponse', { owner: 'acme', repo: 'widgets', pullNumber, reviewId: review }), {
    timeoutMs: 60_000,
  });
  expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
  const results = (run.output as { results: { commentId: number; commit: string | null; error: { category: string } | null }[] }).results;
  expect(results.map((r) => [r.commentId, r.commit ? 'pushed' : r.error?.category])).toEqual([
    [broken, 'test_failure'],
    [fine, 'pushed'],
  ]);
  expect(await git(remote, 'show', 'rmapp/issue-1:app.txt'), 'a change whose tests fail was pushed').not.toContain('broken');
  expect(await git(remote, 'show', 'rmapp/issue-1:d.txt')).toBe('delta');
});
