/**
 * Conformance with plain XState (issue 15), in this process: every case of test/conformance/ (machines
 * taken from XState's own tests, each naming the test it comes from) is run under plain XState and
 * under rmapp, and compared after every step on state, context, status, output and children. Two
 * modes: one worker for the whole run; a new worker (the engine stopped, a fresh one restoring the run
 * from the database) between every pair of steps. The runs of a mode go together, in rounds
 * (test/conformance/rounds.ts). The SIGKILL modes are in test/conformance-processes.test.ts.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/index.ts';
import { conformanceWorkflow, runPlain, type View } from './conformance/case.ts';
import { allCases } from './conformance/cases.ts';
import { runRounds, type CaseRun } from './conformance/rounds.ts';
import { useTestDatabase } from './helpers/postgres.ts';

const store = useTestDatabase();
const workflows = allCases.map(conformanceWorkflow);
const plain = new Map<string, View[]>();

beforeAll(async () => {
  const views = await Promise.all(allCases.map((c) => runPlain(c)));
  allCases.forEach((c, i) => plain.set(c.id, views[i] as View[]));
});

describe.each([
  ['one worker', false],
  ['a new worker between every pair of steps', true],
] as const)('conformance with plain XState: %s', (mode, restart) => {
  let results: Map<string, CaseRun>;
  beforeAll(async () => {
    let engine: Engine | null = null;
    const make = () => createEngine({ database: store.db, workflows, pollMs: 20, evictAfterMs: 5 });
    try {
      results = await runRounds(allCases, {
        db: store.db,
        client: () => engine as Engine,
        beforeRound: async () => {
          if (engine && !restart) return false;
          const replacing = engine !== null;
          await engine?.stop();
          engine = make();
          await engine.startWorker();
          return replacing;
        },
      });
    } finally {
      await (engine as Engine | null)?.stop();
    }
  }, 120_000);

  for (const c of allCases) {
    it(`${c.id} (${c.from})`, () => {
      const expected = plain.get(c.id) as View[];
      const got = (results.get(c.id) as CaseRun).views;
      expected.forEach((want, step) => {
        const at = `${c.id} (${mode}), after ${step === 0 ? 'the start' : `step ${step}: ${JSON.stringify(c.steps[step - 1])}`}`;
        if (c.midStream?.views.includes(step)) return;
        if (restart && step > 0 && c.restoreDiffers) return c.restoreDiffers.check(got[step] as View, want);
        expect(got[step], at).toEqual(want);
      });
    });
  }
});
