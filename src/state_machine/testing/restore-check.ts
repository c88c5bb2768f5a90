/**
 * Does a persisted snapshot come back as it was? The engine restores a run from its last persisted
 * snapshot after every crash, eviction and deploy; a context field that does not survive JSON, a
 * renamed state or a renamed child `src` only shows up then. These checks restore a snapshot into a
 * fresh actor whose steps never run, and compare.
 */
import { createActor, fromPromise, type AnyActorLogic, type AnyStateMachine, type Snapshot } from 'xstate';
import { findRestoreProblem } from '../snapshot-check.ts';

/** JSON with keys sorted and `undefined` dropped: jsonb reorders keys, so compare this. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(JSON.parse(JSON.stringify(value ?? null) ?? 'null')));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

/**
 * An error as the model and the engine can both state it: `{ name, message, code, category }`. The
 * engine adds what the model cannot know (stack, the step in `details`); everything else must match.
 */
export function comparable(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(comparable);
  if (value && typeof value === 'object') {
    const v = value as Record<string, unknown>;
    if (typeof v.message === 'string' && typeof v.code === 'string' && typeof v.category === 'string') {
      return { name: v.name, message: v.message, code: v.code, category: v.category };
    }
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, comparable(x)]));
  }
  return value;
}

const inertStep = fromPromise(() => new Promise<never>(() => {}));
const inertCache = new WeakMap<AnyStateMachine, AnyStateMachine>();

/** `machine` with every step replaced by one that never settles (child machines likewise): restoring runs nothing. */
function inertMachine(machine: AnyStateMachine): AnyStateMachine {
  let inert = inertCache.get(machine);
  if (!inert) {
    const actors: Record<string, AnyActorLogic> = {};
    for (const [src, logic] of Object.entries((machine.implementations.actors ?? {}) as Record<string, unknown>)) {
      actors[src] = logic && typeof logic === 'object' && 'getStateNodeById' in logic ? inertMachine(logic as AnyStateMachine) : inertStep;
    }
    inert = machine.provide({ actors }) as AnyStateMachine;
    inertCache.set(machine, inert);
  }
  return inert;
}

/**
 * What goes wrong when `snapshot` (as read from the database) is restored into `machine`: a missing
 * state or child `src`, a different state value, status or context after restoring, a persisted form
 * that does not round-trip, or an error on start. Empty when it restores faithfully.
 *
 * @example
 * expect(restoreProblems(def.machine, row.snapshot, row.input)).toEqual([]);
 */
export function restoreProblems(machine: AnyStateMachine, snapshot: unknown, input: unknown): string[] {
  const problem = findRestoreProblem(machine, snapshot);
  if (problem) return [problem];
  const stored = snapshot as { value: unknown; status: string; context: unknown };
  const problems: string[] = [];
  const actor = createActor(inertMachine(machine), { snapshot: structuredClone(snapshot) as Snapshot<unknown>, input });
  const restored = actor.getSnapshot() as { value: unknown; status: string; context: unknown };
  if (canonicalJson(restored.value) !== canonicalJson(stored.value))
    problems.push(`restored state ${JSON.stringify(restored.value)} ≠ persisted ${JSON.stringify(stored.value)}`);
  if (restored.status !== stored.status) problems.push(`restored status ${restored.status} ≠ persisted ${stored.status}`);
  if (canonicalJson(restored.context) !== canonicalJson(stored.context))
    problems.push(`restored context ${canonicalJson(restored.context)} ≠ persisted ${canonicalJson(stored.context)}`);
  if (canonicalJson(actor.getPersistedSnapshot()) !== canonicalJson(snapshot))
    problems.push('the restored actor persists a different snapshot than the one it was restored from');
  if (stored.status !== 'active') return problems;
  // Starting must not move it: entry actions and `always` do not run again on restore (xstate #4627).
  let failure: unknown;
  actor.subscribe({ error: (err) => (failure = err) });
  actor.start();
  const started = actor.getSnapshot() as { value: unknown; context: unknown };
  if (failure) problems.push(`starting the restored actor failed: ${(failure as Error).message}`);
  else if (
    canonicalJson(started.value) !== canonicalJson(stored.value) ||
    canonicalJson(started.context) !== canonicalJson(stored.context)
  ) {
    problems.push(`the restored actor moved on start, to ${JSON.stringify(started.value)}`);
  }
  actor.stop();
  return problems;
}
