/**
 * What a run's history must show after a path: the root's and each child's `state.entered` rows in the
 * path's order, each step's outcomes (retries, success or failure, with attempt numbers), and the same
 * entries as the events the engine emitted to subscribers while the run went (history and progress
 * hooks must agree).
 */
import type { HistoryEvent } from '../../persistence/run-status.ts';
import { childPath } from '../actor-paths.ts';
import type { ErrorData } from '../errors.ts';
import { shouldRetry, type RetryPolicy } from '../retry-policy.ts';
import type { ChildInstance, WorkflowPath } from './paths.ts';
import { canonicalJson } from './restore-check.ts';

/** An engine event as the kit records it: its type and what identifies it (actor path, state or attempt). */
export interface EmittedEvent {
  type: string;
  key: string;
}

/** What the scripted step at `key` (an actor path) was told to do, in the path's order. */
export interface ScriptedOutcome {
  key: string;
  error?: ErrorData | undefined;
  failFirst: readonly ErrorData[];
}

/** Inputs of {@link historyProblems}. */
export interface HistoryCheckInput {
  history: readonly HistoryEvent[];
  emitted: readonly EmittedEvent[];
  path: WorkflowPath;
  /** Events of the path applied before the run was (re)started. */
  start: number;
  /** Set when the run was resumed from a persisted snapshot (its children had already started). */
  from?: { snapshot: unknown } | undefined;
  outcomes: readonly ScriptedOutcome[];
  policy: RetryPolicy;
}

/** Canonical JSON of each value, consecutive repeats dropped: what per-path history de-duplication records. */
export function dedupe(values: readonly unknown[]): string[] {
  const out: string[] = [];
  for (const v of values) {
    const key = canonicalJson(v);
    if (out.at(-1) !== key) out.push(key);
  }
  return out;
}

/** Whether `sub` appears in `of` in order (not necessarily contiguously). */
export function isSubsequence(sub: readonly string[], of: readonly string[]): boolean {
  let i = 0;
  for (const x of of) if (x === sub[i]) i++;
  return i === sub.length;
}

/** Differences between the run's history (and emitted events) and the path; empty when they agree. */
export function historyProblems({ history, emitted, path, start, from, outcomes: slots, policy }: HistoryCheckInput): string[] {
  const resumed = !!from;
  const problems: string[] = [];
  const entered = (p: string) => history.filter((h) => h.type === 'state.entered' && h.path === p).map((h) => canonicalJson(h.state));
  const values = path.steps.slice(start).map((s) => s.value);
  const root = resumed ? dedupe(values).slice(1) : dedupe(values);
  if (canonicalJson(entered('')) !== canonicalJson(root))
    problems.push(`history: root states ${entered('').join(' → ')} ≠ path ${root.join(' → ')}`);
  // Children: each invocation's states, in order. Resumed, a child that was already running had
  // entered its first state in the run's earlier life, and one that had ended is not seen again.
  const expectedValues = new Map<string, unknown[]>();
  const invocations = new Map<string, number>();
  const add = (instances: readonly ChildInstance[], prefix: string, resumedAt: number | null) => {
    for (const inst of instances) {
      if (resumedAt !== null && inst.until !== null && inst.until < resumedAt) continue;
      const key = childPath(prefix, inst.id);
      const states = resumedAt !== null && inst.from <= resumedAt ? inst.states.slice(1) : inst.states;
      expectedValues.set(key, [...(expectedValues.get(key) ?? []), ...states]);
      invocations.set(key, (invocations.get(key) ?? 0) + 1);
      add(inst.children, key, null);
    }
  };
  add(path.children, '', from ? start : null);
  const expectedChildren = new Map([...expectedValues].map(([k, v]) => [k, dedupe(v)]));
  const childPaths = new Set(history.filter((h) => h.type === 'state.entered' && h.path !== '').map((h) => h.path));
  for (const p of from ? expectedChildren.keys() : new Set([...childPaths, ...expectedChildren.keys()])) {
    const want = expectedChildren.get(p) ?? [];
    const got = entered(p);
    if ((invocations.get(p) ?? 0) > 1) {
      // XState reports a finished child's last snapshot after its parent has handled the child's
      // done event (Actor.update relays it first), so when the parent invokes the same id again the
      // new child's first state is recorded before the old one's last, and per-path de-duplication
      // can hide entries. Check what holds anyway: the first state, and nothing unexpected.
      if (got[0] !== want[0] || got.some((x) => !want.includes(x)))
        problems.push(`history: child ${p} (invoked ${invocations.get(p)} times) states ${got.join(' → ')} ≠ path ${want.join(' → ')}`);
    } else if (canonicalJson(got) !== canonicalJson(want))
      problems.push(`history: child ${p} states ${got.join(' → ')} ≠ path ${want.join(' → ')}`);
  }
  // Step outcomes: per actor path, in order; attempts too unless resumed (the attempt counter carries on).
  const recorded = (p: string) =>
    history
      .filter((h) => h.path === p && /^step\.(succeeded|failed|retrying)$/.test(h.type))
      .map((h) => (resumed ? h.type : `${h.type}#${h.attempt}`));
  for (const key of new Set(slots.map((s) => s.key))) {
    const want: string[] = [];
    for (const slot of slots.filter((s) => s.key === key)) {
      let attempt = 1;
      for (; attempt <= slot.failFirst.length; attempt++) want.push(`step.retrying#${attempt}`);
      if (slot.error) for (; shouldRetry(policy, slot.error, attempt); attempt++) want.push(`step.retrying#${attempt}`);
      want.push(`${slot.error ? 'step.failed' : 'step.succeeded'}#${attempt}`);
    }
    const wanted = resumed ? want.map((w) => w.replace(/#\d+$/, '')) : want;
    if (canonicalJson(recorded(key)) !== canonicalJson(wanted))
      problems.push(`history: step ${key} ${recorded(key).join(', ')} ≠ path ${wanted.join(', ')}`);
  }
  // What subscribers saw is what was persisted.
  const fromHistory = history.flatMap((h) => {
    if (h.type === 'state.entered') return [{ type: h.type, key: canonicalJson([h.path, h.state]) }];
    if (/^step\.(succeeded|failed|retrying)$/.test(h.type)) return [{ type: h.type, key: canonicalJson([h.path, h.attempt]) }];
    if (h.type === 'progress') return [{ type: h.type, key: canonicalJson([h.path, (h.data as { message?: string }).message]) }];
    return [];
  });
  const events = emitted;
  for (const type of ['state.entered', 'step.succeeded', 'step.failed', 'step.retrying', 'progress']) {
    const a = fromHistory.filter((x) => x.type === type).map((x) => x.key);
    const b = events.filter((x) => x.type === type).map((x) => x.key);
    if (canonicalJson(a) !== canonicalJson(b)) problems.push(`events: ${type} emitted ${b.join(' ')} ≠ history ${a.join(' ')}`);
  }
  return problems;
}
