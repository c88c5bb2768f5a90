/**
 * Model-based tests of every registered workflow machine (test/helpers/all-machines.ts). For each,
 * `xstate/graph` enumerates paths over the outcomes of every step — success with each output, failure
 * in every error category, retry then success — every signal and every `after` timeout: shortest paths
 * (one per reachable state: the machines' contexts record how a state was reached, so that is every
 * path up to the loops' bounds), simple paths ending the run by another route (capped at 40 per
 * machine; none are cut today), and retry-then-success variants. Each path runs through the real engine
 * on PGlite with scripted steps, and the path kit checks it: end state, status, context and output as
 * predicted; every persisted snapshot restores into the same state and context; history and progress
 * events as the path says. A path that leaves the run going then cancels it and checks that too.
 *
 * The path counts per machine are printed at the end (README, "Model-based tests").
 */
import { expect, it } from 'vitest';
import { ISSUE_TEMPLATES } from '../src/machines/issue-implementation.ts';
import { machines, machinesOf, MODEL_FILES, modelBasedTests } from './helpers/model-based.ts';

it('covers every registered machine, including each issue template', () => {
  const names = machines.map((m) => m.def.name);
  expect(names).toEqual(
    expect.arrayContaining([
      ...Object.keys(ISSUE_TEMPLATES),
      'PRReview',
      'ReviewResponse',
      'GitHubDelivery',
      'example.order',
      'test.approval',
      'test.parent',
    ]),
  );
  for (const m of machines.filter((x) => x.sameAs)) {
    expect(m.def.version, `${m.def.name} is covered as ${m.sameAs}`).toBe(machines.find((x) => x.def.name === m.sameAs)?.def.version);
  }
  // The files together take every modelled machine once (a machine in no list is this file's).
  const taken = [...machinesOf('rest'), ...machinesOf('bugfixDocs'), ...machinesOf('complexReview')].map((m) => m.def.name);
  expect(taken.sort()).toEqual(
    machines
      .filter((m) => !m.sameAs)
      .map((m) => m.def.name)
      .sort(),
  );
  for (const name of Object.values(MODEL_FILES).flat()) expect(names, `${name}, listed in MODEL_FILES`).toContain(name);
});

// IssueImplementation, PRReview and the small machines; the others are in test/model-based-*.test.ts
// (test/helpers/model-based.ts says why and which).
modelBasedTests(machinesOf('rest'));
