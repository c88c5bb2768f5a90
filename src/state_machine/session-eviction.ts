/**
 * The question behind eviction: does the run only wait, and until when? A run that only waits (a
 * durable sleep, a backoff, an `after` timer, a buffered signal, or nothing) longer than
 * `evictAfterMs` is written out as `waiting` with its wake-up time and leaves memory.
 *
 * Separate from run-session.ts because these are pure reads of the actor tree and the session's
 * timers; whether the session may evict at all (its phase) and what it does then stay with the session.
 */
import type { AnyActor } from 'xstate';
import type { InboxEvent } from '../persistence/inbox.ts';
import { descendants, isMachineActor } from './actor-paths.ts';
import type { TimerRecord } from './timers.ts';
import { NEVER_DUE_MS } from './clock.ts';

/**
 * True when the actor is active and nothing in it runs: no step's work is executing, and every live
 * non-machine child (a step, a callback, a promise) is a step parked in a durable wait (`sleeping`).
 */
export function onlyWaits(actor: AnyActor, executing: ReadonlySet<unknown>, sleeping: ReadonlyMap<string, readonly number[]>): boolean {
  if (actor.getSnapshot().status !== 'active' || executing.size > 0) return false;
  for (const { path, ref } of descendants(actor)) {
    if (!isMachineActor(ref) && ref.getSnapshot().status === 'active' && !sleeping.has(path)) return false;
  }
  return true;
}

/** What a waiting run may wake for. */
export interface WakeSources {
  /** The session clock's now. */
  now: number;
  /** Delayed events (`after`), by clock due time. */
  timers: readonly TimerRecord[];
  /** Steps in a durable sleep or backoff: path → the clock due time of each sleep in flight. */
  sleeping: ReadonlyMap<string, readonly number[]>;
  /** Buffered signals: each wakes the run at its expiry (wall-clock `keepUntil`) to report it expired. */
  kept: readonly InboxEvent[];
  /** The run's deadline. */
  deadlineAt: Date | null;
}

/**
 * The earliest time (clock ms) the run must wake, or null when only a signal can wake it.
 *
 * @example
 * const wake = nextWake({ now: clock.now(), timers, sleeping, kept: signals.kept, deadlineAt: row.deadlineAt });
 * if (wake !== null && wake - clock.now() <= evictAfterMs) return; // wakes too soon to leave memory
 */
export function nextWake(w: WakeSources): number | null {
  let earliest = Infinity;
  // A timer or sleep that never ends (due past the last storable instant) wakes nothing. A loop, not
  // Math.min(...): a spread of more than ~100,000 arguments (a run's timers) throws.
  const consider = (due: number) => {
    if (due < NEVER_DUE_MS && due < earliest) earliest = due;
  };
  // A row written before due times were stored (`null`: a NaN delay) was due at once.
  for (const t of w.timers) consider(t.dueAt ?? w.now);
  for (const dues of w.sleeping.values()) for (const due of dues) consider(due);
  for (const k of w.kept) consider(w.now + Math.max(0, (k.keepUntil ?? Infinity) - Date.now()));
  if (w.deadlineAt) consider(w.deadlineAt.getTime());
  return earliest === Infinity ? null : earliest;
}
