/**
 * Durable `after` timers. XState keeps delayed events only in memory and does not reschedule them on
 * restore (xstate #5331, #4860): a run restored during an `after` wait would stay there forever.
 * rmapp reads the system's scheduled events after every macrostep, persists each with its absolute
 * due time, and re-arms them on restore with the time that remains.
 */
import type { AnyActorRef, AnyActor, EventObject } from 'xstate';
import { actorPath, findActor, isLiveBelow } from './actor-paths.ts';
import { NEVER_DUE_MS } from './clock.ts';
import type { TimerCatchUp } from './timer-catch-up.ts';

/** A delayed event as persisted in `rmapp_runs.timers`. */
export interface TimerRecord {
  /** XState's send id (for `after`, e.g. `xstate.after.1000.order.waiting`), so `cancel` still finds it. */
  id: string;
  source: string;
  target: string;
  event: EventObject;
  /**
   * Epoch milliseconds. {@link NEVER_DUE_MS} for a delay that ends later (`Infinity` included): such a
   * timer never fires and wakes nothing. `null` in rows written before: a `NaN` delay, due at once.
   */
  dueAt: number;
}

interface ScheduledEvent {
  source: AnyActorRef;
  target: AnyActorRef;
  event: EventObject;
  delay: number;
  id: string;
  startedAt: number;
}

interface SchedulerSystem {
  getSnapshot(): { _scheduledEvents: Record<string, ScheduledEvent> };
  scheduler: {
    schedule(source: AnyActorRef, target: AnyActorRef, event: EventObject, delay: number, id: string): void;
  };
}

/**
 * The run's pending delayed events, with absolute due times on the engine's clock: as the run's timer
 * clock recorded them when each was scheduled (`dueOf`, timer-catch-up.ts), which is right for a test
 * clock that moves only when told and for a timer held while the run catches up. Without it, XState's
 * `startedAt` (the wall clock) is mapped onto `clockNow`.
 */
export function readTimers(root: AnyActor, clockNow: number, dueOf?: (scheduled: object) => number | undefined): TimerRecord[] {
  const system = root.system as unknown as SchedulerSystem;
  const scheduled = system.getSnapshot()._scheduledEvents;
  const wallNow = Date.now();
  const timers: TimerRecord[] = [];
  for (const s of Object.values(scheduled)) {
    // Its target has stopped (a child stopped, perhaps replaced by a new one under the same id): XState
    // delivers the event to the stopped actor, which ignores it. Persisted by path, it would reach
    // the new child after a restore.
    if (!isLiveBelow(s.target, root)) continue;
    const target = actorPath(s.target, root);
    const known = dueOf?.(s);
    timers.push({
      id: s.id,
      source: actorPath(s.source, root),
      target,
      event: s.event,
      dueAt: known !== undefined ? Math.min(NEVER_DUE_MS, known) : dueAt(clockNow, s.startedAt + s.delay - wallNow),
    });
  }
  return timers;
}

/**
 * When a delayed event with `left` ms to go is due: at once for NaN (XState fires it), never past the
 * last storable instant. An overdue one keeps its time in the past, so a later restore still orders it
 * before the signals sent after it (timer-catch-up.ts).
 */
function dueAt(clockNow: number, left: number): number {
  if (Number.isNaN(left)) return clockNow;
  return Math.min(NEVER_DUE_MS, clockNow + left);
}

/**
 * Schedules persisted timers again in a restored actor, each for the time left until its original due
 * time (zero if it is past), through the session's catch-up, which holds those that come due while it
 * is active (timer-catch-up.ts). Returns the timers whose actors no longer exist.
 */
export function rearmTimers(root: AnyActor, timers: readonly TimerRecord[], now: number, catchUp: TimerCatchUp): TimerRecord[] {
  const system = root.system as unknown as SchedulerSystem;
  const dropped: TimerRecord[] = [];
  // By due time: timers that are already overdue all get delay 0 and then fire in scheduling order.
  for (const t of [...timers].sort((a, b) => a.dueAt - b.dueAt)) {
    const source = findActor(root, t.source);
    const target = findActor(root, t.target);
    if (!source || !target) {
      dropped.push(t);
      continue;
    }
    // A timer that never fires stays scheduled (a `cancel` finds it, a later write keeps it).
    const delay = t.dueAt >= NEVER_DUE_MS ? Infinity : Math.max(0, t.dueAt - now);
    // A row written before due times were stored (`null`: a NaN delay) was due at once.
    catchUp.rearm(t.dueAt ?? now, () => system.scheduler.schedule(source, target, t.event, delay, t.id));
  }
  return dropped;
}
