/**
 * One claimed run in memory: its XState actor, the changes not yet persisted, its steps in flight.
 *
 * The session persists after every macrostep of the root and of every child (seen through inspection
 * events, since the root's `subscribe` misses child transitions), lets a step's work start only once
 * the snapshot that entered the step is durable, evicts the run when it only waits, and stops at once
 * when a write's fence fails. Its lifecycle is one phase (session-phase.ts) and every entry point asks
 * one guard, {@link allows}; restoring the actor is session-restore.ts, what a write carries
 * session-write.ts, signal delivery session-signals.ts, the run's deadline session-deadline.ts, whether
 * the run only waits session-eviction.ts, a step's persisted record step-record.ts.
 */
import type { Context, Span } from '@opentelemetry/api';
import type { AnyActor, AnyActorRef } from 'xstate';
import type { ClaimedRun } from '../persistence/claims.ts';
import type { CommitResult } from '../persistence/commits.ts';
import type { RunRow } from '../persistence/row-types.ts';
import type { HistoryEntry } from '../persistence/runs.ts';
import { actorPath, isLiveBelow, pathSegment } from './actor-paths.ts';
import { stopActorTree } from './actor-stop.ts';
import type { CommitParticipant, PreparedWrite } from './committer.ts';
import type { WorkflowDefinition } from './definition.ts';
import { cancelledError, WorkflowError, type ErrorData } from './errors.ts';
import { SignalBlame, type TakenSignal } from './signal-blame.ts';
import { attachStepHost, type StepFunction, type StepHost, type StepOptions } from './step.ts';
import { executeStep, type StepCallState } from './step-execution.ts';
import { forgetStoppedExecution } from './step-record.ts';
import { StepBook } from './step-book.ts';
import { rearmTimers, type TimerRecord } from './timers.ts';
import { TimerCatchUp } from './timer-catch-up.ts';
import type { SessionHost } from './session-host.ts';
import { endSegmentSpan, startSegmentSpan } from './telemetry.ts';
import { allows, type Ending, type SessionAction, type SessionPhase } from './session-phase.ts';
import { SignalDelivery } from './session-signals.ts';
import {
  captureState,
  closingEntries,
  checkedEnding,
  endingWrite,
  historyAfterRefusal,
  rejectedWriteError,
  terminatedState,
  unpersistableSnapshotError,
  unwritableStateEntry,
} from './session-write.ts';
import { runningWrite, waitingWrite, type WriteDecision } from './session-write.ts';
import { endingOfDone, machineError, restoreActor, startActor } from './session-restore.ts';
import { SessionCommits } from './session-commits.ts';
import { RunInspection } from './session-inspection.ts';
import { RunDeadline, runTimeoutError } from './session-deadline.ts';
import { checkedOnRead } from './read-checked-signal.ts';
import { nextWake, onlyWaits } from './session-eviction.ts';
import { releaseSession, type ReleasingSession } from './session-release.ts';
import { finalRowOf } from './final-row.ts';

export { CANCEL_SIGNAL } from './session-signals.ts';

export class RunSession implements CommitParticipant, StepHost {
  readonly runId: string;
  readonly epoch: number;
  readonly concurrencyKey: string | null;
  /** Where the session is in its life (session-phase.ts). */
  private phase: SessionPhase = { name: 'running' };
  private actor: AnyActor | undefined;
  private readonly steps: StepBook;
  private timers: TimerRecord[];
  /** Changes, queued history, the write in flight (not a phase: its commit is judged in every phase). */
  private readonly commits: SessionCommits;
  private readonly signals: SignalDelivery;
  /** Which signal a state that cannot be written came from (signal-blame.ts). */
  private readonly blame = new SignalBlame();
  /**
   * Steps whose work is running now (not waiting on a barrier or a backoff), by their executions' signals:
   * by path, a stopped execution at a path that ended deleted the newer one's entry, and a draining
   * worker stopped waiting for it.
   */
  readonly executing = new Set<AbortSignal>();
  /** Steps whose work has begun (past the ownership check) and not ended or parked. */
  working = 0;
  /** Step functions called and not yet returned (step-execution.ts, `StepSession.calls`). */
  readonly calls = new Map<Promise<unknown>, StepCallState>();
  /** The warning that a returned-late step function keeps the run in memory was given. */
  private heldForCalls = false;
  /** Paths of steps waiting durably, with the times they wake: one per sleep in flight (step-execution.ts `sleepUntil`). */
  readonly sleeping = new Map<string, number[]>();
  private lastGoodSnapshot: unknown;
  /** {@link lastGoodSnapshot}'s JSON as written (undefined for the one read from the row: plain data). */
  private lastGoodJson: string | undefined;
  /**
   * The step records and timers written with {@link lastGoodSnapshot}: a run that fails from that
   * snapshot is written with them, so that they agree with it. With the records of the moment instead,
   * a step that had finished after that snapshot was still active in it, and `engine.retry` ran it
   * again under a new key.
   */
  private lastGood: { steps: Record<string, unknown>; timers: TimerRecord[] };
  /** Inspection events: state entries for the history, transitions taken, the event being processed. */
  private readonly inspection: RunInspection;
  /** The clock of the run's actor: records its timers' due times, holds them while a restored run catches up. */
  private readonly timerClock: TimerCatchUp;
  private readonly deadline: RunDeadline;
  /** This segment of the run (claim → release or end), child of the run's persisted trace context. */
  readonly segmentSpan: Span;
  readonly traceContext: Context;
  /**
   * `performance.now()` until which this session's lease is certainly held: the send time of the claim
   * or of the last renewal that held it, plus the lease. The worker ends the session before it.
   */
  leaseValidUntil = 0;
  /**
   * The run as its final write left it, once that write is durable: what `engine.waitFor` returns for a
   * run this process executed, without reading it back (worker.ts `awaitFinish`).
   */
  finalRow: RunRow | null = null;
  /**
   * A run started in this process whose row does not exist yet: its first write is the insert, taken by
   * the worker ({@link takeFirstWrite}); until then the committer gets nothing from this session.
   */
  private unborn: boolean;
  /** {@link takeFirstWrite} is building the insert. */
  private takingFirstWrite = false;
  /**
   * A write that would fail the run for a state it cannot write waits for the read of the inbox under
   * way ({@link buildWrite}): a cancellation among its signals ends the run instead.
   */
  private heldForRead = false;
  /** The database refused a write while the run was terminating ({@link onRejected}): why, for the ending. */
  private refusedWhileTerminating: ErrorData | null = null;
  /**
   * The definition's cleanup's signal: aborted when this session loses the run ({@link lose}) or ends
   * while the cleanup runs (a graceful stop's {@link release}, a crash's {@link end}).
   */
  private readonly cleanupLost = new AbortController();
  /** The definition's cleanup while it runs ({@link terminate}): a graceful stop waits for it ({@link release}). */
  private cleanupCall: Promise<unknown> | null = null;
  /** What a graceful stop's hand-over reads and calls of this session (session-release.ts). */
  private readonly handOver: ReleasingSession;

  constructor(
    private readonly host: SessionHost,
    private readonly row: ClaimedRun,
    readonly definition: WorkflowDefinition,
    options: { unborn?: boolean } = {},
  ) {
    this.unborn = options.unborn ?? false;
    this.runId = row.id;
    this.epoch = row.leaseEpoch;
    this.concurrencyKey = row.concurrencyKey;
    this.steps = new StepBook(row);
    this.timers = (row.timers ?? []) as TimerRecord[];
    this.lastGoodSnapshot = row.snapshot;
    this.lastGood = { steps: (row.steps ?? {}) as Record<string, unknown>, timers: this.timers };
    const segment = startSegmentSpan(row, definition);
    this.segmentSpan = segment.span;
    this.traceContext = segment.context;
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
        // A state already known unwritable takes no more signals (their effects would be mixed into the
        // failure, and the signal that caused it no longer named); a cancellation still decides.
        acceptsSignals: () => this.can('deliver') && !this.heldForRead && this.actor !== undefined,
        acceptsCancel: () => (this.can('deliver') || this.ending?.overridable === true) && this.actor !== undefined,
        readOver: () => this.readOver(),
        record: (e) => this.record(e),
        cancel: (reason) => void this.cancel(reason),
        maybeEvict: () => this.maybeEvict(),
        signalTaken: (signal, more) => this.signalTaken(signal, more),
        beforeSignal: () => this.beforeSignal(),
      },
      // A run claimed because of signals has not read them yet: nothing counts as seen until it has.
      row.hasSignals ? 0 : row.signalSeq,
    );
    this.timerClock = new TimerCatchUp(host.clock);
    this.inspection = new RunInspection({
      ...port,
      markDirty: () => {
        if (!this.signals.delivering) this.blame.otherChange();
        this.markDirty();
      },
      rootTransitioned: (taken) => this.signals.rootTransitioned(taken),
    });
    this.handOver = {
      runId: row.id,
      host,
      calls: this.calls,
      isEnded: () => this.ended,
      cleanupCall: () => this.cleanupCall,
      persisted: () => this.persisted(),
      currentVersion: () => this.commits.currentVersion,
      abortCleanup: (reason) => this.cleanupLost.abort(reason),
      end: (wakeNow) => this.end(wakeNow),
    };
    this.deadline = new RunDeadline(
      host.clock,
      row.deadlineAt,
      () => !this.ending,
      () => void this.timeOut(),
    );
  }

  /** The one guard: may the session, in its phase, do `action` now? */
  private can(action: SessionAction): boolean {
    return allows(this.phase, action);
  }

  /** How the run ends, once it is ending. */
  private get ending(): Ending | null {
    return this.phase.name === 'ending' ? this.phase.ending : null;
  }

  /**
   * When the run was created, as the database stored it: which run of its id this session holds (a run
   * pruned and created again under the same id starts again at lease epoch 1). A fenced artifact save
   * matches it (step-execution.ts).
   */
  get createdAt(): Date {
    return this.row.createdAt;
  }

  /** The session has stopped: it writes nothing more (read by the worker and the committer). */
  get ended(): boolean {
    return this.phase.name === 'ended';
  }

  /** A write of this run is in flight. */
  get writing(): boolean {
    return this.commits.inFlight !== null;
  }

  /**
   * The definition's cleanup is running ({@link terminate}): work outside the database, as a step's, that
   * the worker's self-fencing stops (its signal aborts) once the lease may expire (lease-renewals.ts `selfFence`).
   */
  get cleaningUp(): boolean {
    return this.phase.name === 'terminating';
  }

  /** The write in flight gives the run up (it ended, or it only waits): no step of it is running. */
  get releasing(): boolean {
    return this.commits.inFlight?.releasing ?? false;
  }

  /** Restores (or creates) the actor, re-arms timers and delivers pending signals. */
  start(): void {
    const { row, definition } = this;
    const catchUp = this.timerClock;
    const restored = restoreActor(this.host, row, definition, (ev) => this.inspection.onInspect(ev), catchUp.actorClock);
    if ('problem' in restored) return this.finish({ status: 'failed', snapshot: row.snapshot, error: restored.problem });
    const { actor, isNew } = restored;
    this.actor = actor;
    // The root's emitted events, which no `actor.on` can reach in the worker (events.ts, `run.emitted`).
    actor.on('*', (event: { type: string }) =>
      this.host.events.emit('run.emitted', { runId: this.runId, workflow: this.definition.name, event }),
    );
    catchUp.attach(actor);
    attachStepHost(actor.system, this);
    actor.subscribe({
      next: (snap) => {
        if (snap.status !== 'done') return;
        let ending: Ending;
        try {
          ending = endingOfDone(actor, this.definition, snap);
        } catch (err) {
          // The final snapshot could not be made (its context's reading threw): thrown from here, XState
          // rethrew it outside any handler. The run fails from its last durable state, naming it.
          ending = { status: 'failed', snapshot: this.lastGoodSnapshot, fromLastGood: true, error: unpersistableSnapshotError(err) };
        }
        this.finish(ending);
      },
      error: (err) =>
        this.finish({
          status: 'failed',
          snapshot: this.lastGoodSnapshot,
          fromLastGood: true,
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
      startActor(actor, !isNew);
    } finally {
      this.inspection.replaying = false;
    }
    // A restored run is its last written state: what a signal does to it next is the signal's alone.
    if (!isNew) this.blame.writable(true, 0);
    if (!isNew && !this.ending) {
      const now = this.host.clock.now();
      // Timers that came due while the run was away fire in due-time order on the run's timeline, with
      // the overdue delays they start, as XState's clock would have fired them (timer-catch-up.ts).
      // Signals sent meanwhile go between them by the time they were sent: the inbox's first read
      // releases the timers; without signals they are released at once.
      catchUp.begin();
      if (row.hasSignals) this.signals.catchUpWith(catchUp);
      const dropped = rearmTimers(actor, this.timers, now, catchUp);
      for (const t of dropped) this.record({ type: 'timer.dropped', path: t.target, data: { event: t.event.type } });
      if (!row.hasSignals) catchUp.finish();
    }
    this.markDirty();
    // A run claimed with signals waiting takes them before its deadline can end it: they were sent while
    // no worker ran it (before the deadline, as a rule: a run that waits is woken at its deadline). Armed
    // at once instead, the deadline's timer (due already) came before the read's answer on Postgres and
    // the run timed out without them — left in its inbox, `ignored`, their dedupe keys held — while on
    // PGlite, whose read answers sooner, the same run took them (test/h7-deadline-after-signals.test.ts).
    if (row.hasSignals)
      void this.pullSignals().then(() => {
        if (!this.ended) this.deadline.arm();
      });
    else this.deadline.arm();
  }

  runStep<TOutput, TInput>(
    self: AnyActorRef,
    fn: StepFunction<TOutput, TInput>,
    options: StepOptions,
    input: TInput,
    signal: AbortSignal,
  ): Promise<TOutput> {
    const path = this.actor ? actorPath(self, this.actor) : pathSegment(self.id);
    const root = this.actor;
    // The machine of an execution is still in the run: its step is not replaced by a new machine's (a
    // second spawn under the step's own id is a duplicate, whatever the parent's children say now).
    const live = (ref: unknown) => {
      const machine = (ref as { _parent?: AnyActorRef })._parent;
      return !root || !machine || isLiveBelow(machine, root);
    };
    if (this.steps.running(path, live)) return Promise.reject(duplicateIdError(self, path));
    const record = this.steps.record(path);
    // The execution this one replaces is over, though its stop has not reached it yet: as if stopped.
    if (this.steps.replaced(path, live) && this.can('reset-stopped-step')) forgetStoppedExecution(record);
    // Stopped by its machine rather than by the run leaving the worker: a new execution comes next. Not
    // when a newer execution has the record already (its machine was replaced before this one stopped).
    signal.addEventListener(
      'abort',
      () => {
        if (this.can('reset-stopped-step') && this.steps.newest(path) === signal) forgetStoppedExecution(record);
      },
      { once: true },
    );
    const over = this.steps.use(path, signal, self);
    const current = () => !signal.aborted && this.steps.newest(path) === signal;
    const execution = executeStep(this, { self, path, record, fn, options, input, signal, current });
    execution.then(over, over);
    return execution;
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
   * timer runs; then a renewal of this run decides (lease-renewals.ts `confirmLease`) before any work starts.
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
    if (!onlyWaits(this.actor, this.executing, this.sleeping)) return;
    const wake = this.wakeTime();
    if (wake !== null && wake - this.host.clock.now() <= this.host.evictAfterMs) return;
    // A step function still running though its attempt is over (timed out, now in its backoff): the run
    // stays here until it returns — written out, another worker woke it and ran the step beside it.
    if ([...this.calls.values()].some((call) => !call.parked)) {
      if (!this.heldForCalls) {
        this.heldForCalls = true;
        this.host.logger.warn(
          { runId: this.runId, owner: this.host.owner },
          `rmapp: run ${this.runId} stays in memory on ${this.host.owner}: a step function whose attempt ended (it timed out) ` +
            'has not returned, and no other worker may run the run meanwhile; it leaves memory once the function returns. ' +
            'Make the step return when ctx.signal aborts.',
        );
      }
      return;
    }
    this.heldForCalls = false;
    this.phase = { name: 'evicting' };
    this.markDirty();
  }

  /** Whether the run still only waits, as `maybeEvict` found when it chose to write the run out. */
  private stillOnlyWaits(): boolean {
    if (!this.actor || !onlyWaits(this.actor, this.executing, this.sleeping)) return false;
    return ![...this.calls.values()].some((call) => !call.parked);
  }

  /** When the run must wake (session-eviction.ts): its timers, sleeps, buffered signals' expiry, deadline. */
  private wakeTime(): number | null {
    const { timers, sleeping, row } = this;
    return nextWake({ now: this.host.clock.now(), timers, sleeping, kept: this.signals.kept, deadlineAt: row.deadlineAt });
  }

  /** Reads and applies signals that arrived since the last read, in order. */
  pullSignals(): Promise<void> {
    return this.signals.pullSignals();
  }

  /** Stops the actor (aborting steps and children), runs the definition's cleanup, records `cancelled`. */
  cancel(reason: string): Promise<void> {
    return this.terminate('cancelled', cancelledError(reason), 'run.cancelled');
  }

  /**
   * The per-run timeout expired: like a cancellation, but the run fails with category `timeout`. Not
   * while the write that gives the run up as `waiting` is in flight: that write ends this session once
   * it commits, with the run woken at its deadline (session-eviction.ts `nextWake`), and the next owner
   * times it out. Terminated here as well, the definition's cleanup ran in this session and again in the
   * next one, with no crash between (test/h7-timeout-during-eviction.test.ts). A write that does not
   * commit leaves no session behind (lost), fails the run (refused), or is sent again built as a
   * `waiting` write woken at the deadline, already passed.
   */
  private timeOut(): Promise<void> {
    if (this.phase.name === 'evicting' && this.releasing) return Promise.resolve();
    return this.terminate('failed', runTimeoutError(this.row.deadlineAt), 'run.timed_out');
  }

  /**
   * running, evicting, or an overridable failure (ending) → terminating (cleanup runs, nothing is
   * written) → ending. The run ends as asked even when the state it is stopped in cannot be written (too
   * large, what JSON cannot carry): from its last state written, with the reason in its history
   * (`state.unwritable`, session-write.ts `terminatedState`) — a failure for that state decided but not
   * yet written gives way to it, its error kept as that reason.
   */
  private async terminate(status: 'cancelled' | 'failed', error: ErrorData, entry: string): Promise<void> {
    if (!this.can('terminate') || !this.actor) return;
    // A lease no longer trusted (renewals unanswered while the run only waited, which nothing self-fences):
    // another worker may hold the run and run its cleanup already. Started here, the cleanup ran beside
    // that one's, its signal aborted only at the next self-fencing pass (test/h218-idle-session-cleanup-lease.test.ts).
    // The run is left as a self-fenced one is: its next owner reads the cancellation or deadline again.
    if (!this.host.leaseTrusted(this)) return this.lose('self-fence');
    const overridden = this.ending?.overridable ? this.ending.error : undefined;
    this.phase = { name: 'terminating' };
    const state = overridden
      ? { snapshot: this.lastGoodSnapshot, unwritable: overridden }
      : terminatedState(this.actor, this.lastGoodSnapshot, this.host);
    const unwritable = state.unwritable && (overridden ?? this.blame.blame(state.unwritable));
    if (unwritable) this.commits.history.push(unwritableStateEntry(unwritable));
    const context = (this.actor.getSnapshot() as { context?: unknown }).context;
    stopActorTree(this.actor);
    // Read after a pause past the lease, the signal looks at the lease itself, as a step's start does
    // ({@link ownsRun}): the self-fencing timer (lease-renewals.ts `selfFence`) runs only after the cleanup's own.
    const signal = checkedOnRead(this.cleanupLost.signal, () => {
      if (!this.ended && !this.host.leaseTrusted(this)) this.lose('self-fence');
    });
    const cleanup = this.definition.cleanup;
    const call = (async () => cleanup?.({ runId: this.runId, reason: error.message, context, signal }))();
    this.cleanupCall = call;
    try {
      await call;
    } catch (err) {
      this.commits.history.push({ type: 'cleanup.failed', data: { error: this.host.toError(err) } });
    } finally {
      this.cleanupCall = null;
    }
    this.commits.history.push({ type: entry, data: { reason: error.message } });
    // Lost meanwhile (ended): that decides. A write refused meanwhile is why it ends from its last written state.
    if (this.phase.name !== 'terminating') return;
    const ending: Ending = { status, snapshot: state.snapshot, error, recorded: status === 'failed', terminated: true };
    if (unwritable) ending.fromLastGood = true;
    // A write the database refused while the cleanup ran: the run ends from its last written state.
    const refused = this.refusedWhileTerminating;
    if (refused) {
      Object.assign(ending, { snapshot: this.lastGoodSnapshot, fromLastGood: true, refused: true });
      this.commits.history = historyAfterRefusal(this.commits.history, refused);
    }
    this.phase = { name: 'ending', ending };
    this.markDirty();
  }

  /** The run's deadline has passed (by the engine's clock). */
  private deadlinePassed(): boolean {
    const at = this.row.deadlineAt;
    return at !== null && this.host.clock.now() >= at.getTime();
  }

  /** A read of the inbox is over: a write held for it ({@link heldForRead}) is built now. */
  private readOver(): void {
    if (!this.heldForRead) return;
    this.heldForRead = false;
    if (this.can('write')) this.host.committer.schedule(this);
  }

  private finish(ending: Ending): void {
    if (!this.can('finish')) return;
    this.phase = { name: 'ending', ending };
    this.markDirty();
  }

  /** Something the next write carries changed (also a step record: step-execution.ts, `StepSession`). */
  markDirty(): void {
    if (!this.can('record')) return;
    this.commits.markDirty();
  }

  /**
   * The write of the run's first macrostep, which the worker sends as the run's insert (worker.ts
   * `startLocal`); null if the session ended before it (then nothing of it may be written).
   */
  takeFirstWrite(): PreparedWrite | null {
    this.unborn = false;
    this.takingFirstWrite = true;
    try {
      return this.buildWrite();
    } finally {
      this.takingFirstWrite = false;
    }
  }

  buildWrite(): PreparedWrite | null {
    if (this.unborn) return null;
    if (!this.can('write') || this.commits.inFlight || this.commits.heldAtBound()) return null;
    let ending = this.ending;
    if (ending?.fromLastGood && ending.snapshot !== this.lastGoodSnapshot) {
      ending = { ...ending, snapshot: this.lastGoodSnapshot };
      this.phase = { name: 'ending', ending };
    }
    if (ending) {
      const checked = checkedEnding(ending, this.lastGoodSnapshot, this.host);
      if (checked && 'problem' in checked) {
        const problem = this.blame.blame(checked.problem);
        if (!ending.terminated) return this.failAndWrite(problem);
        // A cancellation or timeout ends the run as asked, from its last state written (terminate
        // checked its state; this is the same check, should that state have changed since).
        this.commits.history.push(unwritableStateEntry(problem));
        this.phase = { name: 'ending', ending: { ...ending, snapshot: this.lastGoodSnapshot, fromLastGood: true } };
        return this.buildWrite();
      }
      // Built now: a cancellation can no longer take its place.
      ending.overridable = false;
      this.commits.history.push(...closingEntries(ending));
      return this.send(endingWrite(ending, checked));
    }
    if (!this.actor) return null;
    // Decided when the run only waited; it may have work again by now (the write waited for a batch in
    // flight, or for the committer's backoff): a delayed event that entered a step's state, a step's
    // backoff or sleep that ended. Written out as `waiting` then, the run had a step in flight and
    // nothing to wake it (wake_at null): it stayed so until a signal came (test/b2-evict-race.test.ts).
    if (this.phase.name === 'evicting' && !this.stillOnlyWaits()) {
      this.phase = { name: 'running' };
      // A signal that came meanwhile was left for the run's next owner: it is this session's again.
      void this.pullSignals();
    }
    const captured = captureState(this.actor, this.host, (scheduled) => this.timerClock.dueOf(scheduled));
    if ('problem' in captured) {
      // A state that cannot be written fails the run — unless the run is to end otherwise: its deadline
      // has passed (it times out instead), or a read of its inbox is under way, which may hold a
      // cancellation (a run over a lowered limit, claimed because it was cancelled, failed at its first
      // write, before the cancellation was read: test/cancel-over-limit.test.ts).
      if (this.deadlinePassed() && this.can('terminate')) {
        void this.timeOut();
        return null;
      }
      if (this.signals.reading) {
        this.heldForRead = true;
        return null;
      }
      return this.failAndWrite(this.blame.blame(captured.problem));
    }
    this.blame.writable(true, captured.snapshotJson.length);
    this.timers = captured.timers;
    if (this.phase.name !== 'evicting') return this.send(runningWrite(captured));
    return this.send(waitingWrite(captured, this.wakeTime()));
  }

  private send(w: WriteDecision): PreparedWrite {
    // The insert (the first write) has no `steps_done` to merge into; nothing has finished by then. A
    // run's last write moves nothing: a failed run's failed step keeps its record for engine.retry.
    const steps = this.steps.forWrite(!this.takingFirstWrite && this.ending === null);
    // An ending from the last good state carries it (buildWrite took it again): the same object.
    const fromLastGood = this.ending !== null && w.snapshot === this.lastGoodSnapshot;
    // What the unwritten state did leaves the write: its entries, and the signals taken since the last
    // good state — dropped by a cancellation or timeout, queued again for a failure's retry.
    if (fromLastGood && this.ending)
      this.signals.endFromLastWritten(this.commits, (this.lastGoodSnapshot as { value?: unknown } | null)?.value ?? null, this.ending);
    // Named one by one, not `...w`: the spread allocated ~4 KB a write here (16 of the 240 MB a worker
    // allocated restoring 1,000 runs, 0.8 MB after; bench/README.md, seventeenth session).
    return this.commits.send({
      status: w.status,
      snapshot: w.snapshot,
      // The last good snapshot as it was written: the object may hold the context's live values, whose
      // reading can throw by now (a getter) — written again from them, the run's ending could not be.
      snapshotJson: w.snapshotJson ?? (fromLastGood ? this.lastGoodJson : undefined),
      output: w.output,
      error: w.error,
      release: w.release,
      wakeAt: w.wakeAt,
      stateValue: (w.snapshot as { value?: unknown } | null)?.value ?? null,
      timers: fromLastGood ? this.lastGood.timers : this.timers,
      steps: fromLastGood ? this.lastGood.steps : steps.steps,
      stepsDone: steps.stepsDone,
      statusMessage: null,
      seenSignalSeq: this.signals.seenSignalSeq,
      consumedSignals: [...this.signals.consumed],
      reportedSignals: [...this.signals.reported],
    });
  }

  /**
   * A signal changed the run with another to follow: a state that cannot be written fails the run now,
   * naming this signal, before the next one's effect is mixed in (signal-blame.ts).
   */
  private signalTaken(signal: TakenSignal, more: boolean): void {
    if (this.blame.signalTaken(signal, more)) this.checkForBlame();
  }

  /**
   * Before a signal: when something else changed the run since its state was last known writable, that
   * state is checked first — a state that cannot be written fails the run now, naming no signal, and the
   * signal stays queued. False when the run failed (signal-blame.ts).
   */
  private beforeSignal(): boolean {
    return !this.blame.checkBefore() || this.checkForBlame();
  }

  /** Checks the state now; one that cannot be written fails the run (naming what blame can). */
  private checkForBlame(): boolean {
    if (!this.actor || this.ending) return true;
    const captured = captureState(this.actor, this.host, (scheduled) => this.timerClock.dueOf(scheduled));
    if (!('problem' in captured)) {
      this.blame.writable(false, captured.snapshotJson.length);
      return true;
    }
    // Not written yet: a cancellation later in this read ends the run instead (session-phase.ts).
    this.finish({
      status: 'failed',
      snapshot: this.lastGoodSnapshot,
      fromLastGood: true,
      error: this.blame.blame(captured.problem),
      overridable: true,
    });
    return false;
  }

  /** The state cannot be written as it is: the run fails from its last good snapshot instead. */
  private failAndWrite(error: ErrorData): PreparedWrite | null {
    this.phase = { name: 'ending', ending: { status: 'failed', snapshot: this.lastGoodSnapshot, error, fromLastGood: true } };
    return this.buildWrite();
  }

  onCommitted(prepared: PreparedWrite, result: CommitResult): void {
    this.commits.inFlight = null;
    if (this.ended) return;
    const { write } = prepared;
    this.commits.committed(prepared, result);
    this.steps.committed(write.stepsDone);
    this.signals.committed(write.consumedSignals.length, write.reportedSignals.length);
    if (write.status === 'running') {
      this.lastGoodSnapshot = write.snapshot;
      this.lastGoodJson = write.snapshotJson;
      this.lastGood = { steps: write.steps, timers: write.timers as TimerRecord[] };
    }
    if (write.status === 'waiting') {
      this.host.events.emit('run.waiting', { runId: this.runId, wakeAt: write.wakeAt?.toISOString() ?? null });
      return this.end(result.wakeNow);
    }
    if (write.status !== 'running') {
      const e = this.ending as Ending;
      this.finalRow = finalRowOf(this.row, write, result, this.steps.movedCounts());
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
   * error, written from its last good snapshot, instead of retrying a write that can never succeed — or,
   * when it is being cancelled or timed out, ends so from that snapshot, the refusal recorded as why its
   * state since was not written (session-write.ts `historyAfterRefusal`), as for a state it cannot write.
   */
  onRejected(_prepared: PreparedWrite, err: unknown): void {
    this.commits.inFlight = null;
    if (this.ended) return;
    const cause = this.host.toError(err);
    const error = rejectedWriteError(cause);
    if (this.ending?.error?.code === 'WRITE_REJECTED' || this.ending?.refused === true) {
      // Even the failure could not be written: stop here; the run waits for a fix, visibly held.
      this.host.logger.error(
        { runId: this.runId, error: cause },
        `rmapp: run ${this.runId}: the database refused even its failure: ${cause.message}`,
      );
      return this.end(false);
    }
    // A cancellation or timeout under way still ends the run as asked, from its last written state
    // (as for a state it cannot write, terminate): the refusal is why that state is the last.
    if (this.phase.name === 'terminating') {
      this.refusedWhileTerminating = error;
      return;
    }
    // A write giving the run up as `waiting`, refused after the deadline passed while it was out: the
    // timeout left to it (timeOut) applies now, the refusal as why the run ends from its last written state.
    if (this.phase.name === 'evicting' && this.deadlinePassed()) {
      this.refusedWhileTerminating = error;
      void this.timeOut();
      return;
    }
    const ending = this.ending;
    if (ending?.terminated === true) {
      this.phase = { name: 'ending', ending: { ...ending, snapshot: this.lastGoodSnapshot, fromLastGood: true, refused: true } };
      this.commits.history = historyAfterRefusal(this.commits.history, error);
      this.markDirty();
      return;
    }
    this.phase = {
      name: 'ending',
      ending: { status: 'failed', snapshot: this.lastGoodSnapshot, error, recorded: true, fromLastGood: true },
    };
    this.commits.history = [{ type: 'run.failed', data: { error } }];
    this.signals.consumed = [];
    // Their `signal.buffered` entries went with the history above.
    this.signals.reported = [];
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
    this.cleanupLost.abort(new WorkflowError(`Run ${this.runId} was lost (${reason}).`, { code: 'RUN_LOST', category: 'cancelled' }));
    this.end(false);
  }

  /**
   * Graceful hand-over: persist what is pending, then give the lease back (session-release.ts
   * `releaseSession`; a step function or the definition's cleanup still running keeps it until it returns).
   */
  release(waitForCallsMs = 0): Promise<void> {
    return releaseSession(this.handOver, waitForCallsMs);
  }

  /** Stops the actor and forgets the run; no write after this. A cleanup still running has its signal aborted. */
  end(wakeNow: boolean): void {
    if (this.ended) return;
    if (this.cleanupCall)
      this.cleanupLost.abort(new WorkflowError(`Run ${this.runId} left this worker.`, { code: 'RUN_LOST', category: 'cancelled' }));
    const ending = this.ending;
    const state = (ending?.snapshot ?? this.lastGoodSnapshot) as { value?: unknown } | null;
    endSegmentSpan(
      this.segmentSpan,
      state?.value ?? null,
      ending?.status ?? (this.phase.name === 'evicting' ? 'waiting' : 'released'),
      ending?.error,
    );
    this.phase = { name: 'ended' };
    this.deadline.clear();
    this.signals.stop();
    this.commits.abandon(new Error(`run ${this.runId} left this worker`));
    try {
      if (this.actor && this.actor.getSnapshot().status === 'active') stopActorTree(this.actor);
    } catch (err) {
      this.host.logger.error({ err, runId: this.runId }, `rmapp: stopping run ${this.runId} failed`);
    }
    this.host.sessionEnded(this, wakeNow);
  }
}

/**
 * A step started under the id of another that still runs in the same machine (two `spawnChild` with one
 * id, or a spawn under an invoke's id): it is refused before its work starts, as the two would share one
 * step record and one idempotency key, and a snapshot keeps only one child per id.
 */
function duplicateIdError(self: AnyActorRef, path: string): WorkflowError {
  return new WorkflowError(
    `Step "${self.id}" (path ${path}) was started while another actor with the same id still runs in its machine: the two would share one idempotency key, and a persisted snapshot keeps one child per id. Give each invoked or spawned step its own id (e.g. \`item-\${i}\`), or stop the first one before starting the next.`,
    { code: 'DUPLICATE_ACTOR_ID', category: 'permanent', details: { path } },
  );
}
