/**
 * One claimed run in memory: its XState actor, the changes not yet persisted, its steps in flight.
 *
 * The session persists after every macrostep of the root and of every child (seen through inspection
 * events, since the root's `subscribe` misses child transitions), lets a step's work start only once
 * the snapshot that entered the step is durable, evicts the run when it only waits, and stops at once
 * when a write's fence fails. Its lifecycle is one phase (session-phase.ts) and every entry point asks
 * one guard, {@link allows}; restoring the actor is session-restore.ts, what a write carries
 * session-write.ts, signal delivery session-signals.ts.
 */
import { trace, type Context, type Span } from '@opentelemetry/api';
import type { AnyActor, AnyActorRef } from 'xstate';
import type { ClaimedRun } from '../persistence/claims.ts';
import type { CommitResult } from '../persistence/commits.ts';
import type { HistoryEntry } from '../persistence/runs.ts';
import type { RunStatus } from '../persistence/run-status.ts';
import { actorPath, descendants, isMachineActor } from './actor-paths.ts';
import type { CommitParticipant, PreparedWrite } from './committer.ts';
import type { WorkflowDefinition } from './definition.ts';
import type { ErrorData } from './errors.ts';
import { attachStepHost, type StepFunction, type StepHost, type StepOptions } from './step.ts';
import { decodeStepRecords, encodeStepRecords, executeStep, type StepRecord } from './step-execution.ts';
import { rearmTimers, type TimerRecord } from './timers.ts';
import type { SessionHost } from './session-host.ts';
import { ATTR, contextFromTraceparent, endSegmentSpan, tracer } from './telemetry.ts';
import { allows, type Ending, type SessionAction, type SessionPhase } from './session-phase.ts';
import { SignalDelivery } from './session-signals.ts';
import { captureState, endingProblem } from './session-write.ts';
import { endingOfDone, machineError, restoreActor } from './session-restore.ts';
import { SessionCommits } from './session-commits.ts';
import { RunInspection } from './session-inspection.ts';

export { CANCEL_SIGNAL } from './session-signals.ts';

export class RunSession implements CommitParticipant, StepHost {
  readonly runId: string;
  readonly epoch: number;
  readonly concurrencyKey: string | null;
  /** Where the session is in its life (session-phase.ts). */
  private phase: SessionPhase = { name: 'running' };
  private actor: AnyActor | undefined;
  private steps: Record<string, StepRecord>;
  private timers: TimerRecord[];
  /** Changes, queued history, the write in flight (not a phase: its commit is judged in every phase). */
  private readonly commits: SessionCommits;
  private readonly signals: SignalDelivery;
  /** Paths of steps whose work is running now (not waiting on a barrier or a backoff). */
  readonly executing = new Set<string>();
  /** Steps whose work has begun (past the ownership check) and not ended or parked. */
  working = 0;
  /** Paths of steps waiting durably, with the time they wake. */
  readonly sleeping = new Map<string, number>();
  private lastGoodSnapshot: unknown;
  /** Inspection events: state entries for the history, transitions taken, the event being processed. */
  private readonly inspection: RunInspection;
  private deadlineTimer: unknown;
  /** This segment of the run (claim → release or end), child of the run's persisted trace context. */
  readonly segmentSpan: Span;
  readonly traceContext: Context;
  /**
   * `performance.now()` until which this session's lease is certainly held: the send time of the claim
   * or of the last renewal that held it, plus the lease. The worker ends the session before it.
   */
  leaseValidUntil = 0;

  constructor(
    private readonly host: SessionHost,
    private readonly row: ClaimedRun,
    readonly definition: WorkflowDefinition,
  ) {
    this.runId = row.id;
    this.epoch = row.leaseEpoch;
    this.concurrencyKey = row.concurrencyKey;
    this.steps = decodeStepRecords(row.steps);
    this.timers = (row.timers ?? []) as TimerRecord[];
    this.lastGoodSnapshot = row.snapshot;
    this.segmentSpan = tracer().startSpan(
      `workflow.run ${definition.name}`,
      { attributes: { [ATTR.id]: row.id, [ATTR.name]: definition.name, [ATTR.version]: definition.version } },
      contextFromTraceparent(row.traceContext),
    );
    this.traceContext = trace.setSpan(contextFromTraceparent(row.traceContext), this.segmentSpan);
    this.commits = new SessionCommits(host, this, row, () => this.commits.pending || this.ending !== null);
    // What signal delivery and inspection read and call back (session-signals.ts, session-inspection.ts).
    const port = {
      runId: row.id,
      host,
      segmentSpan: this.segmentSpan,
      isEnded: () => this.ended,
      actor: () => this.actor,
      history: () => this.commits.history,
      markDirty: () => this.markDirty(),
    };
    this.signals = new SignalDelivery(
      {
        ...port,
        acceptsSignals: () => this.can('deliver') && this.actor !== undefined,
        record: (e) => this.record(e),
        cancel: (reason) => void this.cancel(reason),
        maybeEvict: () => this.maybeEvict(),
      },
      // A run claimed because of signals has not read them yet: nothing counts as seen until it has.
      row.hasSignals ? 0 : row.signalSeq,
    );
    this.inspection = new RunInspection({ ...port, rootTransitioned: (taken) => this.signals.rootTransitioned(taken) });
  }

  /** The one guard: may the session, in its phase, do `action` now? */
  private can(action: SessionAction): boolean {
    return allows(this.phase, action);
  }

  /** How the run ends, once it is ending. */
  private get ending(): Ending | null {
    return this.phase.name === 'ending' ? this.phase.ending : null;
  }

  /** The session has stopped: it writes nothing more (read by the worker and the committer). */
  get ended(): boolean {
    return this.phase.name === 'ended';
  }

  /** A write of this run is in flight. */
  get writing(): boolean {
    return this.commits.inFlight !== null;
  }

  /** The write in flight gives the run up (it ended, or it only waits): no step of it is running. */
  get releasing(): boolean {
    return this.commits.inFlight?.releasing ?? false;
  }

  /** Restores (or creates) the actor, re-arms timers and delivers pending signals. */
  start(): void {
    const { row, definition } = this;
    const restored = restoreActor(this.host, row, definition, (ev) => this.inspection.onInspect(ev));
    if ('problem' in restored) return this.failWithoutActor(restored.problem);
    const { actor, isNew } = restored;
    this.actor = actor;
    attachStepHost(actor.system, this);
    actor.subscribe({
      next: (snap) => {
        if (snap.status === 'done') this.finish(endingOfDone(actor, this.definition, snap));
      },
      error: (err) =>
        this.finish({
          status: 'failed',
          snapshot: this.lastGoodSnapshot,
          error: machineError((e) => this.host.toError(e), err, this.signals.delivering, this.inspection.processing),
        }),
    });
    if (isNew) {
      this.record({ type: 'run.started', data: { workflow: definition.name, version: definition.version } });
      this.host.events.emit('run.started', { runId: this.runId, workflow: definition.name });
    } else {
      this.record({ type: 'run.resumed', data: { fromState: row.stateValue } });
    }
    this.inspection.replaying = !isNew;
    try {
      actor.start();
    } finally {
      this.inspection.replaying = false;
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
    // Only while the run could still time out (not once it is ending).
    if (deadline === undefined || this.ending) return;
    // setTimeout holds at most ~24.8 days; a later deadline is re-armed when the run is next claimed.
    const ms = Math.min(2 ** 31 - 1, Math.max(0, deadline - this.host.clock.now()));
    this.deadlineTimer = this.host.clock.setTimeout(() => {
      if (this.host.clock.now() >= deadline) void this.timeOut();
      else this.armDeadline();
    }, ms);
    (this.deadlineTimer as { unref?: () => void } | undefined)?.unref?.();
  }

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
        if (!this.can('reset-stopped-step') || this.host.stopping) return;
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
    if (!this.can('record')) return;
    this.commits.history.push(entry);
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
    return this.commits.persisted(signal);
  }

  /** Called when a step starts or stops waiting durably: a run that only waits leaves memory. */
  maybeEvict(): void {
    if (!this.can('evict') || !this.actor) return;
    if (this.commits.inFlight || this.commits.pending || this.commits.history.length > 0 || this.signals.reading) return;
    if (this.actor.getSnapshot().status !== 'active' || this.executing.size > 0) return;
    for (const { path, ref } of descendants(this.actor)) {
      if (!isMachineActor(ref) && ref.getSnapshot().status === 'active' && !this.sleeping.has(path)) return;
    }
    const wake = this.nextWake();
    if (wake !== null && wake - this.host.clock.now() <= this.host.evictAfterMs) return;
    this.phase = { name: 'evicting' };
    this.markDirty();
  }

  private nextWake(): number | null {
    // A buffered signal's expiry too: the run wakes to report it expired.
    const now = this.host.clock.now();
    const dues = [
      ...this.timers.map((t) => t.dueAt),
      ...this.sleeping.values(),
      ...this.signals.kept.map((k) => now + Math.max(0, (k.keepUntil ?? Infinity) - Date.now())),
    ];
    if (this.row.deadlineAt) dues.push(this.row.deadlineAt.getTime());
    return dues.length ? Math.min(...dues) : null;
  }

  /** Reads and applies signals that arrived since the last read, in order. */
  pullSignals(): Promise<void> {
    return this.signals.pullSignals();
  }

  /** Stops the actor (aborting steps and children), runs the definition's cleanup, records `cancelled`. */
  cancel(reason: string): Promise<void> {
    return this.terminate(
      'cancelled',
      { name: 'CancelledError', message: reason, code: 'CANCELLED', category: 'cancelled' },
      'run.cancelled',
    );
  }

  /** The per-run timeout expired: like a cancellation, but the run fails with category `timeout`. */
  private timeOut(): Promise<void> {
    const message = `The run exceeded its timeout (deadline ${this.row.deadlineAt?.toISOString()}).`;
    return this.terminate('failed', { name: 'RunTimeoutError', message, code: 'RUN_TIMEOUT', category: 'timeout' }, 'run.timed_out');
  }

  /** running or evicting → terminating (cleanup runs, nothing is written) → ending. */
  private async terminate(status: 'cancelled' | 'failed', error: ErrorData, entry: string): Promise<void> {
    if (!this.can('terminate') || !this.actor) return;
    this.phase = { name: 'terminating' };
    const snapshot = this.actor.getPersistedSnapshot();
    const context = (this.actor.getSnapshot() as { context?: unknown }).context;
    this.actor.stop();
    try {
      await this.definition.cleanup?.({ runId: this.runId, reason: error.message, context });
    } catch (err) {
      this.commits.history.push({ type: 'cleanup.failed', data: { error: this.host.toError(err) } });
    }
    this.commits.history.push({ type: entry, data: { reason: error.message } });
    // Lost meanwhile (ended), or its last write was refused (ending already): that decides.
    if (this.phase.name !== 'terminating') return;
    this.phase = { name: 'ending', ending: { status, snapshot, error, recorded: status === 'failed' } };
    this.markDirty();
  }

  private finish(ending: Ending): void {
    if (!this.can('finish')) return;
    this.phase = { name: 'ending', ending };
    this.markDirty();
  }

  private failWithoutActor(message: string): void {
    const error: ErrorData = { name: 'RestoreError', message, code: 'SNAPSHOT_RESTORE_FAILED', category: 'permanent' };
    this.finish({ status: 'failed', snapshot: this.row.snapshot, error });
  }

  private markDirty(): void {
    if (!this.can('record')) return;
    this.commits.markDirty();
  }

  buildWrite(): PreparedWrite | null {
    if (!this.can('write') || this.commits.inFlight || this.commits.heldAtBound()) return null;
    const ending = this.ending;
    if (ending) {
      const problem = endingProblem(ending, this.lastGoodSnapshot);
      if (problem) return this.failAndWrite(problem);
      if (!ending.recorded) {
        ending.recorded = true;
        if (ending.status === 'failed') this.commits.history.push({ type: 'run.failed', data: { error: ending.error } });
        if (ending.status === 'succeeded') this.commits.history.push({ type: 'run.succeeded' });
      }
      return this.send({
        status: ending.status,
        snapshot: ending.snapshot,
        output: ending.output ?? null,
        error: ending.error ?? null,
        release: true,
        wakeAt: null,
      });
    }
    if (!this.actor) return null;
    const captured = captureState(this.actor, this.host);
    if ('problem' in captured) return this.failAndWrite(captured.problem);
    this.timers = captured.timers;
    const { snapshot, snapshotJson } = captured;
    if (this.phase.name !== 'evicting')
      return this.send({ status: 'running', snapshot, snapshotJson, output: null, error: null, release: false, wakeAt: null });
    const wake = this.nextWake();
    return this.send({
      status: 'waiting',
      snapshot,
      snapshotJson,
      output: null,
      error: null,
      release: true,
      wakeAt: wake === null ? null : new Date(wake),
    });
  }

  private send(w: {
    status: RunStatus;
    snapshot: unknown;
    snapshotJson?: string;
    output: unknown;
    error: unknown;
    release: boolean;
    wakeAt: Date | null;
  }): PreparedWrite {
    return this.commits.send({
      ...w,
      snapshotJson: w.snapshotJson,
      stateValue: (w.snapshot as { value?: unknown } | null)?.value ?? null,
      timers: this.timers,
      steps: encodeStepRecords(this.steps),
      statusMessage: null,
      seenSignalSeq: this.signals.seenSignalSeq,
      consumedSignals: [...this.signals.consumed],
    });
  }

  /** The state cannot be written as it is: the run fails from its last good snapshot instead. */
  private failAndWrite(error: ErrorData): PreparedWrite | null {
    this.phase = { name: 'ending', ending: { status: 'failed', snapshot: this.lastGoodSnapshot, error } };
    return this.buildWrite();
  }

  onCommitted(prepared: PreparedWrite, result: CommitResult): void {
    this.commits.inFlight = null;
    if (this.ended) return;
    const { write } = prepared;
    this.commits.committed(prepared, result);
    this.signals.committed(write.consumedSignals.length);
    if (write.status === 'running') this.lastGoodSnapshot = write.snapshot;
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
    if (this.commits.pending || this.ending) this.host.committer.schedule(this);
    else this.maybeEvict();
  }

  onFailed(): void {
    this.commits.inFlight = null;
  }

  /**
   * The database refused the write's data (a check the session missed): the run fails with that
   * error, written from its last good snapshot, instead of retrying a write that can never succeed.
   */
  onRejected(_prepared: PreparedWrite, err: unknown): void {
    this.commits.inFlight = null;
    if (this.ended) return;
    const cause = this.host.toError(err);
    const error: ErrorData = {
      ...cause,
      code: 'WRITE_REJECTED',
      category: 'permanent',
      message: `The database refused the run's state: ${cause.message}`,
    };
    if (this.ending?.error?.code === 'WRITE_REJECTED') {
      // Even the failure could not be written: stop here; the run waits for a fix, visibly held.
      this.host.logger.error(
        { runId: this.runId, error: cause },
        `rmapp: run ${this.runId}: the database refused even its failure: ${cause.message}`,
      );
      return this.end(false);
    }
    this.phase = { name: 'ending', ending: { status: 'failed', snapshot: this.lastGoodSnapshot, error, recorded: true } };
    this.commits.history = [{ type: 'run.failed', data: { error } }];
    this.signals.consumed = [];
    this.markDirty();
  }

  onLost(): void {
    this.commits.inFlight = null;
    this.lose('fence');
  }

  /**
   * This worker no longer owns the run (or can no longer be sure it does): stop at once — the actor
   * stops, steps' signals abort, unpersisted changes are dropped — and write nothing more. The next
   * owner's claim records the take-over in the run's history.
   */
  lose(reason: 'fence' | 'renewal' | 'self-fence' | 'reclaimed'): void {
    if (this.ended) return;
    this.host.logger.warn(
      { runId: this.runId, owner: this.host.owner, reason },
      `rmapp: run ${this.runId} is no longer owned by ${this.host.owner} (${reason}); stopping it here.`,
    );
    this.host.events.emit('run.lost', { runId: this.runId, workflow: this.definition.name, reason });
    this.end(false);
  }

  /** Graceful hand-over: persist what is pending, then give the lease back. */
  async release(): Promise<void> {
    if (this.ended) return;
    await this.persisted().catch(() => {});
    await this.host.committer.idle();
    if (this.ended) return;
    await this.host.releaseRun(this.runId, this.commits.currentVersion).catch(() => false);
    this.end(false);
  }

  /** Stops the actor and forgets the run; no write after this. */
  end(wakeNow: boolean): void {
    if (this.ended) return;
    const ending = this.ending;
    const state = (ending?.snapshot ?? this.lastGoodSnapshot) as { value?: unknown } | null;
    endSegmentSpan(
      this.segmentSpan,
      state?.value ?? null,
      ending?.status ?? (this.phase.name === 'evicting' ? 'waiting' : 'released'),
      ending?.error,
    );
    this.phase = { name: 'ended' };
    if (this.deadlineTimer !== undefined) this.host.clock.clearTimeout(this.deadlineTimer);
    this.signals.stop();
    this.commits.abandon(new Error(`run ${this.runId} left this worker`));
    try {
      if (this.actor && this.actor.getSnapshot().status === 'active') this.actor.stop();
    } catch (err) {
      this.host.logger.error({ err, runId: this.runId }, `rmapp: stopping run ${this.runId} failed`);
    }
    this.host.sessionEnded(this, wakeNow);
  }
}
