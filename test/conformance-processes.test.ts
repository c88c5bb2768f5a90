/**
 * Conformance with plain XState across SIGKILLs (issue 15), with real worker processes loading the
 * cases from test/fixtures/conformance-workflows.ts. Two modes, on representative subsets so the
 * file stays affordable (a worker process takes seconds to start on a 2-core machine):
 *
 * - `killBetween` cases (27, every feature kind: parallel, history, always, guards, descriptors,
 *   reentering transitions, final states with output, assign, raise/enqueueActions, predictable
 *   order, emit, invoked promise/callback/observable/transition/machine, spawnChild and spawn, stopChild, after,
 *   delayed raise/sendTo with cancel, a child's after): the worker process is SIGKILLed between every
 *   pair of steps and a fresh one (same `--worker-id`, so it takes the runs back at once) resumes.
 * - `killInside` cases (9: an invoked promise that resolves and one that rejects, a callback that
 *   has not called back, an observable half-way, `after`, `after` in a nested state, a delayed raise,
 *   a delayed sendTo, a child machine's `after`): the worker is SIGKILLed while that delay or actor is
 *   pending — checked on the persisted row after the kill — and a fresh worker finishes.
 *
 * After every step each run is compared with plain XState on state, context, status, output and
 * children; the finite observable's replay after a restore is the documented difference
 * (docs/xstate-semantics.md) its case checks explicitly.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, openDatabase, type Database, type Engine } from '../src/index.ts';
import { conformanceWorkflow, readRow, runPlain, type Case, type View } from './conformance/case.ts';
import { allCases, killBetweenCases, killInsideCases } from './conformance/cases.ts';
import { runRounds, type CaseRun } from './conformance/rounds.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { fixtureModule } from './helpers/fixture-bundles.ts';
import { killAll, ROOT, spawnRmapp, until, type Spawned } from './helpers/processes.ts';

// Bundled for the run (test/helpers/fixture-bundles.ts): a worker starts without compiling TypeScript.
const WORKFLOWS = fixtureModule(`${ROOT}test/fixtures/conformance-workflows.ts`);

let testDb: TestDatabase;
let db: Database;
let client: Engine;
const plain = new Map<string, View[]>();

beforeAll(async () => {
  testDb = await createTestDatabase();
  db = await openDatabase({ url: testDb.url });
  client = createEngine({ database: db, workflows: allCases.map(conformanceWorkflow) });
  await client.db();
  const cases = [...new Set([...killBetweenCases, ...killInsideCases])];
  const views = await Promise.all(cases.map((c) => runPlain(c)));
  cases.forEach((c, i) => plain.set(c.id, views[i] as View[]));
});
afterAll(async () => {
  killAll();
  await client?.stop();
  await db?.close();
  await testDb?.drop();
});

/** Starts a worker process and waits until it is working (it prints its line once started). */
async function startWorker(): Promise<Spawned> {
  const worker = spawnRmapp(['--workflows', WORKFLOWS, 'worker', '--worker-id', 'conformance', '--lease-ms', '3000', '--poll-ms', '50'], {
    DATABASE_URL: testDb.url,
  });
  await until(() => worker.output().includes('rmapp worker conformance'), 60_000, `the worker to start: ${worker.output()}`);
  return worker;
}

async function sigkill(worker: Spawned): Promise<void> {
  worker.child.kill('SIGKILL');
  expect(await worker.exited, 'the worker was killed').toBe(null);
}

function compare(cases: Case[], results: Map<string, CaseRun>, mode: string) {
  for (const c of cases) {
    it(`${c.id} (${c.from})`, () => {
      const expected = plain.get(c.id) as View[];
      const got = (results.get(c.id) as CaseRun).views;
      expected.forEach((want, step) => {
        if (c.midStream?.views.includes(step)) return;
        if (step > 0 && c.restoreDiffers) return c.restoreDiffers.check(got[step] as View, want);
        expect(
          got[step],
          `${c.id} (${mode}), after ${step === 0 ? 'the start' : `step ${step}: ${JSON.stringify(c.steps[step - 1])}`}`,
        ).toEqual(want);
      });
    });
  }
}

describe('conformance with plain XState: a worker process SIGKILLed between every pair of steps', () => {
  const results = new Map<string, CaseRun>();
  beforeAll(async () => {
    let worker: Spawned | null = null;
    const runs = await runRounds(killBetweenCases, {
      db,
      client: () => client,
      beforeRound: async () => {
        const replacing = worker !== null;
        if (worker) await sigkill(worker);
        worker = await startWorker();
        return replacing;
      },
    });
    for (const [k, v] of runs) results.set(k, v);
    if (worker) await sigkill(worker);
  }, 150_000);
  compare(killBetweenCases, results, 'SIGKILL between steps');
});

describe('conformance with plain XState: a worker process SIGKILLed inside a delay or an in-flight actor', () => {
  const results = new Map<string, CaseRun>();
  beforeAll(async () => {
    let worker: Spawned | null = null;
    const runs = await runRounds(killInsideCases, {
      db,
      client: () => client,
      beforeRound: async (round, started) => {
        if (round === 0) {
          worker = await startWorker();
          return false;
        }
        if (round > 1 || !worker) return false;
        // Every run is inside its delay or its actor's work, as persisted: kill the worker there.
        const ids = new Map([...started].map(([k, v]) => [k, v.id]));
        const pending = async () => {
          for (const c of killInsideCases) if (!c.killInside?.inside(await readRow(db, ids.get(c.id) as string))) return false;
          return true;
        };
        await until(pending, 30_000, 'every run to be inside its delay or in-flight actor');
        await sigkill(worker);
        for (const c of killInsideCases) {
          expect(
            c.killInside?.inside(await readRow(db, ids.get(c.id) as string)),
            `${c.id}: the kill landed inside ${c.killInside?.what}`,
          ).toBe(true);
        }
        worker = await startWorker();
        return true;
      },
    });
    for (const [k, v] of runs) results.set(k, v);
    if (worker) await sigkill(worker);
  }, 150_000);
  compare(killInsideCases, results, 'SIGKILL inside a delay or an actor');
});
