/**
 * Running one step inside a run: the checkpoint barrier, attempts, durable backoff, per-attempt
 * timeout, durable sleep, history and events. The step's bookkeeping (step-record.ts) lives in
 * `rmapp_runs.steps` under its path, so attempts and wake-up times survive a crash.
 */
import { context as otelContext, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api';
import type { AnyActorRef } from 'xstate';
import type { HistoryEntry } from '../persistence/runs.ts';
import { RunNotFoundError, storableValue, ValidationError, WorkflowError, type ErrorData } from './errors.ts';
import { dueNever } from './clock.ts';
import { findUnstorableText } from './durable-check.ts';
import { backoffDelay, shouldRetry } from './retry-policy.ts';
import type { SessionHost } from './session-host.ts';
import type { StepContext, StepFunction, StepOptions } from './step.ts';
import { ATTR, tracer } from './telemetry.ts';
import { jsonBytes, SizeLimitError, type ArtifactRef } from './limits.ts';
import { loadArtifact, saveArtifact } from '../persistence/artifacts.ts';
import { faultsArmed, reachFaultPoint } from './fault-points.ts';
import { checkText, MAX_KEY_BYTES } from './request-checks.ts';
import type { StepRecord } from './step-record.ts';

/** The session surface a step uses. */
export interface StepSession {
  readonly runId: string;
  /** The lease epoch the session holds the run at (with the host's owner, the fence of its writes). */
  readonly epoch: number;
  readonly definition: { readonly name: string; readonly version: string };
  /** Context of the run segment's span: step spans are its children. */
  readonly traceContext: Context;
  readonly segmentSpan: Span;
  /** The executions whose work runs now, by their signals (two may share a path for a moment). */
  readonly executing: Set<AbortSignal>;
  /**
   * Step functions called and not yet returned. An attempt can end before its function does (a timeout,
   * a stop that aborted it): a function that ignores its abort still runs, and its run must not be handed
   * to another worker while it may (session-release.ts, `releaseSession`).
   */
  readonly calls: Map<Promise<unknown>, StepCallState>;
  /** Paths of steps in a durable sleep, with each sleep's due time: one per sleep in flight. */
  readonly sleeping: Map<string, number[]>;
  readonly hostRef: SessionHost;
  record(entry: HistoryEntry): void;
  /** Something the next write carries changed (a step record) without a history entry. */
  markDirty(): void;
  persisted(signal?: AbortSignal): Promise<void>;
  /** The run is no longer held (a fenced write matched nothing): stop at once and write nothing more. */
  lose(reason: 'fence'): void;
  /** False (and the session stops) when the run is no longer held; confirms an untrusted lease first. */
  ownsRun(): boolean | Promise<boolean>;
  /** Steps whose work is running now: the work a lease that cannot be trusted must stop. */
  working: number;
  /** The session's write in flight gives the run up (an eviction, or the end): no work may resume. */
  readonly releasing: boolean;
  /** The session is over (the run was lost, given back or finished): its lease fences nothing any more. */
  readonly ended: boolean;
  /** When the run was created: with the id, which run it is (an id may be used again once its run is pruned). */
  readonly createdAt: Date;
  maybeEvict(): void;
}

/** A step function called and not yet returned: `parked` while it waits in `ctx.sleep` (its run may leave memory then). */
export interface StepCallState {
  parked: boolean;
}

interface StepCall<TOutput, TInput> {
  self: AnyActorRef;
  path: string;
  record: StepRecord;
  fn: StepFunction<TOutput, TInput>;
  options: StepOptions;
  input: TInput;
  signal: AbortSignal;
  /**
   * False once this execution is over for its path: its machine stopped it, or a newer execution at the
   * path began (a machine replaced while its own step was finishing starts the new one first). A stale
   * execution changes no record: the record is the newer one's.
   */
  current(): boolean;
}

/** The error a step's actor rejects with once it has no attempts left; plain data once persisted. */
export class StepFailedError extends WorkflowError {
  constructor(
    readonly step: string,
    error: ErrorData,
  ) {
    super(error.message, {
      code: error.code,
      category: error.category,
      retryAfterMs: error.retryAfterMs,
      details: { ...error.details, step },
    });
    this.name = error.name;
    if (error.stack) this.stack = error.stack;
  }
}

function never(signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

/** Refuses a sleep that cannot be stored: not a number of milliseconds, or ending past 9999-12-31. */
function checkSleep(ms: unknown, now: number): void {
  if (typeof ms === 'number' && !Number.isNaN(ms) && !dueNever(now, ms)) return;
  throw new ValidationError(
    `ctx.sleep(ms): ms must be a number of milliseconds that ends by 9999-12-31 (got ${String(ms)}); to wait for an event, leave the step and let the machine wait for it.`,
  );
}

/**
 * Leaves an attempt recorded as started (or parked in `ctx.sleep`) to the run's next owner because this
 * worker is draining: marked parked — written with the drain's last commit — so that it resumes as the
 * same attempt (`step.resumed`), and `step.postponed` says why its work did not run here. Never returns.
 */
async function postpone(
  session: StepSession,
  record: StepRecord,
  at: { path: string; step: string; attempt: number },
  signal: AbortSignal,
): Promise<never> {
  record.parked = true;
  session.record({ type: 'step.postponed', ...at, data: { reason: 'the worker is stopping' } });
  return never(signal);
}

/**
 * Waits until `due`, marked as sleeping so the run can be evicted meanwhile. Each sleep in flight keeps
 * its own due time: with one per path, the second sleep of a `Promise.race([ctx.sleep(1_000),
 * ctx.sleep(60_000)])` replaced the first's, and a run evicted then woke at the later one, a minute late
 * (test/sleeps-race-eviction.test.ts). `inFlight` gets the way to forget the due time early: an attempt
 * that ends forgets those of its sleeps still in flight (one a `Promise.race` left behind), which kept the
 * run from leaving memory while near and was never tried again once past, or set its wake
 * (test/rv-race-leftover-sleep.test.ts).
 */
async function sleepUntil(session: StepSession, path: string, due: number, signal: AbortSignal, inFlight?: Set<() => void>): Promise<void> {
  const host = session.hostRef;
  const ms = due - host.clock.now();
  if (ms <= 0) return;
  let dues = session.sleeping.get(path);
  if (!dues) session.sleeping.set(path, (dues = []));
  dues.push(due);
  const list = dues;
  let listed = true;
  const forget = () => {
    if (!listed) return;
    listed = false;
    inFlight?.delete(forget);
    const i = list.indexOf(due);
    if (i !== -1) list.splice(i, 1);
    if (list.length === 0 && session.sleeping.get(path) === list) session.sleeping.delete(path);
  };
  inFlight?.add(forget);
  try {
    const done = host.clock.sleep(ms, signal);
    session.maybeEvict();
    await done;
  } finally {
    forget();
  }
}

/**
 * An attempt's timeout, stopped while the attempt is parked in `ctx.sleep` and started again, in full,
 * when it wakes: a durable sleep is no work. A run that leaves memory in a sleep resumes the attempt
 * with a new timeout after it, so a sleep counted here made the outcome depend on `evictAfterMs` (a
 * 1 s timeout around a 2.5 s sleep failed in memory and succeeded evicted: test/b2-sleep-timeout.test.ts).
 */
interface AttemptTimer {
  pause(): void;
  resume(): void;
}

function withTimeout<T>(
  work: (signal: AbortSignal, timer: AttemptTimer) => Promise<T>,
  timeoutMs: number | undefined,
  signal: AbortSignal,
  clock: SessionHost['clock'],
): Promise<T> {
  if (!timeoutMs) return work(signal, { pause: () => {}, resume: () => {} });
  const timeout = new AbortController();
  const combined = AbortSignal.any([signal, timeout.signal]);
  return new Promise<T>((resolve, reject) => {
    let timer: unknown;
    let armed = false;
    let settled = false;
    const arm = () => {
      armed = true;
      timer = clock.setTimeout(() => {
        const err = new WorkflowError(`Step attempt timed out after ${timeoutMs} ms.`, { code: 'STEP_TIMEOUT', category: 'timeout' });
        timeout.abort(err);
        reject(err);
      }, timeoutMs);
    };
    const disarm = () => {
      if (armed) clock.clearTimeout(timer);
      armed = false;
    };
    arm();
    const control = {
      pause: () => {
        if (!timeout.signal.aborted) disarm();
      },
      resume: () => {
        if (!settled && !armed && !timeout.signal.aborted) arm();
      },
    };
    work(combined, control)
      .then(resolve, reject)
      .finally(() => {
        settled = true;
        disarm();
      });
  });
}

/** Names of the artifacts that hold offloaded step outputs; refused to `ctx.saveArtifact`. */
const STEP_OUTPUT_PREFIX = 'step-output/';

/**
 * Keeps the snapshot small: an output over `limits.stepOutputInlineBytes` is stored as an artifact and
 * the machine receives an {@link ArtifactRef}; one over `limits.stepOutputBytes` fails the attempt.
 */
async function offloadLargeOutput(session: StepSession, path: string, done: number, output: unknown): Promise<unknown> {
  const { limits, db } = session.hostRef;
  if (output === undefined) return output;
  let json: string | undefined;
  let unwritable: string | null = null;
  try {
    json = JSON.stringify(output);
  } catch (err) {
    // A BigInt or a cycle: plain XState delivers such an output, and the machine takes what it needs
    // from it (what reaches the context is checked there). Measured as a copy JSON can write; it threw
    // here, after the step's work, and failed the step (test/h219-xs-step-output.test.ts).
    unwritable = (err as Error).message;
    json = JSON.stringify(storableValue(output));
  }
  if (json === undefined) return output;
  const bytes = jsonBytes(json);
  if (bytes <= limits.stepOutputInlineBytes) return output;
  if (unwritable !== null) {
    throw new ValidationError(
      `The output of step ${path} is over limits.stepOutputInlineBytes (${bytes} bytes), so it is stored as an artifact, and JSON cannot write it (${unwritable}); return plain data, or less of it.`,
      [{ path: 'output', message: unwritable }],
    );
  }
  if (bytes > limits.stepOutputBytes) {
    throw new SizeLimitError(
      `The output of step ${path}`,
      'stepOutputBytes',
      bytes,
      limits.stepOutputBytes,
      'Return less, or save it with ctx.saveArtifact.',
    );
  }
  // Postgres refuses a NUL or a lone surrogate: name the value (an inline output holding one fails the
  // run's write with the same kind of message, durable-check.ts).
  const bad = findUnstorableText(output, 'output');
  if (bad) throw new ValidationError(`The output of step ${path}: ${bad.path} ${bad.problem}.`, [{ path: bad.path, message: bad.problem }]);
  // Named like the execution's key: `x#2`'s first output and `x`'s second are two artifacts.
  const name = `${STEP_OUTPUT_PREFIX}${executionName(path, done + 1)}`;
  if (!(await saveArtifact(db, session.runId, name, json, bytes))) throw new RunNotFoundError(session.runId);
  const ref: ArtifactRef = { $artifact: name, bytes };
  return ref;
}

/** What a step that was stopped (or replaced by a newer execution at its path) gets when it goes on anyway. */
function stoppedError(signal: AbortSignal): Error {
  return (
    (signal.reason as Error | undefined) ??
    new WorkflowError('The step was stopped before it finished.', { code: 'RUN_LEFT', category: 'cancelled' })
  );
}

/**
 * Ends the step's current execution as failed (no attempt left): the next execution of its path is a
 * new one; history and hooks say so. Returns the error the step's actor rejects with.
 */
function failExecution(
  session: StepSession,
  record: StepRecord,
  f: { step: string; path: string; attempt: number; durationMs: number; error: ErrorData },
): StepFailedError {
  record.attempt = 0;
  record.failed = true;
  session.record({ type: 'step.failed', path: f.path, step: f.step, attempt: f.attempt, data: { error: f.error } });
  session.hostRef.events.emit('step.failed', { runId: session.runId, workflow: session.definition.name, ...f });
  return new StepFailedError(f.step, f.error);
}

/**
 * The idempotency key of a path's `execution`th execution: `<run>/<path>`, then `<run>/<path>#2`, … A
 * path holding `#` (an invoke or spawn id is any string) always ends in its execution's number —
 * `<run>/x#2#1` — so its keys never meet another path's: `x#2`'s first execution and `x`'s second both
 * got `<run>/x#2` before.
 */
export function stepKey(runId: string, path: string, execution: number): string {
  return `${runId}/${executionName(path, execution)}`;
}

/** A path's `execution`th execution, as its key and its offloaded output's artifact name spell it (`stepKey`). */
function executionName(path: string, execution: number): string {
  return execution === 1 && !path.includes('#') ? path : `${path}#${execution}`;
}

/** Runs a step to success, to its last failed attempt, or until its signal aborts. */
export async function executeStep<TOutput, TInput>(session: StepSession, call: StepCall<TOutput, TInput>): Promise<TOutput> {
  const { self, path, record, fn, options, input, signal } = call;
  const host = session.hostRef;
  const step = typeof self.src === 'string' ? self.src : path;
  const policy = host.retryPolicy(options.kind ?? step, options.retry);
  for (;;) {
    if (record.nextAttemptAt !== undefined) {
      await sleepUntil(session, path, record.nextAttemptAt, signal);
      record.nextAttemptAt = undefined;
    }
    // A draining worker starts no attempt: the step waits, uncounted, for the run's next owner.
    if (host.stopping) await never(signal);
    if (record.attempt === 0 && record.failed) {
      // A new execution after a failed one (e.g. a loop, or the next child under the same id).
      record.done += 1;
      record.failed = undefined;
    }
    // An attempt parked in a durable sleep resumes as itself; anything else is a new attempt.
    const resumed = record.parked === true && record.attempt > 0;
    record.parked = undefined;
    if (!resumed && record.attempt >= policy.maxAttempts) {
      // Every attempt allowed was started and none finished: each one's worker died or lost the run
      // while it ran (a crash loop, or work that blocks the process past its lease). Running it again
      // would never end; it fails like an attempt that timed out, and the machine can handle it.
      const error = host.toError(
        new WorkflowError(
          `Step ${step} was started ${record.attempt} times (its limit) and never finished: each attempt's worker died or lost the run while it ran.`,
          { code: 'STEP_NEVER_FINISHED', category: 'timeout' },
        ),
      );
      record.sleeps = undefined;
      record.lastError = error;
      throw failExecution(session, record, { step, path, attempt: policy.maxAttempts, durationMs: 0, error });
    }
    const attempt = resumed ? record.attempt : ++record.attempt;
    const idempotencyKey = stepKey(session.runId, path, record.done + 1);
    // The key is `<run>/<path>` unless this path already completed before (a loop) or holds `#`: record it then only.
    const keyData = idempotencyKey !== `${session.runId}/${path}` ? { data: { idempotencyKey } } : {};
    session.record({ type: resumed ? 'step.resumed' : 'step.started', path, step, attempt, ...keyData });
    // From here the step counts as running: a draining worker waits for it (within its grace period).
    session.executing.add(signal);
    let release: () => void;
    try {
      // The checkpoint barrier: the snapshot that entered this step and the attempt number are durable
      // before any work starts, so a crash can only ever repeat this step, never an earlier one.
      await session.persisted(signal);
      // A per-worker limit on this kind of step (e.g. agent runs): wait for a slot, not counted as work.
      release = await host.acquireStepSlot(options.kind ?? step, signal);
    } catch (err) {
      session.executing.delete(signal);
      // The drain ended the wait for a slot: the attempt never began (see below).
      if (host.stopping && !signal.aborted) await postpone(session, record, { path, step, attempt }, signal);
      throw err;
    }
    // The worker began to drain while the start's commit or the slot was awaited: the work does not
    // start here (a drain starts no attempt), and the drain does not wait for it. The attempt is durable
    // as started, so it is parked: the run's next owner resumes it as the same attempt, not spending
    // one of the step's attempts on work that never ran.
    if (host.stopping) {
      session.executing.delete(signal);
      release();
      await postpone(session, record, { path, step, attempt }, signal);
    }
    const workflow = session.definition.name;
    host.events.emit('step.started', { runId: session.runId, workflow, step, path, attempt, idempotencyKey });
    // A listener may have stopped the run (cancellation, a simulated crash), or the lease may have gone
    // while the process was paused: then the work never starts. A lease merely not renewed in time (a
    // slow or failed renewal) is confirmed here rather than given up: giving it up left an attempt
    // recorded as started that never ran, and spent one of the step's attempts.
    // Synchronous while the lease is trusted: the work starts in the same turn as the event above.
    const owned = session.ownsRun();
    if (signal.aborted || !(owned === true || (owned !== false && (await owned))) || signal.aborted) {
      session.executing.delete(signal);
      release();
      throw (
        signal.reason ?? new WorkflowError('The run left this worker before the step started.', { code: 'RUN_LEFT', category: 'cancelled' })
      );
    }
    session.working += 1;
    // This attempt's share of `working` and `executing`, held at most once: a sleep gives it back (if
    // held) and its wake takes it again (if not), the end of the attempt gives it back once. A sleep
    // that outlives its attempt (a timeout) takes nothing back: the attempt is over.
    let counted = true;
    let over = false;
    let attemptSignal = signal;
    /** This attempt's sleeps in flight, each forgetting its due time (`sleepUntil`): forgotten when the attempt ends. */
    const sleepsInFlight = new Set<() => void>();
    /** Why this attempt can go no further: its signal's reason (a timeout, the run left), else RUN_LEFT. */
    const attemptOver = (): unknown =>
      attemptSignal.reason ?? new WorkflowError('This attempt is over.', { code: 'RUN_LEFT', category: 'cancelled' });
    let attemptTimer: AttemptTimer = { pause: () => {}, resume: () => {} };
    let callState: StepCallState | undefined;
    const startedAt = host.clock.now();
    const span = tracer().startSpan(
      `workflow.step ${step}`,
      {
        attributes: {
          [ATTR.id]: session.runId,
          [ATTR.name]: workflow,
          [ATTR.version]: session.definition.version,
          [ATTR.step]: step,
          [ATTR.stepPath]: path,
          [ATTR.attempt]: attempt,
        },
      },
      session.traceContext,
    );
    const spanContext = trace.setSpan(session.traceContext, span);
    let sleepIndex = 0;
    /**
     * This attempt's work is no longer the run's while its session still holds the run: the attempt ended
     * (or timed out), was aborted, or its execution was stopped. A session that is over is left to the
     * database's fence, which refuses it (the lease is another's, given back, or the run finished).
     */
    const stale = () => !session.ended && (over || attemptSignal.aborted || !call.current());
    const staleSave = (name: string) =>
      new WorkflowError(
        `Artifact "${name}" was not saved with { fenced: true }: attempt ${attempt} of step ${step} in run ${session.runId} is over (it timed out, the run was cancelled or left this worker, or its machine left the step), so the step stops here.`,
        { code: 'RUN_LEFT', category: 'cancelled', details: { runId: session.runId, step, attempt } },
      );
    const ctx: StepContext<TInput> = {
      input,
      signal,
      runId: session.runId,
      stepPath: path,
      idempotencyKey,
      attempt,
      progress: (message, data) => {
        if (!call.current()) throw stoppedError(signal);
        // Recorded in the run's history: data JSON cannot write would fail the run's next write instead.
        // What is recorded is a copy made now: the write comes later, and data the step changed or
        // closed meanwhile (a BigInt put in, a toJSON that then throws) failed the run, or wedged its
        // whole commit batch (test/adv3-progress-later.test.ts).
        if (typeof message !== 'string') {
          // A BigInt message failed the run's next write; a number was stored as one.
          throw new ValidationError(`ctx.progress: the message must be a string (got ${typeof message}).`, [
            { path: 'message', message: 'must be a string' },
          ]);
        }
        const copy = data === undefined || data === null ? { value: undefined } : jsonCopy(data);
        if ('error' in copy)
          throw new ValidationError(`ctx.progress(${JSON.stringify(message.slice(0, 80))}): ${copy.error}.`, [
            { path: 'data', message: copy.error },
          ]);
        if (copy.value !== undefined && (copy.value === null || typeof copy.value !== 'object' || Array.isArray(copy.value))) {
          // Spread into the entry, a string or an array became {"0": …, "1": …}.
          throw new ValidationError(`ctx.progress(${JSON.stringify(message.slice(0, 80))}): data must be an object of named values.`, [
            { path: 'data', message: 'must be an object' },
          ]);
        }
        session.record({
          type: 'progress',
          path,
          step,
          attempt,
          // The message last: data holding a "message" of its own does not replace it.
          data: { ...(copy.value as Record<string, unknown> | undefined), message },
        });
        host.events.emit('progress', { runId: session.runId, path, message, data });
      },
      saveArtifact: async (name, value, options) => {
        // Not refused once the execution is stopped: a cancelled agent's last transcript is saved after
        // its abort. Refused once the run is gone (pruned): persistence/artifacts.ts.
        checkText('The artifact name', name, MAX_KEY_BYTES);
        // A URL path reads such a name as "." or ".." (the dashboard and the API could not serve it).
        if (/^\.+$/.test(name))
          throw new ValidationError(`Artifact "${name.slice(0, 80)}": dots alone are no name a URL can hold; choose another.`);
        if (name.startsWith(STEP_OUTPUT_PREFIX)) {
          throw new ValidationError(
            `Artifact "${name.slice(0, 80)}": names starting with "${STEP_OUTPUT_PREFIX}" hold the engine's offloaded step outputs; choose another name.`,
          );
        }
        // Postgres refuses a NUL or a lone surrogate in jsonb with a message that names neither the
        // artifact nor the fix: say which value it is (a test's output may hold either; clean it first).
        const bad = findUnstorableText(value, 'value');
        if (bad) {
          throw new ValidationError(`Artifact "${name}": ${bad.path} ${bad.problem}.`, [{ path: bad.path, message: bad.problem }]);
        }
        const json = JSON.stringify(value ?? null) as string | undefined;
        if (json === undefined) {
          throw new ValidationError(
            `Artifact "${name}": the value is ${typeof value === 'object' ? 'an object whose toJSON gives undefined' : `a ${typeof value}`}, which JSON writes as nothing; save data (null for none).`,
            [{ path: 'value', message: 'JSON writes it as nothing' }],
          );
        }
        const bytes = jsonBytes(json);
        if (bytes > host.limits.artifactBytes) {
          throw new SizeLimitError(
            `Artifact "${name}"`,
            'artifactBytes',
            bytes,
            host.limits.artifactBytes,
            'Store less, or raise the limit.',
          );
        }
        if (options?.fenced) {
          // Work that is no longer the run's here is refused too, though this session still holds the
          // run: an attempt that timed out (its retry may have made the effect already), one aborted by
          // a cancellation (the run is `running` until the cleanup's end is written), an execution its
          // machine left. Its effect would be made beside or after the run's own, and its record would
          // replace the one the run's own work wrote (test/h8-fenced-save-stale-attempt.test.ts).
          if (stale()) throw staleSave(name);
          const saved = await saveArtifact(host.db, session.runId, name, json, bytes, {
            owner: host.owner,
            epoch: session.epoch,
            createdAt: session.createdAt,
          });
          // Over while the write was in flight: the record is written, the effect it guards must not be.
          if (saved && stale()) throw staleSave(name);
          if (saved) return;
          // The session lost the run (or its lease ran out): the effect this record guards must not happen.
          session.lose('fence');
          throw new WorkflowError(
            `Artifact "${name}" was not saved: this worker (${host.owner}) no longer holds run ${session.runId} at lease epoch ${session.epoch} (its lease expired or another worker took the run over), so the step stops here.`,
            { code: 'RUN_LEFT', category: 'cancelled', details: { runId: session.runId, owner: host.owner, epoch: session.epoch } },
          );
        }
        if (!(await saveArtifact(host.db, session.runId, name, json, bytes))) throw new RunNotFoundError(session.runId);
      },
      getArtifact: async <T>(name: string) =>
        (await loadArtifact(host.db, session.runId, checkText('The artifact name', name, MAX_KEY_BYTES))) as T | undefined,
      sleep: async (ms) => {
        // A stopped execution that sleeps anyway would write its due time into the record the path's
        // next execution uses (whose own sleep then ended at once).
        if (!call.current()) throw stoppedError(signal);
        // Nor does an attempt that is over (it timed out and ignored its abort): the record is the next
        // attempt's, whose own sleep took the stale one's due time for its own
        // (test/b2-stale-attempt-sleep.test.ts).
        if (over) throw attemptOver();
        checkSleep(ms, host.clock.now());
        // A negative sleep (-Infinity too) is no sleep.
        ms = Math.max(0, ms);
        const index = sleepIndex++;
        record.sleeps ??= [];
        let due = record.sleeps[index];
        if (due === undefined) {
          due = host.clock.now() + ms;
          record.sleeps[index] = due;
          record.parked = true;
          session.record({ type: 'step.sleeping', path, step, attempt, data: { until: new Date(due).toISOString() } });
          await session.persisted(signal);
          // Already over while its start was written: the attempt works on, and is no longer parked.
          if (due <= host.clock.now()) await wokeDurably(false);
        } else if (due > host.clock.now()) {
          // A resumed attempt sleeping again what is left: its resume was written as working
          // (`record.parked` cleared), so a worker killed in this sleep left the next owner a new
          // attempt, one of the step's attempts spent on a sleep (test/b2-sleep-then-crash.test.ts).
          record.parked = true;
          session.markDirty();
          await session.persisted(signal);
          if (due <= host.clock.now()) await wokeDurably(false);
        }
        if (due <= host.clock.now()) return;
        if (over) throw attemptOver();
        record.parked = true;
        // The attempt's share is given back once, however many of its sleeps are in flight: each sleep
        // gave it back before, and two at once (`Promise.all`, `Promise.race`) left `working` one short,
        // so a step working beside them, or after them in the same session, was never self-fenced
        // (test/b3-sleeps-in-flight.test.ts).
        if (counted) {
          session.executing.delete(signal);
          session.working -= 1;
          counted = false;
          attemptTimer.pause();
          // Its `stepConcurrency` slot too, taken again at the wake: a durable sleep is no work, and a run
          // that leaves memory in it gives the slot back anyway (test/b3-sleep-step-slot.test.ts).
          release();
        }
        const sleepingCall = callState;
        if (sleepingCall) sleepingCall.parked = true;
        try {
          await sleepUntil(session, path, due, attemptSignal, sleepsInFlight);
        } finally {
          record.parked = undefined;
          if (sleepingCall) sleepingCall.parked = false;
        }
        // Waking is starting work again. A session giving the run up (its eviction's write in flight,
        // or in doubt) resumes nothing: the run's next owner resumes the attempt. Otherwise the run must
        // still be this session's, checked as for a new attempt.
        if (session.releasing && !over) await never(signal);
        // A draining worker resumes no sleeping attempt either: it stays parked for the run's next owner.
        if (host.stopping && !over) await postpone(session, record, { path, step, attempt }, signal);
        const owned = over ? false : session.ownsRun();
        if (!(owned === true || (owned !== false && (await owned))) || over || attemptSignal.aborted) {
          throw (
            attemptSignal.reason ??
            signal.reason ??
            new WorkflowError('The run left this worker while the step slept.', { code: 'RUN_LEFT', category: 'cancelled' })
          );
        }
        // The first sleep to wake takes the share back: the function may work again from here, whatever
        // other sleep of the attempt is still in flight (one a `Promise.race` left behind). Two sleeps
        // waking together take it once.
        if (!counted) {
          resuming ??= resume().finally(() => (resuming = undefined));
          await resuming;
        }
      },
    };
    let resuming: Promise<void> | undefined;
    /**
     * The attempt takes back what its sleep gave: its `stepConcurrency` slot, waited for still parked (a
     * crash meanwhile resumes it as the same attempt; a drain postpones it, as a wait for a slot before
     * an attempt's work), then its share of `working` once its wake is written.
     */
    const resume = async () => {
      record.parked = true;
      try {
        release = await host.acquireStepSlot(options.kind ?? step, attemptSignal);
      } catch (err) {
        if (host.stopping && !over && !signal.aborted) await postpone(session, record, { path, step, attempt }, signal);
        throw err;
      }
      try {
        await wokeDurably(true);
      } catch (err) {
        // The attempt ended meanwhile (its function returned, leaving this sleep behind): its end gave
        // back the slot it held then, not this one.
        if (over) release();
        throw err;
      }
      attemptTimer.resume();
      session.executing.add(signal);
      session.working += 1;
      counted = true;
    };
    /**
     * The attempt leaves its sleep and works again: written before the work goes on. The record said
     * parked since the sleep began, and a worker that died in the work after it (an out-of-memory, a
     * kill) left the next owner an attempt to resume as itself rather than a new one: every worker that
     * claimed the run died in the step in turn, none counted, and STEP_NEVER_FINISHED never came
     * (test/b2-sleep-then-crash.test.ts).
     */
    const wokeDurably = async (afterWait: boolean) => {
      record.parked = undefined;
      session.markDirty();
      await session.persisted(attemptSignal);
      // A drain that began during the write resumes no attempt that waited: it stays for the next owner.
      // One that never stopped working (its sleep was over once written) is a running step, which a drain lets finish.
      if (afterWait && host.stopping && !over) await postpone(session, record, { path, step, attempt }, signal);
      if (over || attemptSignal.aborted) {
        throw attemptOver();
      }
    };
    if (faultsArmed) reachFaultPoint('before-side-effect', [step, path]);
    try {
      // The work runs inside the step span's context: Octokit, git and agent calls become its children.
      const output = await withTimeout(
        (s, timer) => {
          attemptSignal = s;
          attemptTimer = timer;
          const called = otelContext.with(spanContext, () => Promise.resolve().then(() => fn({ ...ctx, signal: s })));
          callState = { parked: false };
          session.calls.set(called, callState);
          const returned = () => {
            session.calls.delete(called);
            // An eviction put off for this call (an attempt that timed out, in its backoff) may go now.
            session.maybeEvict();
          };
          called.then(returned, returned);
          return called;
        },
        options.timeoutMs,
        signal,
        host.clock,
      );
      // The effect happened, nothing says so yet: the crash that makes a step run twice.
      if (faultsArmed) reachFaultPoint('after-side-effect', [step, path]);
      // Stopped meanwhile (its machine left the state, or the run left the worker) and finished anyway:
      // the output is no one's, and the path's record may already be a new execution's, whose key a
      // late `done += 1` changed between its attempts.
      if (!call.current()) throw stoppedError(signal);
      const delivered = await offloadLargeOutput(session, path, record.done, output);
      // Saving a large output is a round trip: the step may have been stopped meanwhile.
      if (!call.current()) throw stoppedError(signal);
      span.end();
      record.done += 1;
      record.attempt = 0;
      record.sleeps = undefined;
      record.parked = undefined;
      record.lastError = undefined;
      const durationMs = host.clock.now() - startedAt;
      session.record({ type: 'step.succeeded', path, step, attempt, data: { durationMs } });
      host.events.emit('step.succeeded', { runId: session.runId, workflow, step, path, attempt, durationMs });
      return delivered as TOutput;
    } catch (err) {
      const error = host.toError(err);
      // The error as it is kept (errors.ts MAX_ERROR_TEXT), not as thrown: a 20 MB message made a 40 MB
      // span. Its own code, if it has one, is the exception's type, as OpenTelemetry takes it from an error.
      const thrownCode = (err as { code?: unknown } | null)?.code;
      span.recordException({
        name: error.name,
        message: error.message,
        ...(error.stack === undefined ? {} : { stack: error.stack }),
        ...(typeof thrownCode === 'string' || typeof thrownCode === 'number' ? { code: String(thrownCode).slice(0, 1_000) } : {}),
      });
      span.setAttributes({ [ATTR.errorCategory]: error.category, [ATTR.errorCode]: error.code });
      span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
      span.end();
      // Aborted by cancellation or by the worker giving the run up: the machine no longer listens.
      if (!call.current()) throw signal.aborted ? err : stoppedError(signal);
      const durationMs = host.clock.now() - startedAt;
      record.lastError = error;
      record.sleeps = undefined;
      record.parked = undefined;
      if (shouldRetry(policy, error, attempt)) {
        const delayMs = backoffDelay(policy, attempt, error);
        record.nextAttemptAt = host.clock.now() + delayMs;
        const nextAttemptAt = new Date(record.nextAttemptAt).toISOString();
        session.record({ type: 'step.retrying', path, step, attempt, data: { error, delayMs, nextAttemptAt } });
        session.segmentSpan.addEvent('step.retrying', {
          [ATTR.step]: step,
          [ATTR.attempt]: attempt,
          [ATTR.errorCategory]: error.category,
          'retry.delay_ms': delayMs,
        });
        host.events.emit('step.retrying', {
          runId: session.runId,
          workflow,
          step,
          path,
          attempt,
          durationMs,
          error,
          delayMs,
          nextAttemptAt,
        });
        continue;
      }
      throw failExecution(session, record, { step, path, attempt, durationMs, error });
    } finally {
      over = true;
      for (const forget of [...sleepsInFlight]) forget();
      if (counted) {
        session.working -= 1;
        session.executing.delete(signal);
        counted = false;
      }
      release();
    }
  }
}

/** `data` as JSON reads it back (a copy as of now), or why JSON cannot write it (a BigInt, a cycle). */
function jsonCopy(data: unknown): { value: unknown } | { error: string } {
  try {
    const text = JSON.stringify(data);
    return { value: text === undefined ? undefined : (JSON.parse(text) as unknown) };
  } catch (err) {
    return { error: `data cannot be written as JSON (${(err as Error).message}); pass strings and numbers` };
  }
}
