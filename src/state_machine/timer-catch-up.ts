/**
 * Catching up on a restored run's overdue timers in XState's order. A run whose worker was away (a
 * deploy, a crash, a lease wait) past a delayed event's due time comes back with the timer overdue
 * and, often, signals that were sent meanwhile. Plain XState, running the whole time, would have
 * taken every signal sent before the due time first, then the delayed event, then the later signals.
 * So while a restored run with signals waiting catches up, its timers are held instead of firing: the
 * overdue ones at once, and any that comes due before the session's first successful read of the
 * inbox; that read releases them in due-time order between the signals, each signal at the time it
 * was sent, buffered signals offered again after each (docs/xstate-semantics.md, "Overdue timers and
 * signals").
 *
 * During the catch-up the run lives on a virtual clock: a timer fired (or a signal delivered) at its
 * own time that schedules another delay schedules it from that time, so chains of delays keep their
 * spacing; one that is overdue as well is held and ordered with the rest, one still to come is armed
 * for the time that is left. A restored run without signals catches up the same way, at once: its
 * overdue timers, and the overdue delays they start, fire in due-time order on the virtual clock.
 *
 * Every run's actor gets this clock, catching up or not: it records each scheduled event's due time on
 * the engine's clock (virtual, persisted, or now + delay), which is what the run persists
 * (timers.ts `readTimers`). XState dates its records with the wall clock, which a test clock that
 * moves only when told does not follow, and which would move a held overdue timer to the restore's time.
 */
import type { AnyActor, AnyActorRef, EventObject } from 'xstate';
import type { Clock } from './clock.ts';

/**
 * What {@link TimerCatchUp.attach} uses of an XState system: its scheduler, and the records it keeps by
 * `${source.sessionId}.${id}` (XState's `createScheduledEventId`).
 */
interface SchedulingSystem {
  scheduler: {
    schedule(source: AnyActorRef, target: AnyActorRef, event: EventObject, delay: number, id?: string): void;
    cancel(source: AnyActorRef, id: string): void;
  };
  _snapshot: { _scheduledEvents: Record<string, object> };
}

/** XState's clock option: what the actor's scheduler calls. */
export interface ActorClock {
  setTimeout(fn: (...args: unknown[]) => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** A timer handed to XState: armed on the engine's clock, or held until the catch-up reaches it. */
interface Handle {
  real?: unknown;
  held?: Held;
}

interface Held {
  fn: () => void;
  /** The handle XState keeps: armed for real if the catch-up ends without firing this timer. */
  handle: Handle;
  dueAt: number;
}

/** The engine clock behind one run's actor, holding its timers while the run catches up. */
export class TimerCatchUp {
  /** Held timers in due-time order, in scheduling order within an instant (as XState fires those). */
  private held: Held[] = [];
  private holding = false;
  /** The virtual time of the timer or signal being handled during the catch-up, else null. */
  private virtualNow: number | null = null;
  /** Set by `rearm` for the timer it schedules next: its persisted due time. */
  private nextDue: number | null = null;
  /** The due time of the timer XState's scheduler is asking for, until its wrapper (attach) notes it. */
  private noted: number | null = null;
  /** XState's record of each scheduled event (a new object per schedule) → its due time on the engine's clock. */
  private readonly dues = new WeakMap<object, number>();
  /** Run after each timer or signal the catch-up handles (signal delivery offers buffered signals again). */
  private afterEach: (() => void) | null = null;

  constructor(private readonly clock: Clock) {}

  /** The clock to give the run's actor (XState's `clock` option). */
  readonly actorClock: ActorClock = {
    setTimeout: (fn, ms) => this.set(fn as () => void, ms),
    clearTimeout: (handle) => this.clear(handle as Handle | undefined),
  };

  /**
   * The run's root actor, once created (before it starts). Its system's scheduler is wrapped so that
   * each record XState makes is noted with the due time this clock gave its timer, found by its key at
   * once: scanning the system's records on every schedule made a run's n timers cost O(n²) (5,000
   * timers scheduled in one macrostep: 7.6–7.9 s against 28–81 ms in plain XState; bench/README.md).
   */
  attach(actor: AnyActor): void {
    const system = actor.system as unknown as SchedulingSystem;
    const { scheduler } = system;
    const schedule = scheduler.schedule;
    // XState's own default id, made here so that the record's key is known.
    scheduler.schedule = (source, target, event, delay, id = Math.random().toString(36).slice(2)) => {
      this.noted = null;
      // Scheduled again under the id of one still pending (neither cancelled): XState replaces its
      // record but leaves the earlier timer armed, and the first of the two to fire deletes the record.
      // The earlier is cancelled here, so only the later fires — in memory as after a restore, which
      // has only the record — instead of the earlier alone when the run was evicted between the two
      // (docs/xstate-semantics.md, "A delayed event scheduled twice under one send id").
      if (system._snapshot._scheduledEvents[`${source.sessionId}.${id}`]) scheduler.cancel(source, id);
      try {
        schedule.call(scheduler, source, target, event, delay, id);
        const record = system._snapshot._scheduledEvents[`${source.sessionId}.${id}`];
        if (record && this.noted !== null) this.dues.set(record, this.noted);
      } finally {
        this.noted = null;
      }
    };
  }

  /** The due time recorded for XState's record of a scheduled event, on the engine's clock. */
  dueOf(scheduled: object): number | undefined {
    return this.dues.get(scheduled);
  }

  /**
   * Holds, from now until {@link finish}, every timer that comes due: the overdue ones the restore
   * re-arms, and any that falls due while the first read of the inbox is on its way.
   */
  begin(): void {
    this.holding = true;
  }

  /** `fn` runs after each timer or signal the catch-up handles, on its virtual clock. */
  onEach(fn: () => void): void {
    this.afterEach = fn;
  }

  /**
   * Schedules a persisted timer again through `schedule`, which calls XState's scheduler at once. An
   * overdue one keeps its due time: a write made before it fires persists that, not the restore's
   * time, so a crash meanwhile leaves the next restore the same order to follow.
   */
  rearm(dueAt: number, schedule: () => void): void {
    this.nextDue = dueAt;
    try {
      schedule();
    } finally {
      this.nextDue = null;
    }
  }

  /**
   * Fires the held timers due at or before `at`, earliest first, then runs `deliver` (a signal sent at
   * `at`) on the virtual clock. Outside a catch-up, it only runs `deliver`.
   */
  deliverAt<T>(at: number, deliver: () => T): T {
    if (!this.holding) return deliver();
    // A signal cannot have been sent later than now: clocks of different hosts may disagree.
    const when = Math.min(at, this.clock.now());
    this.releaseUntil(when);
    return this.onVirtualClock(when, deliver);
  }

  /**
   * Ends the catch-up: fires every held timer in due-time order, then lets timers fire as they come. If
   * firing one throws, the rest are armed to fire at once rather than lost.
   */
  finish(): void {
    if (!this.holding) return;
    try {
      this.releaseUntil(Infinity);
    } finally {
      this.holding = false;
      this.afterEach = null;
      const rest = this.held;
      this.held = [];
      for (const h of rest) {
        h.handle.held = undefined;
        h.handle.real = this.clock.setTimeout(h.fn, 0);
      }
    }
  }

  private releaseUntil(until: number): void {
    for (;;) {
      const next = this.held[0];
      if (!next || next.dueAt > until || !this.holding) return;
      this.held.shift();
      next.handle.held = undefined;
      this.onVirtualClock(next.dueAt, next.fn);
    }
  }

  private onVirtualClock<T>(at: number, fn: () => T): T {
    const outer = this.virtualNow;
    this.virtualNow = at;
    try {
      const result = fn();
      this.afterEach?.();
      return result;
    } finally {
      this.virtualNow = outer;
    }
  }

  private hold(handle: Handle, fn: () => void, dueAt: number): void {
    handle.real = undefined;
    const held: Held = { fn, handle, dueAt };
    handle.held = held;
    // Kept in due-time order (scheduling order within an instant): each release takes the first.
    let lo = 0;
    let hi = this.held.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.held[mid]!.dueAt <= dueAt) lo = mid + 1;
      else hi = mid;
    }
    this.held.splice(lo, 0, held);
  }

  private set(fn: () => void, delay: number): Handle {
    const handle: Handle = {};
    // NaN fires at once, as Node's setTimeout does.
    const ms = Number.isNaN(delay) ? 0 : delay;
    const now = this.clock.now();
    // Its due time on the run's timeline: persisted (a re-armed timer), virtual (set while a timer or a
    // signal of the catch-up is handled), or from now.
    const dueAt = this.nextDue ?? (this.virtualNow ?? now) + ms;
    // XState stores its record of the event, then asks for the timer: the scheduler's wrapper (attach) notes it.
    this.noted = dueAt;
    if (!this.holding) {
      handle.real = this.clock.setTimeout(fn, ms);
      return handle;
    }
    if (dueAt <= now) {
      this.hold(handle, fn, dueAt);
      return handle;
    }
    // Still to come: armed for what is left of it; if it comes due before the catch-up ends, held then.
    const left = this.nextDue !== null ? ms : dueAt - now;
    handle.real = this.clock.setTimeout(() => (this.holding ? this.hold(handle, fn, dueAt) : fn()), left);
    return handle;
  }

  private clear(handle: Handle | undefined): void {
    if (!handle) return;
    if (handle.held) {
      const i = this.held.indexOf(handle.held);
      if (i >= 0) this.held.splice(i, 1);
      handle.held = undefined;
      return;
    }
    this.clock.clearTimeout(handle.real);
  }
}
