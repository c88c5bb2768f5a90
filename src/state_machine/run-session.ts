/**
 * One claimed run in memory: its XState actor, the changes not yet persisted, its steps in flight.
 *
 * The session persists after every macrostep of the root and of every child (seen through inspection
 * events, since the root's `subscribe` misses child transitions), lets a step's work start only once
 * the snapshot that entered the step is durable, evicts the run when it only waits, and stops at once
 * when a write's fence fails.
 */
import { SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api';
import { createActor, type AnyActor, type AnyActorRef, type InspectionEvent, type Snapshot } from 'xstate';
import type { ClaimedRun } from '../persistence/claims.ts';
import type { CommitResult, RunWrite } from '../persistence/commits.ts';
import type { HistoryEntry } from '../persistence/runs.ts';
import { pendingSignals, type InboxEvent, type SignalOutcome } from '../persistence/inbox.ts';
import type { RunStatus } from '../persistence/schema.ts';
import { actorPath, descendants, isMachineActor } from './actor-paths.ts';
import type { CommitParticipant, PreparedWrite } from './committer.ts';
import type { WorkflowDefinition } from './definition.ts';
import { type ErrorData } from './errors.ts';
import { findRestoreProblem } from './snapshot-check.ts';
import { findUndurable, findUndurableValue, type UndurableValue } from './durable-check.ts';
import { attachStepHost, type StepFunction, type StepHost, type StepOptions } from './step.ts';
import { decodeStepRecords, encodeStepRecords, executeStep, type StepRecord } from './step-execution.ts';
import { readTimers, rearmTimers, type TimerRecord } from './timers.ts';
import type { SessionHost } from './session-host.ts';
import { ATTR, contextFromTraceparent, tracer } from './telemetry.ts';
import { jsonBytes, SizeLimitError } from './limits.ts';
import { compactHistory } from '../persistence/retention.ts';

type FinalStatus = Extract<RunStatus, 'succeeded' | 'failed' | 'cancelled'>;

/** A live child of `actor` whose logic was given inline (no name a snapshot could hold). */
function inlineChild(actor: AnyActor): UndurableValue | null {
  const children = (actor.getSnapshot() as { children?: Record<string, AnyActorRef> }).children ?? {};
  for (const [id, ref] of Object.entries(children)) {
    if (typeof (ref as { src?: unknown }).src !== 'string') return findUndurable({ children: { [id]: { src: null } } });
  }
  return null;
}

/** The output's problem when JSON cannot write it at all. */
function unwritable(output: unknown): UndurableValue | null {
  try {
    JSON.stringify(output);
    return null;
  } catch {
    return findUndurableValue(output, 'output') ?? { path: 'output', problem: 'cannot be written as JSON' };
  }
}

/** The run's failure when its snapshot holds what JSON cannot carry (see durable-check.ts). */
function undurableError(bad: UndurableValue): ErrorData {
  return {
    name: 'UndurableSnapshotError',
    message: `${bad.path} ${bad.problem}.`,
    code: 'UNDURABLE_SNAPSHOT',
    category: 'permanent',
    details: { path: bad.path },
  };
}

interface Ending {
  status: FinalStatus;
  snapshot: unknown;
  output?: unknown;
  error?: ErrorData | undefined;
  /** Its closing history entry has been queued. */
  recorded?: boolean;
}

interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Signals with this type are handled by the engine itself. */
export const CANCEL_SIGNAL = 'rmapp.cancel';

export class RunSession implements CommitParticipant, StepHost {
  readonly runId: string;
  readonly epoch: number;
  readonly concurrencyKey: string | null;
  private version: number;
  private actor: AnyActor | undefined;
  private steps: Record<string, StepRecord>;
  private timers: TimerRecord[];
  private history: HistoryEntry[] = [];
  private consumed: [number, SignalOutcome][] = [];
  /** Buffered signals that no state has accepted yet, oldest first. */
  private kept: InboxEvent[] = [];
  private retryScheduled = false;
  private keptTimer: NodeJS.Timeout | undefined;
  private changeSeq = 0;
  private persistedSeq = 0;
  /** A write of this run is in flight. */
  writing = false;
  private waiters: Waiter[] = [];
  /** Paths of steps whose work is running now (not waiting on a barrier or a backoff). */
  readonly executing = new Set<string>();
  /** Steps whose work has begun (past the ownership check) and not ended or parked. */
  working = 0;
  /** Paths of steps waiting durably, with the time they wake. */
  readonly sleeping = new Map<string, number>();
  private readonly stateValues = new Map<string, string>();
  private lastGoodSnapshot: unknown;
  private lastSignalId = 0;
  private compacting: Promise<void> | null = null;
  /** The run's history rows as of its last write (the run row's `history_rows`). */
  private historyRows: number;
  /** `signal_seq` as of the last read whose signals were all applied (see commits.ts). */
  private seenSignalSeq: number;
  private signalPull: Promise<void> | null = null;
  private pullAgain = false;
  private ending: Ending | null = null;
  /** Set while cancellation cleanup runs: nothing is written until it is done. */
  private paused = false;
  private evicting = false;
  private restoring = false;
  /** Transitions the root has taken (see onInspect): tells an event that was taken from one ignored. */
  private rootTransitions = 0;
  /** The external event being delivered, to name it if the machine throws. */
  private lastEvent: { type: string; state: unknown } | null = null;
  /**
   * The last event the root machine began to process, from any source (a delayed `after` / `raise` /
   * `sendTo`, a child's `sendParent`), with the state it met: names the event when an action it runs
   * throws and no external event is being delivered.
   */
  private processing: { type: string; state: unknown } | null = null;
  /** History index where the macrostep being processed began: its state entries go there. */
  private macrostepMark = 0;
  private deadlineTimer: unknown;
  /** This segment of the run (claim → release or end), child of the run's persisted trace context. */
  readonly segmentSpan: Span;
  readonly traceContext: Context;
  ended = false;
  /**
   * `performance.now()` until which this session's lease is certainly held: the send time of the claim
   * or of the last renewal that held it, plus the lease. The worker ends the session before it.
   */
  leaseValidUntil = 0;
  /** The write in flight gives the run up (it ended, or it only waits): no step of it is running. */
  releasing = false;

  constructor(
    private readonly host: SessionHost,
    private readonly row: ClaimedRun,
    readonly definition: WorkflowDefinition,
  ) {
    this.runId = row.id;
    this.epoch = row.leaseEpoch;
    this.concurrencyKey = row.concurrencyKey;
    this.version = row.version;
    this.steps = decodeStepRecords(row.steps);
    this.timers = (row.timers ?? []) as TimerRecord[];
    this.lastGoodSnapshot = row.snapshot;
    this.historyRows = row.historyRows;
    // A run claimed because of signals has not read them yet: nothing counts as seen until it has.
    this.seenSignalSeq = row.hasSignals ? 0 : row.signalSeq;
    this.segmentSpan = tracer().startSpan(
      `workflow.run ${definition.name}`,
      { attributes: { [ATTR.id]: row.id, [ATTR.name]: definition.name, [ATTR.version]: definition.version } },
      contextFromTraceparent(row.traceContext),
    );
    this.traceContext = trace.setSpan(contextFromTraceparent(row.traceContext), this.segmentSpan);
  }

  /** Restores (or creates) the actor, re-arms timers and delivers pending signals. */
  start(): void {
    const { row, definition } = this;
    const isNew = row.snapshot == null;
    if (!isNew) {
      const problem = findRestoreProblem(definition.machine, row.snapshot);
      if (problem) return this.failWithoutActor(`The persisted snapshot cannot be restored: ${problem}.`);
    }
    let actor: AnyActor;
    try {
      const clock = this.host.clock;
      actor = createActor(definition.machine, {
        input: row.input,
        // XState's delayed events (`after`) run on the engine's clock too.
        clock: { setTimeout: (fn, ms) => clock.setTimeout(fn, ms), clearTimeout: (h) => clock.clearTimeout(h) },
        ...(isNew ? {} : { snapshot: row.snapshot as Snapshot<unknown> }),
        inspect: (ev) => {
          this.onInspect(ev);
          try {
            this.host.inspect?.(ev);
          } catch {
            // An inspector that fails must never break a run.
          }
        },
      });
    } catch (err) {
      return this.failWithoutActor(`The persisted snapshot cannot be restored: ${(err as Error).message}.`);
    }
    this.actor = actor;
    attachStepHost(actor.system, this);
    actor.subscribe({
      next: (snap) => {
        if (snap.status !== 'done') return;
        const failed = typeof snap.value === 'string' && this.definition.failureStates?.includes(snap.value);
        if (!failed) return this.finish({ status: 'succeeded', snapshot: actor.getPersistedSnapshot(), output: snap.output });
        const reported = (snap.output as { error?: Partial<ErrorData> } | undefined)?.error;
        const error: ErrorData = {
          name: reported?.name ?? 'WorkflowFailed',
          message: reported?.message ?? `The workflow ended in its failure state "${snap.value}".`,
          code: reported?.code ?? 'WORKFLOW_FAILED',
          category: reported?.category ?? 'permanent',
          details: reported?.details,
        };
        this.finish({ status: 'failed', snapshot: actor.getPersistedSnapshot(), output: snap.output, error });
      },
      error: (err) => this.finish({ status: 'failed', snapshot: this.lastGoodSnapshot, error: this.machineError(err) }),
    });
    if (isNew) {
      this.record({ type: 'run.started', data: { workflow: definition.name, version: definition.version } });
      this.host.events.emit('run.started', { runId: this.runId, workflow: definition.name });
    } else {
      this.record({ type: 'run.resumed', data: { fromState: row.stateValue } });
    }
    this.restoring = !isNew;
    try {
      actor.start();
    } finally {
      this.restoring = false;
    }
    if (!isNew && !this.ending) {
      const dropped = rearmTimers(actor, this.timers, this.host.clock.now());
      for (const t of dropped) this.record({ type: 'timer.dropped', path: t.target, data: { event: t.event.type } });
    }
    this.markDirty();
    if (row.hasSignals) void this.pullSignals();
    this.armDeadline();
  }

  private armDeadline(): void {
    const deadline = this.row.deadlineAt?.getTime();
    if (deadline === undefined || this.ending) return;
    // setTimeout holds at most ~24.8 days; a later deadline is re-armed when the run is next claimed.
    const ms = Math.min(2 ** 31 - 1, Math.max(0, deadline - this.host.clock.now()));
    this.deadlineTimer = this.host.clock.setTimeout(() => {
      if (this.host.clock.now() >= deadline) void this.timeOut();
      else this.armDeadline();
    }, ms);
    (this.deadlineTimer as { unref?: () => void } | undefined)?.unref?.();
  }

  // ---- steps --------------------------------------------------------------------------------

  runStep<TOutput, TInput>(
    self: AnyActorRef,
    fn: StepFunction<TOutput, TInput>,
    options: StepOptions,
    input: TInput,
    signal: AbortSignal,
  ): Promise<TOutput> {
    const path = this.actor ? actorPath(self, this.actor) : self.id;
    const record = (this.steps[path] ??= { attempt: 0, done: 0 });
    // Stopped by its machine (the state was left, e.g. on a signal) rather than by this run leaving
    // the worker: that execution is over, so the next one at this path starts at attempt 1 with a
    // new key. A run that is evicted, ends, pauses or stops with its worker keeps its record as is.
    signal.addEventListener(
      'abort',
      () => {
        if (this.ended || this.ending || this.evicting || this.paused || this.host.stopping) return;
        if (record.attempt === 0 && record.nextAttemptAt === undefined) return;
        record.attempt = 0;
        record.nextAttemptAt = undefined;
        record.sleeps = undefined;
        record.parked = undefined;
        record.failed = true;
      },
      { once: true },
    );
    return executeStep(this, { self, path, record, fn, options, input, signal });
  }

  /** Appends a history entry; it is persisted with the next write. */
  record(entry: HistoryEntry): void {
    if (this.ended) return;
    this.history.push(entry);
    this.markDirty();
  }

  get hostRef(): SessionHost {
    return this.host;
  }

  /**
   * Just before a step's work starts: is the lease still certainly held? A process that was paused
   * (a stop, a long GC, a blocked event loop) may wake with its lease gone before the self-fencing
   * timer runs; then a renewal of this run decides (worker.ts `confirmLease`) before any work starts.
   */
  ownsRun(): boolean | Promise<boolean> {
    if (this.ended) return false;
    if (this.host.leaseTrusted(this)) return true;
    return this.host.confirmLease(this);
  }

  /** Resolves once everything changed so far is durable; rejects if the run is lost or `signal` aborts. */
  persisted(signal?: AbortSignal): Promise<void> {
    const seq = this.changeSeq;
    if (seq <= this.persistedSeq) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { seq, resolve, reject };
      this.waiters.push(waiter);
      signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
  }

  /** Called when a step starts or stops waiting durably: a run that only waits leaves memory. */
  maybeEvict(): void {
    if (this.ended || this.ending || this.evicting || this.paused || !this.actor) return;
    if (this.writing || this.changeSeq > this.persistedSeq || this.history.length > 0 || this.signalPull) return;
    if (this.actor.getSnapshot().status !== 'active' || this.executing.size > 0) return;
    for (const { path, ref } of descendants(this.actor)) {
      if (!isMachineActor(ref) && ref.getSnapshot().status === 'active' && !this.sleeping.has(path)) return;
    }
    const wake = this.nextWake();
    if (wake !== null && wake - this.host.clock.now() <= this.host.evictAfterMs) return;
    this.evicting = true;
    this.markDirty();
  }

  private nextWake(): number | null {
    // A buffered signal's expiry too: the run wakes to report it expired.
    const dues = [...this.timers.map((t) => t.dueAt), ...this.sleeping.values(), ...this.kept.map((k) => this.host.clock.now() + Math.max(0, (k.keepUntil ?? Infinity) - Date.now()))];
    if (this.row.deadlineAt) dues.push(this.row.deadlineAt.getTime());
    return dues.length ? Math.min(...dues) : null;
  }

  // ---- signals and cancellation --------------------------------------------------------------

  /** Reads and applies signals that arrived since the last read, in order. */
  pullSignals(): Promise<void> {
    if (this.signalPull) {
      this.pullAgain = true;
      return this.signalPull;
    }
    this.signalPull = (async () => {
      do {
        this.pullAgain = false;
        const { seq, events } = await pendingSignals(this.host.db, this.runId, this.lastSignalId);
        let all = true;
        for (const e of events) all = this.deliver(e) && all;
        if (all) this.seenSignalSeq = Math.max(this.seenSignalSeq, seq);
      } while (this.pullAgain && !this.ended);
    })()
      .catch((err: unknown) => this.host.logger.error({ err, runId: this.runId }, `rmapp: reading signals of run ${this.runId} failed`))
      .finally(() => {
        this.signalPull = null;
        this.maybeEvict();
      });
    return this.signalPull;
  }

  /** Applies one signal; false when it was left for a later owner (the run is ending or leaving). */
  private deliver(e: InboxEvent): boolean {
    if (this.ended || this.ending || this.evicting || this.paused || !this.actor) return false;
    if (e.id <= this.lastSignalId) return true;
    this.lastSignalId = e.id;
    if (e.event.type === CANCEL_SIGNAL) {
      this.consumed.push([e.id, 'received']);
      void this.cancel(typeof e.event.reason === 'string' ? e.event.reason : 'cancelled');
      return true;
    }
    // A kept signal an earlier owner already reported buffered is not reported again on a restore.
    if (this.offer(e, !e.reported) === 'kept') {
      this.kept.push(e);
      this.armKeptExpiry();
    }
    return true;
  }

  /**
   * Sends one signal to the actor exactly as XState would: no pre-filter (eventless transitions and
   * guards may read any event). An event that made the root take no transition is ignored — or, when
   * buffered and not expired, kept to be offered again after the run's next transition. History says which: `signal.received`, `signal.ignored`, `signal.buffered` (once,
   * when first kept), `signal.expired`.
   */
  private offer(e: InboxEvent, first: boolean): SignalOutcome | 'kept' {
    const actor = this.actor as AnyActor;
    const before = actor.getSnapshot() as { status: string; value: unknown };
    const data = { id: e.id, event: e.event };
    if (before.status === 'active') {
      const mark = this.history.length;
      const transitions = this.rootTransitions;
      this.lastEvent = { type: e.event.type, state: before.value };
      actor.send(e.event);
      this.lastEvent = null;
      // Taken: a transition ran (a targetless one with actions, a re-entry, a sendTo keep the root's
      // snapshot object), or the snapshot changed (the machine errored, say).
      if (this.rootTransitions > transitions || actor.getSnapshot() !== before) {
        // Before the state entries of the macrostep it caused, which were placed at `mark`.
        this.history.splice(mark, 0, { type: 'signal.received', data });
        this.markDirty();
        this.segmentSpan.addEvent('signal.received', { 'signal.type': e.event.type });
        this.consumed.push([e.id, 'received']);
        return 'received';
      }
    }
    const reason = before.status === 'active' ? `no transition for it in state ${JSON.stringify(before.value)}` : `the run's machine is ${before.status}`;
    if (e.keepUntil !== null && e.keepUntil > Date.now() && before.status === 'active') {
      if (first) this.record({ type: 'signal.buffered', state: before.value, data: { ...data, reason, until: new Date(e.keepUntil).toISOString() } });
      return 'kept';
    }
    const outcome: SignalOutcome = e.keepUntil !== null && before.status === 'active' ? 'expired' : 'ignored';
    this.record({ type: `signal.${outcome}`, state: before.value, data: { ...data, reason } });
    this.segmentSpan.addEvent(`signal.${outcome}`, { 'signal.type': e.event.type });
    this.consumed.push([e.id, outcome]);
    return outcome;
  }

  /** Offers the kept signals again, oldest first (after a change of the run, or at an expiry). */
  private retryKept(): void {
    for (const e of [...this.kept]) {
      if (this.ended || this.ending || this.evicting || this.paused || !this.actor) return;
      if (this.offer(e, false) !== 'kept') this.kept.splice(this.kept.indexOf(e), 1);
    }
    this.armKeptExpiry();
  }

  private scheduleRetryKept(): void {
    if (this.kept.length === 0 || this.retryScheduled) return;
    this.retryScheduled = true;
    // After the macrostep that changed the run has finished: XState processes one event at a time.
    queueMicrotask(() => {
      this.retryScheduled = false;
      this.retryKept();
    });
  }

  /** A timer at the earliest expiry of a kept signal, so it is reported even if nothing changes. */
  private armKeptExpiry(): void {
    if (this.keptTimer !== undefined) clearTimeout(this.keptTimer);
    this.keptTimer = undefined;
    if (this.kept.length === 0 || this.ended) return;
    const due = Math.min(...this.kept.map((k) => k.keepUntil ?? Infinity));
    if (!Number.isFinite(due)) return;
    this.keptTimer = setTimeout(() => this.retryKept(), Math.min(2 ** 31 - 1, Math.max(0, due - Date.now()) + 1));
    this.keptTimer.unref?.();
  }

  /** Stops the actor (aborting steps and children), runs the definition's cleanup, records `cancelled`. */
  cancel(reason: string): Promise<void> {
    return this.terminate('cancelled', { name: 'CancelledError', message: reason, code: 'CANCELLED', category: 'cancelled' }, 'run.cancelled');
  }

  /** The per-run timeout expired: like a cancellation, but the run fails with category `timeout`. */
  private timeOut(): Promise<void> {
    const message = `The run exceeded its timeout (deadline ${this.row.deadlineAt?.toISOString()}).`;
    return this.terminate('failed', { name: 'RunTimeoutError', message, code: 'RUN_TIMEOUT', category: 'timeout' }, 'run.timed_out');
  }

  private async terminate(status: 'cancelled' | 'failed', error: ErrorData, entry: string): Promise<void> {
    if (this.ending || this.ended || this.paused || !this.actor) return;
    this.paused = true;
    const snapshot = this.actor.getPersistedSnapshot();
    const context = (this.actor.getSnapshot() as { context?: unknown }).context;
    this.actor.stop();
    try {
      await this.definition.cleanup?.({ runId: this.runId, reason: error.message, context });
    } catch (err) {
      this.history.push({ type: 'cleanup.failed', data: { error: this.host.toError(err) } });
    }
    this.history.push({ type: entry, data: { reason: error.message } });
    this.paused = false;
    this.finish({ status, snapshot, error, recorded: status === 'failed' });
  }

  /**
   * What the run failed with when its machine errored. An exception thrown by a guard, an action or an
   * eventless transition (XState's `error` status) is a permanent error of the definition, named with
   * the event and the state — an external event, or one the machine sent itself (a delayed `after`,
   * `raise` or `sendTo` that fired, a child's `sendParent`). A child's own failure reaching the root
   * unhandled (`xstate.error.actor.*`: a step's or promise's rejection) keeps its own classification.
   */
  private machineError(err: unknown): ErrorData {
    const data = this.host.toError(err);
    if ((err as { category?: unknown } | null)?.category !== undefined) return data;
    const during = this.lastEvent
      ? ` (while handling event "${this.lastEvent.type}" in state ${JSON.stringify(this.lastEvent.state)})`
      : this.processing && !this.processing.type.startsWith('xstate.error.actor.')
        ? ` (while handling ${this.processing.type.startsWith('xstate.after.') ? 'the delayed ' : ''}event "${this.processing.type}" in state ${JSON.stringify(this.processing.state)})`
        : null;
    if (during === null) return data;
    return { ...data, code: 'MACHINE_ERROR', category: 'permanent', message: `${data.message}${during}` };
  }

  private finish(ending: Ending): void {
    if (this.ending || this.ended) return;
    this.ending = ending;
    this.markDirty();
  }

  private failWithoutActor(message: string): void {
    const error: ErrorData = { name: 'RestoreError', message, code: 'SNAPSHOT_RESTORE_FAILED', category: 'permanent' };
    this.finish({ status: 'failed', snapshot: this.row.snapshot, error });
  }

  // ---- persistence -----------------------------------------------------------------------------

  private markDirty(): void {
    if (this.ended) return;
    this.changeSeq += 1;
    this.host.committer.schedule(this);
  }

  private onInspect(ev: InspectionEvent): void {
    try {
      if (ev.type === '@xstate.event') {
        if (isMachineActor(ev.actorRef as AnyActorRef)) this.macrostepMark = this.history.length;
        if (ev.actorRef === this.actor && this.actor) {
          this.processing = { type: (ev.event as { type: string }).type, state: (this.actor.getSnapshot() as { value?: unknown }).value };
        }
        return;
      }
      if (ev.type === '@xstate.microstep') {
        // Transitions the root took (targetless ones too, which leave its snapshot object as it was):
        // an event that took one was received, and buffered events may be taken now.
        const taken = (ev as { _transitions?: unknown[] })._transitions?.length ?? 0;
        if (ev.actorRef === this.actor && taken > 0) {
          this.rootTransitions += taken;
          this.scheduleRetryKept();
        }
        return;
      }
      if (ev.type !== '@xstate.snapshot' || this.ended || !this.actor) return;
      const ref = ev.actorRef as AnyActorRef;
      if (isMachineActor(ref)) {
        const path = actorPath(ref, this.actor);
        const value = (ev.snapshot as { value?: unknown }).value;
        const key = JSON.stringify(value);
        if (this.stateValues.get(path) !== key) {
          this.stateValues.set(path, key);
          if (!this.restoring) {
            // Steps invoked by this macrostep were recorded while it ran; the state entry goes first.
            this.history.splice(Math.min(this.macrostepMark, this.history.length), 0, { type: 'state.entered', path, state: value });
            this.macrostepMark += 1;
            this.host.events.emit('state.entered', { runId: this.runId, path, state: value });
            this.segmentSpan.addEvent('state.entered', { [ATTR.state]: key, 'workflow.path': path });
          }
        }
      }
      this.markDirty();
    } catch (err) {
      // An exception thrown here would propagate into the actor (docs/xstate-semantics.md): report it instead.
      this.host.logger.error({ err, runId: this.runId }, `rmapp: inspecting run ${this.runId} failed`);
    }
  }

  buildWrite(): PreparedWrite | null {
    if (this.ended || this.paused || this.writing) return null;
    // At the bound with a compaction in flight, a write that adds a row waits for it: the bound holds.
    if (this.compacting && this.history.length > 0 && this.historyRows >= this.host.history.maxRows) return null;
    let status: RunStatus = 'running';
    let snapshot: unknown;
    let output: unknown = null;
    let error: unknown = null;
    let release = false;
    let wakeAt: Date | null = null;
    let snapshotJson: string | undefined;
    if (this.ending) {
      // The output is data for the caller, written as JSON (a Date becomes its ISO string); only what
      // JSON cannot write at all (a BigInt, a cycle) fails the run.
      const bad = this.ending.snapshot === this.lastGoodSnapshot ? null : findUndurable(this.ending.snapshot) ?? unwritable(this.ending.output);
      if (bad) {
        this.ending = { status: 'failed', snapshot: this.lastGoodSnapshot, error: undurableError(bad) };
        return this.buildWrite();
      }
      if (!this.ending.recorded) {
        this.ending.recorded = true;
        if (this.ending.status === 'failed') this.history.push({ type: 'run.failed', data: { error: this.ending.error } });
        if (this.ending.status === 'succeeded') this.history.push({ type: 'run.succeeded' });
      }
      ({ status, snapshot } = this.ending);
      output = this.ending.output ?? null;
      error = this.ending.error ?? null;
      release = true;
    } else if (this.actor) {
      let bad: UndurableValue | null;
      try {
        snapshot = this.actor.getPersistedSnapshot();
        bad = findUndurable(snapshot);
      } catch (err) {
        // XState's development build refuses to persist an inline child; name it like the check does.
        bad = inlineChild(this.actor) ?? { path: 'snapshot', problem: `cannot be persisted: ${(err as Error).message}` };
      }
      if (bad) {
        // Refused at the first write that would carry it, before a step's work can start on it.
        this.ending = { status: 'failed', snapshot: this.lastGoodSnapshot, error: undurableError(bad) };
        return this.buildWrite();
      }
      snapshotJson = JSON.stringify(snapshot);
      const bytes = jsonBytes(snapshotJson);
      if (bytes > this.host.limits.snapshotBytes) {
        // Fail the run with a clear error instead of writing (or being refused) a huge row.
        const error = this.host.toError(
          new SizeLimitError("The run's snapshot", 'snapshotBytes', bytes, this.host.limits.snapshotBytes, 'Keep large data in artifacts (ctx.saveArtifact) rather than in the context.'),
        );
        this.ending = { status: 'failed', snapshot: this.lastGoodSnapshot, error };
        return this.buildWrite();
      }
      const timers = readTimers(this.actor, this.host.clock.now());
      // A delayed event's payload is stored with its timer: one JSON cannot carry would arrive changed
      // after a restore, or (a BigInt) could not be written at all.
      const badTimer = timers
        .map((t, i) => {
          const bad = findUndurableValue(t.event, `timers[${i}].event`);
          return bad && { ...bad, problem: `${bad.problem} (in the payload of the delayed event ${JSON.stringify(t.event.type)})` };
        })
        .find(Boolean);
      if (badTimer) {
        this.ending = { status: 'failed', snapshot: this.lastGoodSnapshot, error: undurableError(badTimer) };
        return this.buildWrite();
      }
      this.timers = timers;
      if (this.evicting) {
        status = 'waiting';
        release = true;
        const wake = this.nextWake();
        wakeAt = wake === null ? null : new Date(wake);
      }
    } else {
      return null;
    }
    const write: RunWrite = {
      id: this.runId,
      expectedVersion: this.version,
      owner: this.host.owner,
      epoch: this.epoch,
      status,
      snapshot,
      snapshotJson,
      stateValue: (snapshot as { value?: unknown } | null)?.value ?? null,
      output,
      error,
      timers: this.timers,
      steps: encodeStepRecords(this.steps),
      wakeAt,
      release,
      statusMessage: null,
      seenSignalSeq: this.seenSignalSeq,
      consumedSignals: [...this.consumed],
      history: [...this.history],
    };
    this.writing = true;
    this.releasing = release;
    return { write, seq: this.changeSeq };
  }

  onCommitted(prepared: PreparedWrite, result: CommitResult): void {
    this.writing = false;
    this.releasing = false;
    if (this.ended) return;
    const { write } = prepared;
    this.historyRows = result.historyRows;
    if (write.history.length > 0 && result.historyRows >= this.compactionThreshold()) this.compactOwnHistory();
    this.version = result.version;
    this.history.splice(0, write.history.length);
    this.consumed.splice(0, write.consumedSignals.length);
    this.persistedSeq = prepared.seq;
    if (write.status === 'running') this.lastGoodSnapshot = write.snapshot;
    for (const w of this.waiters.filter((w) => w.seq <= prepared.seq)) w.resolve();
    this.waiters = this.waiters.filter((w) => w.seq > prepared.seq);
    if (write.status === 'waiting') {
      this.host.events.emit('run.waiting', { runId: this.runId, wakeAt: write.wakeAt?.toISOString() ?? null });
      return this.end(result.wakeNow);
    }
    if (write.status !== 'running') {
      const e = this.ending as Ending;
      this.host.events.emit('run.finished', {
        runId: this.runId,
        workflow: this.definition.name,
        status: write.status,
        output: e.output,
        error: e.error,
        durationMs: this.host.clock.now() - this.row.createdAt.getTime(),
      });
      return this.end(false);
    }
    if (this.changeSeq > this.persistedSeq || this.ending) this.host.committer.schedule(this);
    else this.maybeEvict();
  }

  /**
   * The run's row count (kept in the run's row by every statement that appends or folds history, so
   * it holds across eviction, hand-overs and workers) at which it is compacted: a little below the
   * bound, so the commits made while a compaction runs do not cross it.
   */
  private compactionThreshold(): number {
    const { maxRows, keepLast } = this.host.history;
    return maxRows - Math.min(32, Math.floor((maxRows - keepLast) / 4));
  }

  /**
   * A run in a long loop appends a history row per commit; near the bound, fold the oldest rows into
   * one summary. Off the hot path: it runs beside the run's commits, never blocks them.
   */
  private compactOwnHistory(): void {
    if (this.compacting) return;
    const { keepLast } = this.host.history;
    this.compacting = compactHistory(this.host.db, this.runId, { keepLast })
      .then((r) => {
        this.historyRows = Math.max(0, this.historyRows - r.deletedRows);
      })
      .catch((err: unknown) => this.host.logger.warn({ err, runId: this.runId }, `rmapp: compacting the history of run ${this.runId} failed: ${(err as Error).message}`))
      .finally(() => {
        this.compacting = null;
        // Writes held back at the bound go now.
        if (!this.ended && (this.changeSeq > this.persistedSeq || this.ending)) this.host.committer.schedule(this);
      });
  }

  onFailed(): void {
    this.writing = false;
    this.releasing = false;
  }

  /**
   * The database refused the write's data (a check the session missed): the run fails with that
   * error, written from its last good snapshot, instead of retrying a write that can never succeed.
   */
  onRejected(_prepared: PreparedWrite, err: unknown): void {
    this.writing = false;
    this.releasing = false;
    if (this.ended) return;
    const cause = this.host.toError(err);
    const error: ErrorData = { ...cause, code: 'WRITE_REJECTED', category: 'permanent', message: `The database refused the run's state: ${cause.message}` };
    if (this.ending?.error?.code === 'WRITE_REJECTED') {
      // Even the failure could not be written: stop here; the run waits for a fix, visibly held.
      this.host.logger.error({ runId: this.runId, error: cause }, `rmapp: run ${this.runId}: the database refused even its failure: ${cause.message}`);
      return this.end(false);
    }
    this.ending = { status: 'failed', snapshot: this.lastGoodSnapshot, error };
    this.history = [{ type: 'run.failed', data: { error } }];
    this.ending.recorded = true;
    this.consumed = [];
    this.markDirty();
  }

  onLost(): void {
    this.writing = false;
    this.releasing = false;
    this.lose('fence');
  }

  /**
   * This worker no longer owns the run (or can no longer be sure it does): stop at once — the actor
   * stops, steps' signals abort, unpersisted changes are dropped — and write nothing more. The next
   * owner's claim records the take-over in the run's history.
   */
  lose(reason: 'fence' | 'renewal' | 'self-fence' | 'reclaimed'): void {
    if (this.ended) return;
    this.host.logger.warn({ runId: this.runId, owner: this.host.owner, reason }, `rmapp: run ${this.runId} is no longer owned by ${this.host.owner} (${reason}); stopping it here.`);
    this.host.events.emit('run.lost', { runId: this.runId, workflow: this.definition.name, reason });
    this.end(false);
  }

  /** Graceful hand-over: persist what is pending, then give the lease back. */
  async release(): Promise<void> {
    if (this.ended) return;
    await this.persisted().catch(() => {});
    await this.host.committer.idle();
    if (this.ended) return;
    await this.host.releaseRun(this.runId, this.version).catch(() => false);
    this.end(false);
  }

  private endSpan(): void {
    const state = (this.ending?.snapshot ?? this.lastGoodSnapshot) as { value?: unknown } | null;
    this.segmentSpan.setAttribute(ATTR.state, JSON.stringify(state?.value ?? null));
    this.segmentSpan.setAttribute(ATTR.status, this.ending?.status ?? (this.evicting ? 'waiting' : 'released'));
    const error = this.ending?.error;
    if (error) {
      this.segmentSpan.setAttribute(ATTR.errorCategory, error.category);
      if (this.ending?.status === 'failed') {
        this.segmentSpan.recordException({ name: error.name, message: error.message, code: error.code });
        this.segmentSpan.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
      }
    }
    this.segmentSpan.end();
  }

  /** Stops the actor and forgets the run; no write after this. */
  end(wakeNow: boolean): void {
    if (this.ended) return;
    this.ended = true;
    if (this.deadlineTimer !== undefined) this.host.clock.clearTimeout(this.deadlineTimer);
    if (this.keptTimer !== undefined) clearTimeout(this.keptTimer);
    this.endSpan();
    const lost = new Error(`run ${this.runId} left this worker`);
    for (const w of this.waiters.splice(0)) w.reject(lost);
    try {
      if (this.actor && this.actor.getSnapshot().status === 'active') this.actor.stop();
    } catch (err) {
      this.host.logger.error({ err, runId: this.runId }, `rmapp: stopping run ${this.runId} failed`);
    }
    this.host.sessionEnded(this, wakeNow);
  }
}
