/**
 * Running a workflow path by path. `workflowPaths` enumerates the machine's paths with `xstate/graph`
 * over the outcomes of every step (done, error), every `after` delay and the events you list; a path
 * kit then drives each path through the real engine: scripted steps resolve or reject as the path
 * says, signals go through `engine.send`, delays fire on the test clock.
 *
 * @example
 * const paths = workflowPaths(order, { input: { id: 'A-1' }, events: [{ type: 'approve' }] });
 * const kit = await createPathKit(order);
 * for (const path of paths) {
 *   const run = await kit.run(path);
 *   expect(run.state).toEqual(path.state);
 * }
 */
import { getShortestPaths, getSimplePaths } from 'xstate/graph';
import type { AnyStateMachine, EventObject } from 'xstate';
import { defineWorkflow, type WorkflowDefinition } from '../definition.ts';
import { WorkflowError, type ErrorData } from '../errors.ts';
import type { RunInfo } from '../run-info.ts';
import { step } from '../step.ts';
import { createTestKit, type TestKit } from './index.ts';

/** What to explore. */
export interface PathOptions {
  /** The run's input (also used to build the machine's initial context while exploring). */
  input: unknown;
  /** Events from outside (signals) to try in every state, e.g. `{ type: 'approve' }`. */
  events?: { type: string; [key: string]: unknown }[];
  /** Output each step (by `src` name) succeeds with; default undefined. */
  outputs?: Record<string, unknown>;
  /** The error each step fails with on error paths; default a permanent error. */
  errors?: Record<string, Partial<ErrorData>>;
  /** `shortest` (one path per reachable state, default) or `simple` (every path without a loop). */
  kind?: 'shortest' | 'simple';
}

/** One path: the events to apply after start, and the state and status it ends in. */
export interface WorkflowPath {
  description: string;
  events: EventObject[];
  state: unknown;
  status: string;
  input: unknown;
}

interface NodeLike {
  id: string;
  invoke?: { id: string; src: unknown }[];
  after?: { eventType: string }[];
}

interface SnapshotLike {
  status: string;
  children: Record<string, unknown>;
  _nodes: NodeLike[];
}

/**
 * The events possible in `state`: each running step succeeds or fails, each armed delay fires, each
 * outside event arrives. (Offering every event everywhere would invent paths where a step that is not
 * running fails.)
 */
function possibleEvents(state: SnapshotLike, options: PathOptions): EventObject[] {
  if (state.status !== 'active') return [];
  const out: EventObject[] = [];
  for (const node of state._nodes) {
    for (const inv of node.invoke ?? []) {
      if (!(inv.id in state.children)) continue;
      const src = typeof inv.src === 'string' ? inv.src : inv.id;
      out.push({ type: `xstate.done.actor.${inv.id}`, output: options.outputs?.[src] } as EventObject);
      const error = { name: 'ScriptedError', message: `${src} failed (scripted)`, code: 'SCRIPTED', category: 'permanent', ...options.errors?.[src] };
      out.push({ type: `xstate.error.actor.${inv.id}`, error } as EventObject);
    }
    for (const t of node.after ?? []) out.push({ type: t.eventType });
  }
  return [...out, ...(options.events ?? [])];
}

/** The paths of a workflow's machine over step outcomes, delays and the given events. */
export function workflowPaths(def: WorkflowDefinition<any>, options: PathOptions): WorkflowPath[] {
  const events = (state: unknown) => possibleEvents(state as SnapshotLike, options);
  const explore = options.kind === 'simple' ? getSimplePaths : getShortestPaths;
  // The status is part of a state's identity: a step error leaves the value as it was (e.g. still
  // `preparing`), and without it the error path would be merged into the path that starts there.
  const serializeState = (s: { value: unknown; status: string; context: unknown }) => JSON.stringify([s.value, s.status, s.context]);
  const paths = explore(def.machine as AnyStateMachine, { input: options.input, events, serializeState } as never);
  return paths.map((p) => {
    const applied = p.steps.map((s) => s.event as EventObject).filter((e) => e.type !== 'xstate.init');
    return {
      description: applied.map((e) => e.type).join(' → ') || '(start)',
      events: applied,
      state: p.state.value,
      status: p.state.status,
      input: options.input,
    };
  });
}

/** A test kit whose copy of the workflow has scripted steps; `run(path)` drives one path. */
export interface PathKit {
  readonly kit: TestKit;
  run(path: WorkflowPath): Promise<RunInfo>;
  close(): Promise<void>;
}

/** Creates a {@link PathKit} for `def`: same name and version, steps replaced by scripted ones. */
export async function createPathKit(def: WorkflowDefinition<any>): Promise<PathKit> {
  /** Outcomes by run id, then by invoke id, in path order. */
  const scripts = new Map<string, Map<string, EventObject[]>>();
  /** Steps in flight with no outcome left, by run id: the path ends while they run. */
  const parked = new Map<string, number>();
  const scripted = step(async ({ runId, stepPath, signal }) => {
    const invokeId = stepPath.split('/').at(-1) as string;
    const queue = scripts.get(runId)?.get(invokeId);
    const outcome = queue?.shift();
    // The path ends while this step runs: it stays in flight.
    if (!outcome) {
      parked.set(runId, (parked.get(runId) ?? 0) + 1);
      return new Promise<never>((_resolve, reject) =>
        signal.addEventListener('abort', () => {
          parked.set(runId, (parked.get(runId) ?? 1) - 1);
          reject(signal.reason);
        }),
      );
    }
    if (outcome.type.startsWith('xstate.error.actor.')) {
      const error = (outcome as unknown as { error: ErrorData }).error;
      throw new WorkflowError(error.message, { code: error.code, category: error.category });
    }
    return (outcome as { output?: unknown }).output;
  });
  const actors = Object.fromEntries(Object.keys(def.machine.implementations.actors ?? {}).map((src) => [src, scripted]));
  const scriptedDef = defineWorkflow({ ...def, version: def.version, machine: def.machine.provide({ actors }) });
  const kit = await createTestKit({ workflows: [scriptedDef] });
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  let n = 0;
  return {
    kit,
    async run(path) {
      const runId = `path-${++n}`;
      const byInvoke = new Map<string, EventObject[]>();
      for (const e of path.events) {
        const m = /^xstate\.(?:done|error)\.actor\.(.+)$/.exec(e.type);
        if (m) byInvoke.set(m[1] as string, [...(byInvoke.get(m[1] as string) ?? []), e]);
      }
      scripts.set(runId, byInvoke);
      const engine = kit.engine;
      await engine.start(def.name, path.input, { runId });
      await kit.until(async () => (await engine.history(runId)).some((h) => h.type === 'state.entered'), `run ${runId} to start`);
      for (const e of path.events) {
        if (e.type.startsWith('xstate.done.actor.') || e.type.startsWith('xstate.error.actor.')) continue; // the scripted step does it
        // Apply the next outside event once the run has processed what came before it.
        if (e.type.startsWith('xstate.after.')) {
          await kit.until(async () => kit.clock.pending > 0, `a timer in run ${runId}`);
          await kit.nextTimer();
        } else {
          await waitForQuiet(kit, runId, parked);
          await engine.send(runId, e as { type: string });
        }
        await waitForQuiet(kit, runId, parked);
      }
      if (path.status === 'done' || path.status === 'error') return engine.waitFor(runId, { timeoutMs: 10_000 });
      await kit.until(async () => same((await engine.get(runId)).state, path.state), `run ${runId} to reach ${JSON.stringify(path.state)}`);
      return engine.get(runId);
    },
    close: () => kit.close(),
  };
}

/**
 * Waits until the run has nothing unsaved and no step in flight but parked ones: it only waits for an
 * event or a timer.
 */
async function waitForQuiet(kit: TestKit, runId: string, parked: Map<string, number>): Promise<void> {
  await kit.until(async () => {
    await kit.engine.settled();
    const history = await kit.engine.history(runId);
    const started = history.filter((h) => h.type === 'step.started').length;
    const ended = history.filter((h) => h.type === 'step.succeeded' || h.type === 'step.failed').length;
    return started === ended + (parked.get(runId) ?? 0);
  }, `run ${runId} to be idle`);
}
