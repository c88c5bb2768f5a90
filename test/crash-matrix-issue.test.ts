/**
 * The crash matrix of IssueImplementation (test/helpers/crash-matrix.ts): killed with SIGKILL at every
 * transition and fault point, resumed by a fresh worker process; every run ends with one PR, one
 * progress comment, one outcome comment and the baseline's commits, none twice. PRReview's matrix is
 * test/crash-matrix-pr-review.test.ts, a file of its own so that vitest runs the two side by side.
 */
import { afterAll, expect, it } from 'vitest';
import { marker } from '../src/rmapp/github/writes.ts';
import { closeMatrixWorlds, runMatrix, type Subject } from './helpers/crash-matrix.ts';
import { until } from './helpers/processes.ts';

afterAll(() => closeMatrixWorlds());

const repo = { owner: 'acme', repo: 'widgets' };

/** Set by the baseline run's check, which runs before any case: the commits of an uninterrupted run. */
let issueBaseline: { commits: number } | null = null;

const issueImplementation: Subject = {
  workflow: 'IssueImplementation',
  async start(world, k) {
    world.emulator.issues.set(`acme/widgets#${k}`, {
      title: `Make impl.txt say right (${k})`,
      body: 'PLAN write impl.txt\nWRITE impl.txt right',
    });
    return world.client.start('IssueImplementation', { ...repo, issueNumber: k });
  },
  async check(world, k, id) {
    const run = await world.client.waitFor(id, { timeoutMs: 60_000 });
    expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
    const progress = () =>
      (world.emulator.comments.get(`acme/widgets#${k}`) ?? []).filter((c) => c.body.includes(marker(`${id}/progress`)));
    await until(() => progress().some((c) => c.body.includes('✅ Done')), 15_000, 'the progress comment to say Done');
    expect(progress()).toHaveLength(1);
    // The progress comment and the one that tells the requester the run ended: each once.
    expect(world.emulator.comments.get(`acme/widgets#${k}`) ?? []).toHaveLength(2);
    const pulls = (world.emulator.pulls.get('acme/widgets') ?? []).filter((p) => p.head === `rmapp/issue-${k}`);
    expect(pulls).toHaveLength(1);
    expect((run.output as { pr?: { number: number } }).pr?.number).toBe(pulls[0]?.number);
    const log = await world.git(world.remote, 'log', '--format=%s', `main..rmapp/issue-${k}`);
    const commits = log ? log.split('\n') : [];
    expect(new Set(commits).size, `duplicate commits: ${commits.join(' | ')}`).toBe(commits.length);
    issueBaseline ??= { commits: commits.length };
    expect(commits).toHaveLength(issueBaseline.commits);
    expect(await world.git(world.remote, 'show', `rmapp/issue-${k}:impl.txt`)).toBe('right');
    expect(world.emulator.violations()).toEqual([]);
  },
};

it('IssueImplementation: killed at every transition and fault point, resumed, effects exactly once', async () => {
  await runMatrix(issueImplementation, 100);
}, 1_500_000); // 26 cases with real processes: minutes on a loaded machine, a guarantee and not a timing test
