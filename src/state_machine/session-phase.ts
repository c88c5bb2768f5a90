/**
 * The lifecycle of a run session (run-session.ts) as one explicit phase, and the one guard every entry
 * point of the session asks before it acts.
 *
 *   running ──maybeEvict──▶ evicting ──write `waiting` committed──▶ ended
 *      │  ╲                    │
 *      │   ╲ cancel / timeout  │ timeout
 *      │    ▶ terminating ◀────┘
 *      │       ▲   │ cleanup done
 *      ▼       │   ▼
 *    ending (done, failed, cancelled; or a write the database refused) ──final write committed──▶ ended
 *
 * An ending goes back to terminating only for a cancellation of an overridable failure: one because
 * the run's state cannot be written, decided while signals were delivered and not yet written.
 *
 * `lose` (a fence or a renewal failed), `release` (graceful stop) and a crash end the session from any
 * phase. Two things are not phases, because they happen in any of them: a write in flight (its commit
 * callbacks run in every phase, and decide whether the session ends), and the replay of a restored
 * snapshot inside `start()` (state entries it produces are not news).
 */
import type { FinalStatus } from '../persistence/run-status.ts';
import type { ErrorData } from './errors.ts';

/** The statuses a run ends in. */
export type { FinalStatus };

/** How the run ends: what its final write carries. */
export interface Ending {
  status: FinalStatus;
  snapshot: unknown;
  output?: unknown;
  error?: ErrorData | undefined;
  /** Its closing history entry has been queued. */
  recorded?: boolean;
  /**
   * The run fails from its last good state — the last one written — rather than from one of its own:
   * `snapshot` is taken again when the write is built (a write in flight when the run failed makes a
   * newer one), and what was done since leaves the write: the entries of the unwritten state, and the
   * signals taken since — back to the inbox for a failure, dropped for a cancellation or a timeout
   * (session-signals.ts `endFromLastWritten`).
   */
  fromLastGood?: boolean;
  /**
   * Made by a cancellation or a timeout (run-session.ts `terminate`): a state the run cannot write does
   * not turn it into a failure. It ends as asked, from its last state written, and why the state it was
   * stopped in could not be written is recorded in its history (`state.unwritable`).
   */
  terminated?: boolean;
  /**
   * The database refused a write of this run while it was being cancelled or timed out (run-session.ts
   * `onRejected`): it ends from its last written state; a second refusal ends the session unwritten.
   */
  refused?: boolean;
  /**
   * A failure because the run's state cannot be written (over `limits.snapshotBytes`, or what JSON
   * cannot carry), decided while signals were being delivered, whose write has not been built: a
   * cancellation delivered now (later in the same read) ends the run instead, keeping this failure as
   * the reason its state was not written. Cleared once the write is built.
   */
  overridable?: boolean;
}

/** Where a session is in its life; see the module comment for the transitions. */
export type SessionPhase =
  /** The actor runs; signals are delivered, steps start, changes are written as they come. */
  | { readonly name: 'running' }
  /** The run only waits: its next write gives it up as `waiting` with its wake-up time. */
  | { readonly name: 'evicting' }
  /** A cancellation or timeout stopped the actor and the definition's cleanup runs: nothing is written. */
  | { readonly name: 'terminating' }
  /** The run has ended (or must fail): its final write is pending or in flight. */
  | { readonly name: 'ending'; readonly ending: Ending }
  /** The session has stopped: it writes nothing more and its actor is stopped. */
  | { readonly name: 'ended' };

/** What a session may be asked to do; {@link allows} says in which phases. */
export type SessionAction =
  /** Deliver a signal (or offer a buffered one again) to the actor. */
  | 'deliver'
  /** Start writing the run out as waiting. */
  | 'evict'
  /** Forget a step execution its machine stopped (the state was left), so the next one is new. */
  | 'reset-stopped-step'
  /** Stop the actor for a cancellation or a timeout. */
  | 'terminate'
  /** End the run with a final status. */
  | 'finish'
  /** Build and send a write. */
  | 'write'
  /** Queue history and mark changes for the next write. */
  | 'record';

const ALLOWED: Record<SessionPhase['name'], readonly SessionAction[]> = {
  running: ['deliver', 'evict', 'reset-stopped-step', 'terminate', 'finish', 'write', 'record'],
  // Signals wait for the next owner; a deadline still times the run out.
  evicting: ['terminate', 'finish', 'write', 'record'],
  // The cleanup's history is queued, and written with the ending.
  terminating: ['record'],
  ending: ['write', 'record'],
  ended: [],
};

/**
 * The one guard: may a session in `phase` do `action`? An ending may still be terminated while it is
 * an {@link Ending.overridable} failure: a cancellation that comes before a failure for an unwritable
 * state is written decides how the run ends.
 */
export function allows(phase: SessionPhase, action: SessionAction): boolean {
  if (action === 'terminate' && phase.name === 'ending') return phase.ending.overridable === true;
  return ALLOWED[phase.name].includes(action);
}
