/**
 * What a session's next write carries, and the checks that fail the run instead of writing what could
 * not come back the same: a snapshot or delayed-event payload JSON cannot carry, an inline child, an
 * output JSON cannot write, a snapshot over `limits.snapshotBytes` (docs/engine-internals.md).
 */
import type { AnyActor, AnyActorRef } from 'xstate';
import { findUndurable, findUndurableValue, type UndurableValue } from './durable-check.ts';
import type { ErrorData } from './errors.ts';
import { jsonBytes, SizeLimitError } from './limits.ts';
import type { SessionHost } from './session-host.ts';
import type { Ending } from './session-phase.ts';
import { readTimers, type TimerRecord } from './timers.ts';

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

/**
 * Why the run's ending cannot be written as it is, or null. The output is data for the caller, written
 * as JSON (a Date becomes its ISO string); only what JSON cannot write at all (a BigInt, a cycle) fails
 * the run. An ending on the last good snapshot was written once already.
 */
export function endingProblem(ending: Ending, lastGoodSnapshot: unknown): ErrorData | null {
  if (ending.snapshot === lastGoodSnapshot) return null;
  const bad = findUndurable(ending.snapshot) ?? unwritable(ending.output);
  return bad && undurableError(bad);
}

/** The running actor's state as the next write carries it, or why it cannot be written. */
export type CapturedState = { snapshot: unknown; snapshotJson: string; timers: TimerRecord[] } | { problem: ErrorData };

/**
 * Reads the actor's persisted snapshot and its delayed events, checked: refused at the first write that
 * would carry them, before a step's work can start on them.
 */
export function captureState(actor: AnyActor, host: Pick<SessionHost, 'limits' | 'clock' | 'toError'>): CapturedState {
  let snapshot: unknown;
  let bad: UndurableValue | null;
  try {
    snapshot = actor.getPersistedSnapshot();
    bad = findUndurable(snapshot);
  } catch (err) {
    // XState's development build refuses to persist an inline child; name it like the check does.
    bad = inlineChild(actor) ?? { path: 'snapshot', problem: `cannot be persisted: ${(err as Error).message}` };
  }
  if (bad) return { problem: undurableError(bad) };
  const snapshotJson = JSON.stringify(snapshot);
  const bytes = jsonBytes(snapshotJson);
  if (bytes > host.limits.snapshotBytes) {
    // Fail the run with a clear error instead of writing (or being refused) a huge row.
    return {
      problem: host.toError(
        new SizeLimitError(
          "The run's snapshot",
          'snapshotBytes',
          bytes,
          host.limits.snapshotBytes,
          'Keep large data in artifacts (ctx.saveArtifact) rather than in the context.',
        ),
      ),
    };
  }
  const timers = readTimers(actor, host.clock.now());
  // A delayed event's payload is stored with its timer: one JSON cannot carry would arrive changed
  // after a restore, or (a BigInt) could not be written at all.
  const badTimer = timers
    .map((t, i) => {
      const found = findUndurableValue(t.event, `timers[${i}].event`);
      return found && { ...found, problem: `${found.problem} (in the payload of the delayed event ${JSON.stringify(t.event.type)})` };
    })
    .find(Boolean);
  if (badTimer) return { problem: undurableError(badTimer) };
  return { snapshot, snapshotJson, timers };
}
