/**
 * Drives {@link WorkflowPath}s through the real engine on an in-memory PGlite. Steps are scripted
 * (path-script.ts): a step takes the next outcome the path has for its actor path and holds it until
 * the driver releases it, so parallel regions and child machines follow the path's order exactly;
 * retries fail first as the path says; signals go through `engine.send`; `after` delays fire on the
 * test clock.
 *
 * `check(path)` also proves the guarantees on the path: the run ends in the predicted state, status,
 * context and output; every snapshot the engine persisted (captured by a trigger, so none is missed)
 * restores into an actor in the same state with the same context; the history's `state.entered`
 * rows, step outcomes and progress match the path and the progress events the engine emitted.
 *
 * Runs are independent, so paths may be checked concurrently; a path with an `after` delay moves the
 * shared clock and so runs alone (the kit serializes it).
 */
import { isFinalStatus } from '../../persistence/run-status.ts';
import type { AnyWorkflowDefinition } from '../definition.ts';
import { resolveRetryPolicy, type RetryPolicy } from '../retry-policy.ts';
import type { RunInfo } from '../run-info.ts';
import type { TimerRecord } from '../timers.ts';
import { createTestKit, type TestKit, type TestKitOptions } from './test-kit.ts';
import { getRun } from '../../persistence/runs.ts';
import { capturedCommits, COMMIT_CAPTURE_CHANNEL, insertRunAtPoint, installCommitCapture } from '../../persistence/testing.ts';
import type { PathEvent, PredictedState, WorkflowPath } from './paths.ts';
import { canonicalJson, comparable, restoreProblems } from './restore-check.ts';
import { ClockLock } from './clock-lock.ts';
import { OUTCOME, StepScripts, stepNames, type Slot } from './path-script.ts';
import { dedupe, historyProblems, isSubsequence, type EmittedEvent } from './path-history.ts';

/** Options of {@link createPathKit}. */
export interface PathKitOptions {
  /**
   * Retry policy of every scripted step. Default: 3 attempts with no delay, so retry paths need no
   * clock and can run concurrently (backoff timing has its own tests).
   */
  retry?: Partial<RetryPolicy>;
  /** Older versions of the workflows, registered as the engine's `previousVersions` (runs resumed from fixtures). */
  previousVersions?: readonly AnyWorkflowDefinition[];
  /** How long a run may take to reach each predicted state (real time). Default 15 s. */
  timeoutMs?: number;
  engine?: TestKitOptions['engine'];
}

/** A run persisted part-way through a path: enough to insert it again and resume it (snapshot fixtures). */
export interface PathPoint {
  /** Events of the path applied when it was persisted. */
  eventsApplied: number;
  workflowVersion: string;
  snapshot: unknown;
  stateValue: unknown;
  steps: unknown;
  /** Durable timers, due this long after the point was captured. */
  timers: (Omit<TimerRecord, 'dueAt'> & { dueInMs: number })[];
}

/** What {@link PathKit.check} found. */
export interface PathCheck {
  runId: string;
  run: RunInfo | null;
  /** Persisted snapshots restored and compared. */
  snapshots: number;
  /** The path ended with the run still going; it was then cancelled (and checked). */
  cancelled: boolean;
  /** Empty when every check held. */
  problems: string[];
  /**
   * Executions of one step path that were given the same idempotency key (docs/engine-internals.md:
   * the key is stable across the attempts of one execution, and a later execution gets a new one).
   * Kept apart from `problems` so a test can say what it expects of them; a step path executed again
   * after a handled failure gets a key of its own (its failed execution is counted), so none is
   * expected.
   */
  sharedKeys: string[];
}

/** An engine with scripted steps that plays {@link WorkflowPath}s; see the module comment for what `check` proves. */
export interface PathKit {
  readonly kit: TestKit;
  /** Drives one path; resolves with the run as the path leaves it. */
  run(path: WorkflowPath): Promise<RunInfo>;
  /** Drives one path (from its start, or resumed at a persisted point) and checks it; cancels a run the path leaves going. */
  check(path: WorkflowPath, from?: PathPoint): Promise<PathCheck>;
  /** Drives one path and returns the run as persisted after each event while it was still going. */
  capture(path: WorkflowPath): Promise<PathPoint[]>;
  close(): Promise<void>;
}

/** What the kit reads of a persisted run. */
interface RunRow {
  status: string;
  stateValue: unknown;
  snapshot: { value?: unknown; context?: unknown } | null;
  timers: TimerRecord[];
  steps: unknown;
}

const isAfter = (e: PathEvent) => e.type.startsWith('xstate.after.');

/**
 * Creates a {@link PathKit} for one or more workflows: same names and versions, steps scripted, no
 * concurrency limits (admission is not what paths test).
 */
export async function createPathKit(
  defs: AnyWorkflowDefinition | readonly AnyWorkflowDefinition[],
  options: PathKitOptions = {},
): Promise<PathKit> {
  const list: readonly AnyWorkflowDefinition[] = Array.isArray(defs) ? defs : [defs as AnyWorkflowDefinition];
  const previous = options.previousVersions ?? [];
  const policy = resolveRetryPolicy({ maxAttempts: 3, initialDelayMs: 0, maxDelayMs: 0, jitter: 0, ...options.retry });
  const timeoutMs = options.timeoutMs ?? 15_000;
  const scripts = new StepScripts(policy);

  const names = [...new Set([...list, ...previous].flatMap((d) => stepNames(d.machine)))];
  const asScripted = (def: AnyWorkflowDefinition) => scripts.scripted(def);
  const kit = await createTestKit({
    workflows: list.map(asScripted),
    engine: {
      ...options.engine,
      previousVersions: previous.map(asScripted),
      retryPolicies: Object.fromEntries(names.map((n) => [n, policy])),
    },
  });
  // Records every snapshot the engine persists, and tells the kit about it at once.
  await installCommitCapture(kit.db);

  // Commits per run, bumped by the trigger's notification: a waiter re-reads the row when it moves.
  const commits = new Map<string, number>();
  const wakers = new Map<string, Set<() => void>>();
  const stopListening = await kit.db.listen(COMMIT_CAPTURE_CHANNEL, (runId) => {
    commits.set(runId, (commits.get(runId) ?? 0) + 1);
    for (const wake of wakers.get(runId) ?? []) wake();
  });
  const emitted = new Map<string, EmittedEvent[]>();
  const note = (runId: string, type: string, key: unknown) => {
    if (!emitted.has(runId)) emitted.set(runId, []);
    emitted.get(runId)?.push({ type, key: canonicalJson(key) });
  };
  kit.engine.on('state.entered', (e) => note(e.runId, 'state.entered', [e.path, e.state]));
  for (const type of ['step.succeeded', 'step.failed', 'step.retrying'] as const)
    kit.engine.on(type, (e) => note(e.runId, type, [e.path, e.attempt]));
  kit.engine.on('progress', (e) => note(e.runId, 'progress', [e.path, e.message]));

  const lock = new ClockLock();
  let n = 0;
  const definitionOf = (name: string, version?: string) =>
    [...list, ...previous].find((d) => d.name === name && (version === undefined || d.version === version)) ??
    (() => {
      throw new Error(`createPathKit: no definition ${name}${version ? `@${version}` : ''} was given to the kit.`);
    })();

  async function readRow(runId: string): Promise<RunRow | undefined> {
    const run = await getRun(kit.db, runId);
    return (
      run && {
        status: run.status,
        stateValue: run.stateValue,
        snapshot: run.snapshot as RunRow['snapshot'],
        timers: run.timers as TimerRecord[],
        // Both step columns as one (step-book.ts): a point is inserted again with them all in `steps`.
        steps: { ...(run.stepsDone as Record<string, number> | null), ...(run.steps as Record<string, unknown>) },
      }
    );
  }

  /** Waits until the persisted run satisfies `ok`; the error says what it shows instead. */
  async function waitRow(runId: string, ok: (row: RunRow) => boolean, what: string, ms = timeoutMs): Promise<RunRow> {
    const deadline = Date.now() + ms;
    for (;;) {
      const seen = commits.get(runId) ?? 0;
      let wake: () => void = () => {};
      const moved = new Promise<void>((resolve) => (wake = resolve));
      if (!wakers.has(runId)) wakers.set(runId, new Set());
      wakers.get(runId)?.add(wake);
      try {
        const row = await readRow(runId);
        if (row && ok(row)) return row;
        const left = deadline - Date.now();
        if (left <= 0) {
          const context = canonicalJson(comparable(row?.snapshot?.context));
          throw new Error(
            `run ${runId} did not reach ${what}: it is ${row?.status} in ${JSON.stringify(row?.stateValue)} with context ${context}`,
          );
        }
        if ((commits.get(runId) ?? 0) === seen) await Promise.race([moved, new Promise((r) => setTimeout(r, Math.min(left, 250)))]);
      } finally {
        wakers.get(runId)?.delete(wake);
      }
    }
  }

  const matches = (def: AnyWorkflowDefinition, want: PredictedState) => (row: RunRow) => {
    const sameValue = canonicalJson(row.stateValue) === canonicalJson(want.value);
    const sameContext = canonicalJson(comparable(row.snapshot?.context)) === canonicalJson(comparable(want.context));
    if (want.status === 'error') return row.status === 'failed' && sameValue;
    if (want.status === 'done') {
      const failed = typeof want.value === 'string' && !!def.failureStates?.includes(want.value);
      return row.status === (failed ? 'failed' : 'succeeded') && sameValue && sameContext;
    }
    return !isFinalStatus(row.status) && sameValue && sameContext;
  };

  interface Drive {
    runId: string;
    def: AnyWorkflowDefinition;
    start: number;
    slots: Slot[];
  }

  /** Fires the run's next `after` timer: timers of abandoned runs may come first, so until this run moves. */
  async function fireTimer(runId: string, ok: (row: RunRow) => boolean, type: string): Promise<void> {
    for (let i = 0; i < 100; i++) {
      if (!(await kit.nextTimer())) throw new Error(`run ${runId}: no timer is pending for ${type}`);
      const row = await waitRow(runId, (r) => !ok(r), 'the timer', 200).catch(() => null);
      if (row) return;
    }
    throw new Error(`run ${runId}: ${type} did not fire`);
  }

  async function drive(path: WorkflowPath, from: PathPoint | undefined, atBoundary?: (i: number, row: RunRow) => void): Promise<Drive> {
    const release = await lock.acquire(path.events.slice(from?.eventsApplied ?? 0).some(isAfter));
    try {
      const def = definitionOf(path.workflow, from?.workflowVersion);
      const runId = `${from ? 'resumed' : 'path'}-${++n}`;
      const start = from?.eventsApplied ?? 0;
      const drive: Drive = { runId, def, start, slots: scripts.script(runId, path, start) };
      if (from) await insertRun(runId, def, path, from);
      else await kit.engine.start(path.workflow, path.input, { runId });
      for (let i = start; i <= path.events.length; i++) {
        const want = path.steps[i] as PredictedState;
        const ok = matches(def, want);
        const row = await waitRow(runId, ok, `${JSON.stringify(want.value)} (${want.status}) after ${i} events of "${path.description}"`);
        atBoundary?.(i, row);
        const e = path.events[i];
        if (!e) break;
        if (isAfter(e)) {
          await fireTimer(runId, ok, e.type);
        } else if (OUTCOME.test(e.type)) {
          for (const slot of drive.slots) if (slot.turn === i) slot.release();
        } else {
          await kit.engine.send(runId, e as { type: string });
        }
      }
      return drive;
    } finally {
      release();
    }
  }

  async function insertRun(runId: string, def: AnyWorkflowDefinition, path: WorkflowPath, from: PathPoint): Promise<void> {
    const now = kit.clock.now();
    const timers = from.timers.map(({ dueInMs, ...t }) => ({ ...t, dueAt: now + dueInMs }));
    await insertRunAtPoint(kit.db, {
      id: runId,
      workflow: def.name,
      workflowVersion: from.workflowVersion,
      input: path.input,
      snapshot: from.snapshot,
      stateValue: from.stateValue,
      steps: from.steps,
      timers,
    });
  }

  async function check(path: WorkflowPath, from?: PathPoint): Promise<PathCheck> {
    let d: Drive;
    try {
      d = await drive(path, from);
    } catch (err) {
      return {
        runId: '',
        run: null,
        snapshots: 0,
        cancelled: false,
        problems: [`driving "${path.description}": ${(err as Error).message}`],
        sharedKeys: [],
      };
    }
    const problems: string[] = [];
    const final = path.steps.at(-1) as PredictedState;
    let cancelled = false;
    if (final.status === 'active') {
      await kit.engine.cancel(d.runId, 'the path ends here');
      const row = await waitRow(d.runId, (r) => r.status === 'cancelled', 'cancelled').catch(
        (err: Error) => (problems.push(err.message), null),
      );
      cancelled = !!row;
      if (row && canonicalJson(row.stateValue) !== canonicalJson(final.value))
        problems.push(`cancel moved the run to ${JSON.stringify(row.stateValue)}`);
    }
    const run = await kit.engine.get(d.runId);
    if (final.status === 'done' && canonicalJson(comparable(run.output)) !== canonicalJson(comparable(path.output))) {
      problems.push(`output ${canonicalJson(comparable(run.output))} ≠ predicted ${canonicalJson(comparable(path.output))}`);
    }
    const rows = await capturedCommits(kit.db, d.runId);
    const restored = new Set<string>();
    for (const r of rows) {
      if (!r.snapshot) continue;
      const key = canonicalJson(r.snapshot);
      if (restored.has(key)) continue;
      restored.add(key);
      for (const p of restoreProblems(d.def.machine, r.snapshot, path.input))
        problems.push(`snapshot in ${JSON.stringify(r.snapshot.value)} (${r.status}): ${p}`);
    }
    const persisted = dedupe(rows.filter((r) => r.snapshot).map((r) => r.snapshot?.value));
    const predicted = dedupe(path.steps.slice(d.start).map((s) => s.value));
    if (!isSubsequence(persisted, predicted))
      problems.push(`persisted states ${persisted.join(' → ')} are not in the path's order ${predicted.join(' → ')}`);
    const history = await kit.engine.history(d.runId);
    problems.push(
      ...historyProblems({ history, emitted: emitted.get(d.runId) ?? [], path, start: d.start, from, outcomes: d.slots, policy }),
    );
    const sharedKeys: string[] = [];
    const owners = new Map<string, Slot>();
    for (const slot of d.slots) {
      if (slot.keys.size > 1)
        problems.push(`step ${slot.key}: one execution was given several idempotency keys (${[...slot.keys].join(', ')})`);
      for (const key of slot.keys) {
        const other = owners.get(key);
        if (other && other !== slot)
          sharedKeys.push(`step ${slot.key}: executions in events ${other.turn + 1} and ${slot.turn + 1} share the idempotency key ${key}`);
        owners.set(key, slot);
      }
    }
    scripts.forget(d.runId);
    return { runId: d.runId, run, snapshots: restored.size, cancelled, problems, sharedKeys };
  }

  return {
    kit,
    async run(path) {
      const d = await drive(path, undefined);
      scripts.forget(d.runId);
      return kit.engine.get(d.runId);
    },
    check,
    async capture(path) {
      const points: PathPoint[] = [];
      const version = definitionOf(path.workflow).version;
      const d = await drive(path, undefined, (i, row) => {
        if (isFinalStatus(row.status) || !row.snapshot) return;
        const now = kit.clock.now();
        const timers = (row.timers ?? []).map(({ dueAt, ...t }) => ({ ...t, dueInMs: Math.max(0, dueAt - now) }));
        points.push({
          eventsApplied: i,
          workflowVersion: version,
          snapshot: row.snapshot,
          stateValue: row.stateValue,
          steps: row.steps,
          timers,
        });
      });
      if (path.status === 'active') await kit.engine.cancel(d.runId, 'captured');
      scripts.forget(d.runId);
      return points;
    },
    async close() {
      await stopListening();
      // Steps of runs a path left going never finish: stop at once instead of waiting out the grace period.
      kit.crash();
      await kit.close();
    },
  };
}
