/** Every conformance case, and the subsets the process modes run (see test/conformance-processes.test.ts). */
import type { Case } from './case.ts';
import { actionCases } from './machines-actions.ts';
import { actorCases } from './machines-actors.ts';
import { delayCases } from './machines-delays.ts';
import { stateCases } from './machines-states.ts';

export const allCases: Case[] = [...stateCases, ...actionCases, ...actorCases, ...delayCases];

/** Run with a SIGKILLed worker process between every pair of steps. */
export const killBetweenCases = allCases.filter((c) => c.killBetween);

/** Run with a SIGKILL inside a delay or while an invoked actor is in flight. */
export const killInsideCases = allCases.filter((c) => c.killInside);

const ids = new Set<string>();
for (const c of allCases) {
  if (ids.has(c.id)) throw new Error(`conformance case id "${c.id}" is used twice`);
  ids.add(c.id);
}
