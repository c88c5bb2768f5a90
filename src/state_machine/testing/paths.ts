/**
 * Paths of a workflow, for model-based tests. `workflowPaths` enumerates the machine's paths with
 * `xstate/graph` over the outcomes of every running step (done with each output you give, failed with
 * each error category you list), every armed `after` delay and the signals you list. An invoked child
 * machine is explored too: each of its distinct endings (one shortest path per final state) becomes
 * an outcome of the parent, carrying the child's own path so the kit can play it. `modelPaths` adds
 * simple paths (capped) and retry-then-success variants; a path kit (`createPathKit`, path-kit.ts) drives each path
 * through the real engine and checks it.
 *
 * Why not `createTestModel`: it refuses machines with invocations (docs/xstate-semantics.md), and every workflow
 * step is one.
 *
 * @example
 * const paths = workflowPaths(order, { input: { id: 'A-1' }, events: [{ type: 'approve' }] });
 * const kit = await createPathKit(order);
 * for (const path of paths) expect((await kit.check(path)).problems).toEqual([]);
 */
import { getShortestPaths, getSimplePaths } from 'xstate/graph';
import type { AnyStateMachine, EventObject } from 'xstate';
import { childPath } from '../actor-paths.ts';
import type { AnyWorkflowDefinition } from '../definition.ts';
import type { ErrorCategory, ErrorData } from '../errors.ts';

/** What to explore. */
export interface PathOptions {
  /** The run's input; parsed with the definition's schema (defaults applied) before exploring. */
  input: unknown;
  /** Events from outside (signals) to try in every state, e.g. `{ type: 'approve' }`. */
  events?: { type: string; [key: string]: unknown }[];
  /** Output each step (by `src` name) succeeds with; default undefined. */
  outputs?: Record<string, unknown>;
  /** Several outputs of one step (e.g. tests pass / tests fail): each is a separate outcome. Wins over `outputs`. */
  outputChoices?: Record<string, readonly unknown[]>;
  /** Fields of the error a step fails with; a `category` here replaces `errorCategories` for that step. */
  errors?: Record<string, Partial<ErrorData>>;
  /** The categories every step fails with, one outcome each. Default `['permanent']`. */
  errorCategories?: readonly ErrorCategory[];
  /** Fire armed `after` delays (default true). */
  delays?: boolean;
  /** `shortest` (one path per reachable state, default) or `simple` (every path without a loop). */
  kind?: 'shortest' | 'simple';
}

/** A child machine's path, played by the path kit when the parent's path says the child ends this way. */
export interface ChildScript {
  events: PathEvent[];
  /** The child's state value after its start and after each of its events. */
  states: unknown[];
  /** Its own child machines. */
  children: ChildInstance[];
}

/**
 * One invocation of a child machine along a path: from the path step where it appears to the event
 * that ends it (null: the path ends, or its parent leaves the state, while it still runs). What the
 * run's history must show for the child's actor path.
 */
export interface ChildInstance {
  id: string;
  /** Index in `steps` where it first appears. */
  from: number;
  /** Index in `events` of the event after which it no longer runs (its ending, or its parent leaving the state), or null. */
  until: number | null;
  /** Its state values: its script's when it ends on the path, else only the first. */
  states: unknown[];
  children: ChildInstance[];
}

/**
 * One event of a path. Step outcomes say what the scripted step does: `output` or `error`, after
 * `failFirst` failed attempts (retry then success); a child machine's outcome carries its `child` path.
 */
export interface PathEvent extends EventObject {
  output?: unknown;
  error?: ErrorData;
  failFirst?: ErrorData[];
  child?: ChildScript;
  [key: string]: unknown;
}

/** The model's view of the run after some events: what the persisted snapshot must show. */
export interface PredictedState {
  value: unknown;
  /** XState status: `active`, `done` or `error`. */
  status: string;
  context: unknown;
}

/** One path: the events to apply after start, and the states the run goes through. */
export interface WorkflowPath {
  /** The workflow (definition name) it belongs to. */
  workflow: string;
  kind: 'shortest' | 'simple' | 'retry';
  description: string;
  events: PathEvent[];
  /** Final state value. */
  state: unknown;
  /** Final XState status (`active`: the path ends while the run waits or a step runs). */
  status: string;
  /** Predicted after start (index 0) and after each event. */
  steps: PredictedState[];
  /** The machine's output when the path ends `done`. */
  output?: unknown;
  /** Every invocation of a child machine along the path. */
  children: ChildInstance[];
  input: unknown;
}

interface NodeLike {
  id: string;
  invoke?: { id: string; src: unknown }[];
  after?: { eventType: string }[];
}

interface ChildRefLike {
  src: unknown;
  logic: unknown;
  options?: { input?: unknown };
  getSnapshot(): { value?: unknown };
}

interface SnapshotLike {
  status: string;
  value: unknown;
  context: unknown;
  output?: unknown;
  error?: unknown;
  children: Record<string, ChildRefLike | undefined>;
  _nodes: NodeLike[];
}

interface ChildEnding {
  status: string;
  output?: unknown;
  error?: unknown;
  script: ChildScript;
}
type ChildCache = Map<string, ChildEnding[]>;

const isMachineLogic = (logic: unknown): logic is AnyStateMachine => !!logic && typeof logic === 'object' && 'getStateNodeById' in logic;

/** The category that stands for all when one is enough: `permanent` if offered (nothing to retry). */
function firstCategory(categories: readonly ErrorCategory[] = ['permanent']): ErrorCategory {
  return categories.includes('permanent') ? 'permanent' : (categories[0] as ErrorCategory);
}

/** The error a scripted step throws for `category`; the same data in the model and in the engine. */
function scriptedError(src: string, category: ErrorCategory, overrides: Partial<ErrorData> = {}): ErrorData {
  return {
    name: 'ScriptedError',
    message: `${src} failed (scripted, ${category})`,
    code: `SCRIPTED_${category.toUpperCase()}`,
    category,
    ...overrides,
  };
}

/**
 * The events possible in `state`: each running step succeeds or fails, each invoked child machine
 * ends in each of its ways, each armed delay fires, each outside event arrives. (Offering every event
 * everywhere would invent paths where a step that is not running fails.)
 */
function possibleEvents(state: SnapshotLike, options: PathOptions, cache: ChildCache): PathEvent[] {
  if (state.status !== 'active') return [];
  const out: PathEvent[] = [];
  const delays = new Set<string>();
  for (const node of state._nodes) {
    for (const inv of node.invoke ?? []) {
      const child = state.children[inv.id];
      if (!child) continue;
      if (isMachineLogic(child.logic)) {
        out.push(...childOutcomes(inv.id, child, options, cache));
        continue;
      }
      const src = typeof inv.src === 'string' ? inv.src : inv.id;
      const outputs = options.outputChoices?.[src] ?? [options.outputs?.[src]];
      for (const output of outputs) out.push({ type: `xstate.done.actor.${inv.id}`, output });
      const override = options.errors?.[src];
      const categories = override?.category ? [override.category] : (options.errorCategories ?? ['permanent']);
      for (const category of categories) out.push({ type: `xstate.error.actor.${inv.id}`, error: scriptedError(src, category, override) });
    }
    if (options.delays !== false) for (const t of node.after ?? []) delays.add(t.eventType);
  }
  return [...out, ...[...delays].map((type) => ({ type })), ...(options.events ?? [])];
}

/**
 * The ways an invoked child machine can end, one per final (state, status) of the child, each with the
 * shortest child path that gets there. Only step outcomes drive the child: signals go to the root.
 */
function childOutcomes(invokeId: string, child: ChildRefLike, options: PathOptions, cache: ChildCache): PathEvent[] {
  const input = child.options?.input;
  const key = `${String(child.src)}:${JSON.stringify(input)}`;
  let endings = cache.get(key);
  if (!endings) {
    // One failure ending is enough for the parent; a permanent one if offered (no retries to wait for).
    const childOptions: PathOptions = {
      ...options,
      input,
      events: [],
      delays: false,
      errorCategories: [firstCategory(options.errorCategories)],
    };
    const paths = getShortestPaths(
      child.logic as AnyStateMachine,
      {
        input,
        events: (s: unknown) => possibleEvents(s as SnapshotLike, childOptions, cache),
        serializeState: serialize,
      } as never,
    );
    const byEnding = new Map<string, ChildEnding>();
    for (const p of [...paths].sort((a, b) => a.steps.length - b.steps.length)) {
      const s = p.state as unknown as SnapshotLike;
      if (s.status === 'active') continue;
      const ending = JSON.stringify([s.value, s.status]);
      if (byEnding.has(ending)) continue;
      const events = p.steps.slice(1).map((st) => st.event as PathEvent);
      const snapshots = p.steps.map((st) => st.state as unknown as SnapshotLike);
      byEnding.set(ending, {
        status: s.status,
        output: s.output,
        error: s.error,
        script: { events, states: snapshots.map((x) => x.value), children: childInstances(snapshots, events) },
      });
    }
    endings = [...byEnding.values()];
    cache.set(key, endings);
  }
  return endings.map((e) =>
    e.status === 'done'
      ? { type: `xstate.done.actor.${invokeId}`, output: e.output, child: e.script }
      : { type: `xstate.error.actor.${invokeId}`, error: e.error as ErrorData, child: e.script },
  );
}

/**
 * The status is part of a state's identity: a step error leaves the value as it was (e.g. still
 * `preparing`), and without it the error path would be merged into the path that starts there.
 */
const serialize = (s: { value: unknown; status: string; context: unknown }, e?: PathEvent) =>
  // So is the category of the error that led here: a machine without `onError` ends in the same
  // `error` snapshot whatever the category, but the engine treats each differently (retried or not).
  JSON.stringify([s.value, s.status, s.context, e?.type.startsWith('xstate.error.') ? e.error?.category : null]);

/** The child machine invocations along a path (see {@link ChildInstance}). */
function childInstances(snapshots: readonly SnapshotLike[], events: readonly PathEvent[]): ChildInstance[] {
  const out: ChildInstance[] = [];
  const open = new Map<string, unknown>();
  snapshots.forEach((snap, k) => {
    for (const [id, ref] of Object.entries(snap.children)) {
      if (!ref || !isMachineLogic(ref.logic) || open.get(id) === ref) continue;
      open.set(id, ref);
      const end = events.findIndex((e, i) => i >= k && OUTCOME_OF(id).test(e.type));
      const ending = end >= 0 ? events[end]?.child : undefined;
      // Without an ending of its own it runs until its parent leaves the state (or the path ends).
      const gone = snapshots.findIndex((x, j) => j > k && x.children[id] !== ref);
      const until = ending ? end : gone >= 0 ? gone - 1 : null;
      out.push({ id, from: k, until, states: ending?.states ?? [ref.getSnapshot().value], children: ending?.children ?? [] });
    }
  });
  return out;
}

const OUTCOME_OF = (id: string) => new RegExp(`^xstate\\.(done|error)\\.actor\\.${id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);

function describeEvent(e: PathEvent, options: PathOptions): string {
  if (e.type.startsWith('xstate.error.actor.')) return `${e.type} (${e.error?.category})`;
  if (e.child) return `${e.type} [${String(e.child.states.at(-1))}]`;
  if (e.type.startsWith('xstate.done.actor.')) {
    const choices = Object.values(options.outputChoices ?? {}).find((c) => c.some((o) => o === e.output));
    if (choices && choices.length > 1) return `${e.type} #${choices.indexOf(e.output) + 1}`;
  }
  if (e.failFirst?.length) return `${e.type} (after ${e.failFirst.map((f) => f.category).join(', ')})`;
  return e.type;
}

function parseInput(def: AnyWorkflowDefinition, input: unknown): unknown {
  const parsed = def.input.safeParse(input);
  if (!parsed.success)
    throw new Error(`workflowPaths(${def.name}): the input does not match the workflow's schema: ${parsed.error.message}`);
  return parsed.data;
}

/** The paths of a workflow's machine over step outcomes, delays and the given events. */
export function workflowPaths(def: AnyWorkflowDefinition, options: PathOptions): WorkflowPath[] {
  const input = parseInput(def, options.input);
  const cache: ChildCache = new Map();
  const events = (state: unknown) => possibleEvents(state as SnapshotLike, options, cache);
  const explore = options.kind === 'simple' ? getSimplePaths : getShortestPaths;
  const paths = explore(def.machine as AnyStateMachine, { input, events, serializeState: serialize } as never);
  return paths.map((p) => {
    const applied = p.steps.slice(1).map((s) => s.event as PathEvent);
    const final = p.state as unknown as SnapshotLike;
    const snapshots = p.steps.map((s) => s.state as unknown as SnapshotLike);
    return {
      workflow: def.name,
      kind: options.kind ?? 'shortest',
      description: applied.map((e) => describeEvent(e, options)).join(' → ') || '(start)',
      events: applied,
      state: final.value,
      status: final.status,
      steps: p.steps.map((s) => {
        const snap = s.state as unknown as SnapshotLike;
        return { value: snap.value, status: snap.status, context: snap.context };
      }),
      ...(final.status === 'done' ? { output: final.output } : {}),
      children: childInstances(snapshots, applied),
      input,
    };
  });
}

/** What {@link modelPaths} explores beyond {@link PathOptions}. */
export interface ModelPathOptions extends Omit<PathOptions, 'kind'> {
  /** Simple paths kept (spread evenly over all found, after dropping duplicates of shortest ones). Default 40. */
  maxSimplePaths?: number;
  /** Error categories for simple paths (they add routes, not outcomes). Default: `permanent` (or the first of `errorCategories`). */
  simpleErrorCategories?: readonly ErrorCategory[];
  /** Categories a retried-then-successful step fails with first, used in turn. Default transient, rate_limited, timeout. */
  retryCategories?: readonly ErrorCategory[];
}

/** The paths a model-based test runs, by kind, with how many simple paths were found before the cap. */
export interface ModelPaths {
  shortest: WorkflowPath[];
  simple: WorkflowPath[];
  /** Simple paths ending where the run ends, before de-duplication and the cap. */
  simpleFound: number;
  retry: WorkflowPath[];
  /** Every path to run, without duplicates. */
  all: WorkflowPath[];
}

/** A key that tells two paths apart by what they do, not how they are described. */
function pathKey(path: WorkflowPath): string {
  return JSON.stringify([path.workflow, path.events]);
}

/**
 * Shortest paths (one per reachable state: every step outcome, every error category, every signal and
 * timeout), simple paths that end a run by another route (capped), and retry-then-success variants of
 * a set of shortest paths that together succeed every step once. Duplicates are dropped.
 */
export function modelPaths(def: AnyWorkflowDefinition, options: ModelPathOptions): ModelPaths {
  const { maxSimplePaths = 40, simpleErrorCategories, retryCategories = ['transient', 'rate_limited', 'timeout'], ...base } = options;
  const shortest = workflowPaths(def, { ...base, kind: 'shortest' });
  const seen = new Set(shortest.map(pathKey));
  const simpleAll = workflowPaths(def, {
    ...base,
    kind: 'simple',
    errorCategories: simpleErrorCategories ?? [firstCategory(base.errorCategories)],
    // Routes to a state where the run still goes on are prefixes of routes that end it: keep the ends.
  }).filter((p) => p.status !== 'active');
  const fresh = simpleAll.filter((p) => !seen.has(pathKey(p)));
  const step = fresh.length > maxSimplePaths ? fresh.length / maxSimplePaths : 1;
  const simple: WorkflowPath[] = [];
  for (let i = 0; simple.length < Math.min(maxSimplePaths, fresh.length); i += step) simple.push(fresh[Math.floor(i)] as WorkflowPath);
  for (const p of simple) seen.add(pathKey(p));
  const retry = retryVariants(shortest, retryCategories).filter((p) => !seen.has(pathKey(p)));
  return { shortest, simple, simpleFound: simpleAll.length, retry, all: [...shortest, ...simple, ...retry] };
}

/** Invoke paths (`child/invokeId`) of the step outcomes in `events`, children included. */
function succeededSteps(events: readonly PathEvent[], prefix = ''): string[] {
  const out: string[] = [];
  for (const e of events) {
    const m = /^xstate\.done\.actor\.(.+)$/.exec(e.type);
    if (!m) continue;
    const key = childPath(prefix, m[1] as string);
    if (e.child) out.push(...succeededSteps(e.child.events, key));
    else out.push(key);
  }
  return out;
}

function withFailFirst(events: readonly PathEvent[], next: () => ErrorData): PathEvent[] {
  return events.map((e) => {
    if (e.child) return { ...e, child: { ...e.child, events: withFailFirst(e.child.events, next) } };
    if (!e.type.startsWith('xstate.done.actor.')) return e;
    return { ...e, failFirst: [next()] };
  });
}

/**
 * Retry then success: shortest paths that end `done`, picked greedily until every step that succeeds
 * on some path is covered, with each of their steps failing once first (categories in turn).
 */
function retryVariants(paths: readonly WorkflowPath[], categories: readonly ErrorCategory[]): WorkflowPath[] {
  const covered = new Set<string>();
  const out: WorkflowPath[] = [];
  const done = paths.filter((p) => p.status === 'done').sort((a, b) => b.events.length - a.events.length);
  for (const path of done) {
    const steps = succeededSteps(path.events);
    if (steps.every((s) => covered.has(s))) continue;
    for (const s of steps) covered.add(s);
    let i = 0;
    const next = () => {
      const category = categories[i++ % categories.length] as ErrorCategory;
      return scriptedError('retried', category, { message: `transient failure before success (scripted, ${category})` });
    };
    const events = withFailFirst(path.events, next);
    out.push({ ...path, kind: 'retry', events, description: `retry each step once: ${path.description}` });
  }
  return out;
}
