/**
 * Issue 8's crash matrix (test/crash-matrix-*.test.ts, one file per workflow): for every transition
 * of a run and every named fault point (src/state_machine/fault-points.ts), a worker process is
 * killed there with SIGKILL and a fresh worker process resumes. Every run must complete with its
 * external effects exactly once.
 *
 * The transitions are not listed by hand: an uninterrupted baseline run records the states it enters
 * and the steps it runs, and the matrix is built from that history, so a changed machine is covered
 * without editing a test.
 *
 * The cases run in lanes: each lane is a whole crash world of its own (test/helpers/github-crash.ts:
 * its own Postgres database, GitHub emulator, bare git remote and workspaces folder), and a lane runs
 * its cases one after another. Lanes cannot interfere: a worker only sees the runs of its lane's
 * database (so a fault armed for one case can never fire in another lane's run), and every effect a
 * case counts — PRs, comments, replies, commits — lives in its lane's emulator and remote. Within a
 * lane, cases are sequential exactly as before. A case spends most of its time waiting (worker
 * start-up, lease expiry, the agent and test command in the sandbox), so two lanes overlap well.
 *
 * Every other case is a restart: the killed worker and the one that resumes share a stable worker id
 * (`rmapp worker --worker-id`, as a supervisor restarts a deployment), so the new one expires its
 * predecessor's leases at start-up and takes the run back at once. The other cases resume through a
 * worker of another id, which must wait for the killed worker's lease to expire (~2 s per case).
 */
import { expect } from 'vitest';
import { FAULT_POINTS, type FaultPointName } from '../../src/state_machine/fault-points.ts';
import { createCrashWorld, stopWorker, type CrashWorld, type WorkerProcess } from './github-crash.ts';

/** One workflow under test: how to start a fresh run of it and how to check its effects. */
export interface Subject {
  workflow: string;
  /** Makes the GitHub/git world for case `k` in `world` and starts the run; returns its id. */
  start(world: CrashWorld, k: number): Promise<string>;
  /** Throws (expect) unless the effects of the run of case `k` happened exactly once in `world`. */
  check(world: CrashWorld, k: number, id: string): Promise<void>;
}

interface Case {
  point: FaultPointName;
  target: string;
}

/** The matrix from a baseline run's history: each state entered × persist points, each step run × side-effect points. */
async function matrixOf(world: CrashWorld, id: string): Promise<{ states: string[]; steps: string[]; cases: Case[] }> {
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

/**
 * Runs one case: kill at the point, resume with a fresh worker (restarted under the killed one's id
 * when `restart`), check. Returns what went wrong, or null.
 */
async function runCase(world: CrashWorld, subject: Subject, k: number, c: Case, restart: boolean): Promise<string | null> {
  const fault = `${c.point}:${c.target}`;
  const how = restart ? 'restarted under its id' : 'taken over after the lease';
  const workerId = restart ? `crash-${k}` : undefined;
  const id = await subject.start(world, k);
  const first = world.worker({ fault, workerId });
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
    second = world.worker({ workerId });
    await subject.check(world, k, id);
    return null;
  } catch (err) {
    return `${fault} (killed in ${JSON.stringify(killed.state)}, ${killed.status}; ${how}): ${(err as Error).message}${second ? `\n--- resumed worker ---\n${second.output()}` : ''}`;
  } finally {
    if (second) await stopWorker(second);
  }
}

/**
 * The workers' lease. With 1 s (renewed every 333 ms) a worker starved of CPU for a second lost its
 * own lease mid-step again and again, until `implement` hit its 5-start limit (STEP_NEVER_FINISHED,
 * seen once in 26 cases with the machine at load 14). 2 s tolerates twice the stall and costs each
 * case at most one more second before the fresh worker may take the killed worker's run.
 */
const LEASE_MS = 2_000;

/** Lanes per workflow file: the two files run side by side, so four cases are in flight at once. */
export const LANES = 2;

/**
 * The whole matrix of `subject`: the baseline run (case `firstCase`) in the first lane, then every
 * case of the matrix, each lane taking the next case when it is free. Fails naming every case that
 * went wrong.
 */
export async function runMatrix(subject: Subject, firstCase: number, lanes = LANES): Promise<void> {
  const startedAt = Date.now();
  const worlds: CrashWorld[] = [];
  try {
    for (let i = 0; i < lanes; i++) {
      const world = await createCrashWorld({ leaseMs: LEASE_MS });
      worlds.push(world);
      open.add(world);
    }
    const [first] = worlds as [CrashWorld];
    const baselineId = await subject.start(first, firstCase);
    const baselineWorker = first.worker();
    await subject.check(first, firstCase, baselineId);
    await stopWorker(baselineWorker);
    const { states, steps, cases } = await matrixOf(first, baselineId);
    expect(states.length).toBeGreaterThan(3);

    const failures: string[] = [];
    let next = 0;
    const lane = async (world: CrashWorld) => {
      while (next < cases.length) {
        const index = next++;
        const problem = await runCase(world, subject, firstCase + 1 + index, cases[index]!, index % 2 === 1);
        if (problem) failures.push(problem);
      }
    };
    await Promise.all(worlds.map(lane));
    const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);
    console.log(
      `crash matrix ${subject.workflow}: ${states.length} transitions (${states.join(' → ')}) × 2 persist points + ` +
        `${steps.length} steps (${steps.join(', ')}) × 2 side-effect points = ${cases.length} cases in ${lanes} lanes, ` +
        `${cases.length - failures.length} green, ${seconds} s`,
    );
    expect(failures).toEqual([]);
  } finally {
    for (const world of worlds) await closeWorld(world);
  }
}

const open = new Set<CrashWorld>();

async function closeWorld(world: CrashWorld): Promise<void> {
  if (!open.delete(world)) return;
  await world.close();
}

/** Kills the workers and closes the worlds a timed-out matrix left behind (for `afterAll`). */
export async function closeMatrixWorlds(): Promise<void> {
  for (const world of [...open]) await closeWorld(world);
}
