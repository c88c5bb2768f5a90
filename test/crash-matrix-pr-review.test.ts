/**
 * The crash matrix of PRReview (test/helpers/crash-matrix.ts): killed with SIGKILL at every transition
 * and fault point, resumed by a fresh worker process; every run ends with one commit on the PR's
 * branch, one reply in the thread that names it, and no top-level progress comment.
 * IssueImplementation's matrix is test/crash-matrix-issue.test.ts.
 */
import { afterAll, expect, it } from 'vitest';
import { ensurePullRequest, marker } from '../src/rmapp/github/writes.ts';
import { closeMatrixWorlds, runMatrix, type Subject } from './helpers/crash-matrix.ts';

afterAll(() => closeMatrixWorlds());

const repo = { owner: 'acme', repo: 'widgets' };

/** The PR and review comment of each case, by case number (unique across lanes). */
const reviews = new Map<number, { pullNumber: number; commentId: number; branch: string }>();

const prReview: Subject = {
  workflow: 'PRReview',
  async start(world, k) {
    // rmapp's own pull request (opened by its client, from a branch it names): a review pushes only there.
    const branch = `rmapp/issue-${k}`;
    await world.git(world.remote, 'branch', branch, 'main');
    const { number: pullNumber } = await ensurePullRequest(world.github, repo, {
      head: branch,
      base: 'main',
      title: `Feature ${k}`,
      body: '',
      key: `seed-${k}`,
    });
    // The comment's author may steer rmapp (checked again when the comment is read).
    world.emulator.permissions.set('acme/widgets:reviewer', 'write');
    const commentId = world.emulator.addReviewComment(
      'acme',
      'widgets',
      pullNumber,
      '@rmapp rename foo to bar\nWRITE app.txt let bar = 1;\nWRITE impl.txt right',
      'reviewer',
      { path: 'app.txt', line: 1 },
    );
    reviews.set(k, { pullNumber, commentId, branch });
    return world.client.start('PRReview', { ...repo, pullNumber, commentId });
  },
  async check(world, k, id) {
    const review = reviews.get(k);
    if (!review) throw new Error(`no review for case ${k}`);
    const run = await world.client.waitFor(id, { timeoutMs: 60_000 });
    expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
    const commits = (await world.git(world.remote, 'log', '--format=%H', `main..${review.branch}`)).split('\n').filter(Boolean);
    expect(commits).toHaveLength(1);
    expect(await world.git(world.remote, 'show', `${review.branch}:app.txt`)).toBe('let bar = 1;');
    const replies = (world.emulator.reviewComments.get(`acme/widgets#${review.pullNumber}`) ?? []).filter(
      (c) => c.in_reply_to_id === review.commentId,
    );
    expect(replies).toHaveLength(1);
    expect(replies[0]?.body, 'the reply names the commit on the branch').toContain(`pushed ${commits[0]?.slice(0, 12)}`);
    // The reply in the thread is the progress: no top-level checklist comment for a review comment.
    const progress = (world.emulator.comments.get(`acme/widgets#${review.pullNumber}`) ?? []).filter((c) =>
      c.body.includes(marker(`${id}/progress`)),
    );
    expect(progress).toEqual([]);
    expect(world.emulator.violations()).toEqual([]);
  },
};

it('PRReview: killed at every transition and fault point, resumed, effects exactly once', async () => {
  await runMatrix(prReview, 1000);
}, 1_500_000); // 26 cases with real processes: minutes on a loaded machine, a guarantee and not a timing test
