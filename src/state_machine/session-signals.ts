/**
 * A session's inbox side: reads the run's signals in order, delivers each to the actor exactly as
 * XState would, keeps buffered ones and offers them again after every transition of the run, and
 * remembers which were consumed (and how) so the next write marks them in the same transaction that
 * persists their effect (commits.ts).
 */
import type { AnyActor } from 'xstate';
import type { Span } from '@opentelemetry/api';
import { pendingSignals, type InboxEvent, type SignalOutcome } from '../persistence/inbox.ts';
import type { HistoryEntry } from '../persistence/runs.ts';
import { toErrorData } from './errors.ts';
import type { Ending } from './session-phase.ts';
import type { SessionHost } from './session-host.ts';
import type { TimerCatchUp } from './timer-catch-up.ts';

/** Signals with this type are handled by the engine itself. */
export const CANCEL_SIGNAL = 'rmapp.cancel';

/**
 * History entries that describe a state the run is in, or work that state began and that is not durable
 * yet: written with an ending from the last written state, they would claim a state the run never had.
 */
const UNWRITTEN_STATE_ENTRIES = new Set(['state.entered', 'step.started', 'step.resumed']);

/** Why a signal taken before a cancellation or a timeout from the last written state was left out (`signal.dropped`). */
function droppedBecause(status: Ending['status']): string {
  const how = status === 'cancelled' ? 'was cancelled' : 'timed out';
  return `taken after the run's last written state, which the run ${how} from: its state since could not be written (state.unwritable)`;
}

/** What signal delivery needs of its session. */
export interface SignalSession {
  readonly runId: string;
  readonly host: SessionHost;
  readonly segmentSpan: Span;
  /** The actor, once started. */
  actor(): AnyActor | undefined;
  /** The session's guard (session-phase.ts): may a signal be delivered now? */
  acceptsSignals(): boolean;
  /**
   * May a cancellation be delivered now: when a signal may, and also while the run's failure for a state
   * it cannot write is not yet written (the cancellation then ends the run instead, session-phase.ts).
   */
  acceptsCancel(): boolean;
  /** A read of the inbox is over (it applied its signals, or it failed). */
  readOver(): void;
  isEnded(): boolean;
  /** Queued history not yet written; a received signal goes before the state entries it caused. */
  history(): HistoryEntry[];
  record(entry: HistoryEntry): void;
  markDirty(): void;
  cancel(reason: string): void;
  /**
   * A signal changed the run; `more`: another follows at once (in the same read, or a buffered one
   * offered again after this transition). The session may check the state now, so that a state it
   * cannot write is told apart from the next signal's and names this one (run-session.ts `signalTaken`).
   */
  signalTaken(signal: { id: number; type: string }, more: boolean): void;
  /** Before a signal is offered: false when the run failed (its state could not be written) and the signal stays queued. */
  beforeSignal(): boolean;
  /** Called once a read of the inbox is over: a run that only waits may leave memory now. */
  maybeEvict(): void;
}

export class SignalDelivery {
  /** Consumed signals not yet written, with what became of each. */
  consumed: [number, SignalOutcome][] = [];
  /** Buffered signals reported kept (`signal.buffered` recorded) since the last durable write. */
  reported: number[] = [];
  /** `signal_seq` as of the last read whose signals were all applied (see commits.ts). */
  seenSignalSeq: number;
  /** Buffered signals that no state has accepted yet, oldest first. */
  kept: InboxEvent[] = [];
  /** The external event being delivered, to name it if the machine throws. */
  delivering: { type: string; state: unknown; signalId: number } | null = null;
  private lastSignalId = 0;
  /** The id of the cancellation this session applied, if any: a roll-back leaves it consumed. */
  private cancelId: number | null = null;
  /** Transitions the root has taken (see {@link rootTransitioned}): tells an event that was taken from one ignored. */
  private rootTransitions = 0;
  private pull: Promise<void> | null = null;
  private pullAgain = false;
  private retryScheduled = false;
  private keptTimer: NodeJS.Timeout | undefined;
  /** A restored run's timers, held until a read of the inbox has ordered them with its signals. */
  private catchUp: TimerCatchUp | null = null;

  constructor(
    private readonly session: SignalSession,
    signalSeq: number,
  ) {
    this.seenSignalSeq = signalSeq;
  }

  /** A read of the inbox is in flight. */
  get reading(): boolean {
    return this.pull !== null;
  }

  /**
   * Until a read of the inbox succeeds, the run's timers are held; that read delivers each signal at
   * the time it was sent, after the timers due before it, offering buffered signals again after each,
   * then ends the catch-up (timer-catch-up.ts). A read that fails keeps it for the next read.
   */
  catchUpWith(catchUp: TimerCatchUp): void {
    this.catchUp = catchUp;
    catchUp.onEach(() => this.flushKept());
  }

  /** Reads and applies signals that arrived since the last read, in order. */
  pullSignals(): Promise<void> {
    const s = this.session;
    if (this.pull) {
      this.pullAgain = true;
      return this.pull;
    }
    this.pull = (async () => {
      do {
        this.pullAgain = false;
        const { seq, events } = await pendingSignals(s.host.db, s.runId, this.lastSignalId);
        let all = true;
        for (let i = 0; i < events.length; i++) {
          const e = events[i] as InboxEvent;
          const more = i < events.length - 1;
          const delivered = this.catchUp ? this.catchUp.deliverAt(e.sentAt, () => this.deliver(e, more)) : this.deliver(e, more);
          all = delivered && all;
        }
        const catchUp = this.catchUp;
        this.catchUp = null;
        catchUp?.finish();
        if (all) this.seenSignalSeq = Math.max(this.seenSignalSeq, seq);
      } while (this.pullAgain && !s.isEnded());
    })()
      // The signals stay in the inbox; the next lease renewal reports them and they are read again.
      // A read cut by the engine's stop (its connection closed) or after the session ended is no
      // failure: the run's next owner reads them.
      .catch((err: unknown) => {
        if (s.host.stopping || s.isEnded()) return;
        // A database outage (a terminated connection, a restart) is a warning, as everywhere else.
        const level = toErrorData(err).category === 'transient' ? 'warn' : 'error';
        s.host.logger[level](
          { err, runId: s.runId },
          `rmapp: reading signals of run ${s.runId} failed; read again at the next lease renewal`,
        );
      })
      .finally(() => {
        this.pull = null;
        s.readOver();
        s.maybeEvict();
      });
    return this.pull;
  }

  /** The root took `taken` transitions: buffered signals may be accepted now. */
  rootTransitioned(taken: number): void {
    this.rootTransitions += taken;
    if (this.kept.length === 0 || this.retryScheduled) return;
    this.retryScheduled = true;
    // After the macrostep that changed the run has finished: XState processes one event at a time.
    queueMicrotask(() => this.flushKept());
  }

  /** Offers the buffered signals again if a transition asked for it and nothing has done it since. */
  private flushKept(): void {
    if (!this.retryScheduled) return;
    this.retryScheduled = false;
    this.retryKept();
  }

  /** The run's write carrying `consumed` consumed signals and `reported` reports of kept ones is durable. */
  committed(consumed: number, reported: number): void {
    this.consumed.splice(0, consumed);
    this.reported.splice(0, reported);
  }

  /**
   * The run ends from its last written state (its live state could not be written, an action threw, the
   * database refused a write): what the signals taken since that write did, and what the states entered
   * since began, is in no state the run has. One account for every such ending, whatever ended it:
   *
   * - the pending entries that describe the unwritten state go — the states it entered, the step
   *   attempts it began (their start was never durable, so no work ran: the checkpoint barrier,
   *   docs/engine-internals.md), the buffered signals it reported kept. Left, they claimed a state the
   *   run never had;
   * - a run that ends by a cancellation or a timeout (`ending.terminated`) will never read its inbox
   *   again (a cancelled run reads none; a timed-out one cannot be retried: its deadline has passed,
   *   run-retry.ts). Each signal taken since is consumed as `dropped` in the final write — its dedupe key
   *   freed, its `signal.received` / `signal.ignored` / `signal.expired` entry replaced in place by a
   *   `signal.dropped` one saying why, at `state` (the last written state's value). The cancellation
   *   stays `received`. Left in the inbox they were listed as queued for ever;
   * - a run that fails otherwise may be retried with its definition fixed (`engine.retry`): the signals
   *   stay in the inbox, not consumed, and their `signal.*` entries leave the pending history, so the
   *   retry offers them again (a failing approval was consumed, `received`, and its dedupe key then
   *   answered `duplicate`).
   *
   * Each signal is either applied in a written state, dropped here, or queued for a retry — never two.
   */
  endFromLastWritten(commits: { history: HistoryEntry[] }, state: unknown, ending: Pick<Ending, 'status' | 'terminated'>): void {
    const drop = ending.terminated === true ? droppedBecause(ending.status) : null;
    // A cancellation the run ended by was applied: it stays consumed.
    const cancel = ending.terminated === true ? this.cancelId : null;
    const taken = new Set(this.consumed.filter(([id]) => id !== cancel).map(([id]) => id));
    const kept = new Set(this.reported);
    commits.history = commits.history.flatMap((h): HistoryEntry[] => {
      if (UNWRITTEN_STATE_ENTRIES.has(h.type)) return [];
      if (!h.type.startsWith('signal.') || h.type === 'signal.dropped') return [h];
      const data = h.data as { id?: unknown; event?: unknown } | null | undefined;
      const id = data?.id as number;
      if (kept.has(id) && h.type === 'signal.buffered') return [];
      if (!taken.has(id)) return [h];
      return drop === null ? [] : [{ type: 'signal.dropped', state, data: { id, event: data?.event, reason: drop } }];
    });
    this.consumed =
      drop === null
        ? this.consumed.filter(([id]) => id === cancel)
        : this.consumed.map(([id, outcome]) => [id, id === cancel ? outcome : 'dropped']);
    this.reported = [];
  }

  /** Stops the expiry timer of buffered signals (the session ended). */
  stop(): void {
    if (this.keptTimer !== undefined) clearTimeout(this.keptTimer);
    this.keptTimer = undefined;
  }

  /** Applies one signal; false when it was left for a later owner (the run is ending or leaving). */
  private deliver(e: InboxEvent, more: boolean): boolean {
    const cancel = e.event.type === CANCEL_SIGNAL;
    if (!(cancel ? this.session.acceptsCancel() : this.session.acceptsSignals())) return false;
    if (e.id <= this.lastSignalId) return true;
    this.lastSignalId = e.id;
    if (cancel) {
      this.cancelId = e.id;
      this.consumed.push([e.id, 'received']);
      this.session.cancel(typeof e.event.reason === 'string' ? e.event.reason : 'cancelled');
      return true;
    }
    if (!this.session.beforeSignal()) return false;
    // A kept signal an earlier owner already reported buffered is not reported again on a restore.
    if (this.offer(e, !e.reported, more) === 'kept') {
      this.kept.push(e);
      this.armKeptExpiry();
    }
    return true;
  }

  /**
   * Sends one signal to the actor exactly as XState would: no pre-filter (eventless transitions and
   * guards may read any event). An event that made the root take no transition is ignored — or, when
   * buffered and not expired, kept to be offered again after the run's next transition. History says
   * which: `signal.received`, `signal.ignored`, `signal.buffered` (once, when first kept), `signal.expired`.
   */
  private offer(e: InboxEvent, first: boolean, more: boolean): SignalOutcome | 'kept' {
    const s = this.session;
    const actor = s.actor() as AnyActor;
    const before = actor.getSnapshot() as { status: string; value: unknown };
    const data = { id: e.id, event: e.event };
    if (before.status === 'active') {
      const mark = s.history().length;
      const transitions = this.rootTransitions;
      this.delivering = { type: e.event.type, state: before.value, signalId: e.id };
      actor.send(e.event);
      this.delivering = null;
      // Taken: a transition ran (a targetless one with actions, a re-entry, a sendTo keep the root's
      // snapshot object), or the snapshot changed (the machine errored, say).
      if (this.rootTransitions > transitions || actor.getSnapshot() !== before) {
        // Before the state entries of the macrostep it caused, which were placed at `mark`.
        s.history().splice(mark, 0, { type: 'signal.received', data });
        s.markDirty();
        s.segmentSpan.addEvent('signal.received', { 'signal.type': e.event.type });
        this.consumed.push([e.id, 'received']);
        // Told apart from what follows it: another signal of this read, or a buffered one offered again
        // after this transition. One that ended the machine is the ending's to name.
        const active = actor.getSnapshot().status === 'active';
        s.signalTaken({ id: e.id, type: e.event.type }, active && (more || this.kept.length > 0));
        return 'received';
      }
    }
    const reason =
      before.status === 'active'
        ? `no transition for it in state ${JSON.stringify(before.value)}`
        : `the run's machine is ${before.status}`;
    if (e.keepUntil !== null && e.keepUntil > Date.now() && before.status === 'active') {
      if (first) {
        s.record({ type: 'signal.buffered', state: before.value, data: { ...data, reason, until: new Date(e.keepUntil).toISOString() } });
        this.reported.push(e.id);
      }
      return 'kept';
    }
    const outcome: SignalOutcome = e.keepUntil !== null && before.status === 'active' ? 'expired' : 'ignored';
    s.record({ type: `signal.${outcome}`, state: before.value, data: { ...data, reason } });
    s.segmentSpan.addEvent(`signal.${outcome}`, { 'signal.type': e.event.type });
    this.consumed.push([e.id, outcome]);
    return outcome;
  }

  /** Offers the kept signals again, oldest first (after a change of the run, or at an expiry). */
  private retryKept(): void {
    const taken = new Set<InboxEvent>();
    try {
      const kept = [...this.kept];
      for (let i = 0; i < kept.length; i++) {
        const e = kept[i] as InboxEvent;
        if (!this.session.acceptsSignals() || !this.session.beforeSignal()) return;
        if (this.offer(e, false, i < kept.length - 1) !== 'kept') taken.add(e);
      }
    } finally {
      // One pass, not a search per signal taken: many taken at once stay linear.
      if (taken.size > 0) this.kept = this.kept.filter((e) => !taken.has(e));
    }
    this.armKeptExpiry();
  }

  /** A timer at the earliest expiry of a kept signal, so it is reported even if nothing changes. */
  private armKeptExpiry(): void {
    this.stop();
    if (this.kept.length === 0 || this.session.isEnded()) return;
    // A loop, not Math.min(...): a spread of more than ~100,000 arguments throws.
    let due = Infinity;
    for (const k of this.kept) due = Math.min(due, k.keepUntil ?? Infinity);
    if (!Number.isFinite(due)) return;
    this.keptTimer = setTimeout(() => this.retryKept(), Math.min(2 ** 31 - 1, Math.max(0, due - Date.now()) + 1));
    this.keptTimer.unref?.();
  }
}
