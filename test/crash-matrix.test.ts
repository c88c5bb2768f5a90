/**
 * Issue 8's crash matrix: for IssueImplementation and PRReview, for every transition of the run and
 * every named fault point (src/state_machine/fault-points.ts), a worker process is killed there with
 * SIGKILL and a fresh worker process resumes. Every run must complete with its external effects
 * exactly once: one PR, one progress comment, one review reply, the commits of an uninterrupted run.
 *
 * The transitions are not listed by hand: an uninterrupted baseline run of each workflow records the
 * states it enters and the steps it runs, and the matrix is built from that history, so a changed
 * machine is covered without editing this file. Cases run one after another against one emulator
 * and one Postgres database (2 cores in CI); the matrix size and time are printed.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { ensurePullRequest, marker } from '../src/rmapp/github/writes.ts';
import { FAULT_POINTS, type FaultPointName } from '../src/state_machine/fault-points.ts';
import { createCrashWorld, stopWorker, type CrashWorld, type WorkerProcess } from './helpers/github-crash.ts';
import { until } from './helpers/processes.ts';

let world: CrashWorld;
const repo = { owner: 'acme', repo: 'widgets' };

beforeAll(async () => {
  world = await createCrashWorld();
});
afterEach(() => world.killWorkers());
afterAll(() => world.close());

/** One workflow under test: how to start a fresh run of it and how to check its effects. */
interface Subject {
  workflow: string;
  /** Makes the GitHub/git world for case `k` and starts the run; returns its id. */
  start(k: number): Promise<string>;
  /** Throws (expect) unless the effects of the run of case `k` happened exactly once. */
  check(k: number, id: string): Promise<void>;
}

interface Case {
  point: FaultPointName;
  target: string;
}

/** The matrix from a baseline run's history: each state entered × persist points, each step run × side-effect points. */
async function matrixOf(id: string): Promise<{ states: string[]; steps: string[]; cases: Case[] }> {
  const history = await world.client.history(id);
  const states = [
    ...new Set(history.filter((h) => h.type === 'state.entered' && !h.path && typeof h.state === 'string').map((h) => h.state as string)),
  ];
  const steps = [...new Set(history.filter((h) => h.type === 'step.started' && h.step).map((h) => h.step as string))];
  const cases: Case[] = [];
  for (const point of FAULT_POINTS) {
    for (const target of point.endsWith('persist') ? states : steps) cases.push({ point, target });
  }
  return { states, steps, cases };
}

/** Runs one case: kill at the point, resume with a fresh worker, check. Returns what went wrong, or null. */
async function runCase(subject: Subject, k: number, c: Case): Promise<string | null> {
  const fault = `${c.point}:${c.target}`;
  const id = await subject.start(k);
  const first = world.worker({ fault });
  const outcome = await Promise.race([
    first.exited.then(() => 'exited' as const),
    world.client.waitFor(id, { timeoutMs: 60_000 }).then(() => 'finished' as const),
  ]);
  if (outcome === 'finished') {
    // After the commit that finishes the run (after-persist at the final state), the run is seen
    // finished and the worker kills itself at nearly the same moment: give its exit time to arrive.
    const died = await Promise.race([first.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5_000))]);
    if (!died) {
      await stopWorker(first);
      return `${fault}: the fault point was never reached (the run finished)`;
    }
  }
  const exit = await first.exited;
  if (exit.signal !== 'SIGKILL' || !first.output().includes(`rmapp: fault point ${fault}`))
    return `${fault}: the worker exited with ${JSON.stringify(exit)}:\n${first.output()}`;
  const killed = await world.client.get(id);
  let second: WorkerProcess | null = null;
  try {
    // A fresh worker: it resumes the run, or — when the run's end was already durable — catches up on
    // its progress comment at start-up. Either way the comment ends "Done".
    second = world.worker();
    await subject.check(k, id);
    return null;
  } catch (err) {
    return `${fault} (killed in ${JSON.stringify(killed.state)}, ${killed.status}): ${(err as Error).message}${second ? `\n--- resumed worker ---\n${second.output()}` : ''}`;
  } finally {
    if (second) await stopWorker(second);
  }
}

async function runMatrix(subject: Subject, firstCase: number): Promise<void> {
  const startedAt = Date.now();
  const baselineId = await subject.start(firstCase);
  const baselineWorker = world.worker();
  await subject.check(firstCase, baselineId);
  await stopWorker(baselineWorker);
  const { states, steps, cases } = await matrixOf(baselineId);
  expect(states.length).toBeGreaterThan(3);
  const failures: string[] = [];
  let k = firstCase;
  for (const c of cases) {
    const problem = await runCase(subject, ++k, c);
    if (problem) failures.push(problem);
  }
  const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);
  console.log(
    `crash matrix ${subject.workflow}: ${states.length} transitions (${states.join(' → ')}) × 2 persist points + ` +
      `${steps.length} steps (${steps.join(', ')}) × 2 side-effect points = ${cases.length} cases, ` +
      `${cases.length - failures.length} green, ${seconds} s`,
  );
  expect(failures).toEqual([]);
}

// ---- IssueImplementation: one PR, one progress comment, the baseline's commits ----------------------

let issueBaseline: { commits: number } | null = null;

const issueImplementation: Subject = {
  workflow: 'IssueImplementation',
  async start(k) {
    world.emulator.issues.set(`acme/widgets#${k}`, {
      title: `Make impl.txt say right (${k})`,
      body: 'PLAN write impl.txt\nWRITE impl.txt right',
    });
    return world.client.start('IssueImplementation', { ...repo, issueNumber: k });
  },
  async check(k, id) {
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

// ---- PRReview: one commit on the PR's branch, one reply that names it, one progress comment ----------

const reviews = new Map<number, { pullNumber: number; commentId: number; branch: string }>();
const PR_BASELINE = 1000;

const prReview: Subject = {
  workflow: 'PRReview',
  async start(k) {
    const branch = `review-${k}`;
    await world.git(world.remote, 'branch', branch, 'main');
    const { number: pullNumber } = await ensurePullRequest(world.github, repo, {
      head: branch,
      base: 'main',
      title: `Feature ${k}`,
      body: '',
      key: `seed-${k}`,
    });
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
  async check(k, id) {
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

it('IssueImplementation: killed at every transition and fault point, resumed, effects exactly once', async () => {
  await runMatrix(issueImplementation, 100);
}, 600_000);

it('PRReview: killed at every transition and fault point, resumed, effects exactly once', async () => {
  await runMatrix(prReview, PR_BASELINE);
}, 600_000);
