/**
 * What a session's next write carries, and the checks that fail the run instead of writing what could
 * not come back the same: a snapshot or delayed-event payload JSON cannot carry, an inline child, an
 * output JSON cannot write, a snapshot over `limits.snapshotBytes` (docs/engine-internals.md) — and
 * the failure written when the database refuses a write anyway.
 */
import type { AnyActor, AnyActorRef } from 'xstate';
import type { HistoryEntry } from '../persistence/runs.ts';
import { isAnError, LINKED_ERROR_FIELDS, linkedFields, storedSnapshotJson } from '../persistence/snapshot-codec.ts';
import { findUndurable, findUndurableValue, type UndurableValue } from './durable-check.ts';
import { storableText, storableValue, toErrorData, type ErrorData } from './errors.ts';
import type { WriteBody } from './session-commits.ts';
import { jsonBytes, SizeLimitError } from './limits.ts';
import type { SessionHost } from './session-host.ts';
import type { Ending } from './session-phase.ts';
import { readTimers, type TimerRecord } from './timers.ts';

/**
 * A live child of `actor` whose logic was given inline (no name a snapshot could hold), or a child slot
 * that holds no actor at all, at any depth. XState leaves such a slot for a `spawnChild` of a name
 * `setup({ actors })` does not register (it logs "Actor type '…' not found" and runs on) and then cannot
 * persist the snapshot: reading the slot's `src` here threw out of the write, uncaught.
 */
function inlineChild(actor: AnyActorRef, prefix = ''): UndurableValue | null {
  const children = (actor.getSnapshot() as { children?: Record<string, AnyActorRef | undefined> } | undefined)?.children ?? {};
  for (const [id, ref] of Object.entries(children)) {
    if (!ref) {
      return {
        path: `${prefix}children.${id}`,
        problem:
          'holds no actor: XState found no logic for a spawn (a `spawnChild` of a name `setup({ actors })` does not register; ' +
          'it logs "Actor type \'…\' not found"), and cannot persist the snapshot: register the logic in setup({ actors }) under that name',
      };
    }
    if (typeof (ref as { src?: unknown }).src !== 'string') {
      const found = findUndurable({ children: { [id]: { src: null } } });
      return found && { ...found, path: `${prefix}${found.path}` };
    }
    const inner = inlineChild(ref, `${prefix}children.${id}.`);
    if (inner) return inner;
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
 * A snapshot XState could not make: reading the context threw (a getter, a proxy). Whatever was thrown
 * (`undefined` too: its `.message` was read here, outside any handler, and ended the worker's process).
 */
function unpersistable(err: unknown): UndurableValue {
  // JSON.stringify's RangeError for a text past V8's longest string (~512 MB): say what it means.
  if (err instanceof RangeError && err.message === 'Invalid string length') {
    return {
      path: 'snapshot',
      problem:
        'cannot be persisted: its JSON is longer than JavaScript can build as one string (~512 MB; the limit is limits.snapshotBytes). ' +
        "Keep large data in artifacts (ctx.saveArtifact) and out of the context and held children's errors",
    };
  }
  return { path: 'snapshot', problem: `cannot be persisted: ${toErrorData(err).message}` };
}

/** {@link unpersistable} as the error a run fails with. */
export function unpersistableSnapshotError(err: unknown): ErrorData {
  return undurableError(unpersistable(err));
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads `read()`, or `fallback` when it throws. */
function readOr<T>(read: () => T, fallback: T): T {
  try {
    return read();
  } catch {
    return fallback;
  }
}

/**
 * An error as one that can be stored: an Error keeps its name and message (as text Postgres can store)
 * and its own fields, each read on its own and copied as {@link storableValue} copies (`12n`,
 * `[Circular]`, `[Unreadable: …]`); anything else is {@link storableValue}'s copy of it.
 */
function storableError(error: unknown, seen: Set<unknown> = new Set()): unknown {
  if (!readOr(() => isAnError(error), false)) return storableValue(error);
  const e = error as Error;
  const text = (v: unknown) => (typeof v === 'string' ? storableText(v) : storableValue(v));
  const message = readOr<unknown>(() => e.message, '[Unreadable]');
  const copy = new Error(message === undefined ? '' : String(text(message)));
  const name = text(readOr<unknown>(() => e.name, 'Error') ?? 'Error');
  if (copy.name !== name) Object.defineProperty(copy, 'name', { value: name, writable: true, configurable: true });
  const linked = new Set<string>(LINKED_ERROR_FIELDS);
  for (const key of readOr(() => Object.keys(e), [] as string[])) {
    if (key === '__proto__' || linked.has(key)) continue;
    (copy as unknown as Obj)[storableText(key)] = storableValue(readOr<unknown>(() => (e as unknown as Obj)[key], '[Unreadable]'));
  }
  // Its `cause` and an AggregateError's `errors`, copied in turn as the snapshot codec keeps them.
  const how = { error: (v: Error) => storableError(v, seen), other: storableValue, read: readOr };
  for (const { key, value, enumerable } of linkedFields(e, seen, how)) {
    Object.defineProperty(copy, key, { value, writable: true, configurable: true, enumerable });
  }
  return copy;
}

/**
 * Per output object of a finished child: whether JSON cannot write it or Postgres cannot store its text.
 * XState never changes a finished actor's output, and each write reads the same object again: checked once.
 */
const outputVerdicts = new WeakMap<object, boolean>();
/** A NUL or a lone surrogate as `JSON.stringify` escapes them (a literal `\\u0000` in a text matches too: a harmless copy). */
const UNSTORABLE_ESCAPE = /\\u0000|\\ud[89a-f]/i;

/**
 * Whether a held child's output must be stored as a copy ({@link storableValue}): a BigInt, a cycle,
 * a `toJSON` or getter that throws, a NUL or a lone surrogate. Anything else is written as JSON writes it.
 */
function outputNeedsCopy(output: unknown): boolean {
  if (typeof output === 'bigint') return true;
  if (typeof output === 'string') return storableText(output) !== output;
  if (typeof output !== 'object' || output === null) return false;
  const known = outputVerdicts.get(output);
  if (known !== undefined) return known;
  let verdict: boolean;
  try {
    verdict = UNSTORABLE_ESCAPE.test(JSON.stringify(output) ?? '');
  } catch {
    verdict = true;
  }
  outputVerdicts.set(output, verdict);
  return verdict;
}

/**
 * Whether the snapshot holds an actor's `error` (its own, or a child's at any depth), or a finished
 * child's output that cannot be written as it is (the root's own output is the run's: session-write's
 * ending refuses one JSON cannot write).
 */
function needsStorableCopy(snapshot: unknown, root = true): boolean {
  if (!isObj(snapshot)) return false;
  if (snapshot.error !== undefined) return true;
  if (!root && outputNeedsCopy(snapshot.output)) return true;
  if (!isObj(snapshot.children)) return !root && outputNeedsCopy(snapshot.context);
  for (const child of Object.values(snapshot.children)) if (isObj(child) && needsStorableCopy(child.snapshot, false)) return true;
  return false;
}

/**
 * A copy of a persisted snapshot in which the errors of failed children it still holds — a spawned
 * machine that threw a BigInt, a promise rejected with an object holding a cycle or an Error whose
 * getter throws, a message with a NUL — are stored as data JSON can write and Postgres can store, as a
 * step's error is (errors.ts `toErrorData`). Plain XState keeps such a child; the run's write threw in
 * the committer and ended the worker's process, or was refused by Postgres (adversarial passes).
 * So are the outputs of finished children it still holds (an invoke whose `onDone` keeps its state, a
 * spawned promise or machine not stopped): a promise resolved with a BigInt or a cycle failed the run
 * ("snapshot cannot be persisted"), one with a NUL was refused by Postgres, where plain XState runs on
 * (test/h219-xs-held-output.test.ts; docs/xstate-semantics.md, "JSON details"). So is an observable's
 * last value (its snapshot's `context`).
 */
function withStorableChildren(snapshot: unknown, root = true): unknown {
  if (!isObj(snapshot)) return snapshot;
  const out: Obj = { ...snapshot };
  // Always the copy, read once: checked on one read and written from another, a getter that changed
  // between them (a BigInt the second time) failed the run (a fourth pass).
  if (out.error !== undefined) out.error = storableError(out.error);
  if (!root && outputNeedsCopy(out.output)) out.output = storableValue(out.output);
  // A child that is not a machine (no children): its context, when durable-check.ts let one through that
  // JSON cannot write, is an observable's last value (a `fromTransition`'s state is refused there).
  if (!root && !isObj(out.children) && outputNeedsCopy(out.context)) out.context = storableValue(out.context);
  if (isObj(out.children)) {
    const children: Obj = {};
    for (const [id, child] of Object.entries(out.children))
      children[id] = isObj(child) && isObj(child.snapshot) ? { ...child, snapshot: withStorableChildren(child.snapshot, false) } : child;
    out.children = children;
  }
  return out;
}

/** The snapshot as it is written and its JSON, or why it cannot be written (what JSON cannot write where no check looked). */
function writableSnapshot(snapshot: unknown): { snapshot: unknown; snapshotJson: string } | { problem: UndurableValue } {
  try {
    // Only a snapshot holding an actor's error, or a child's output that cannot be written as it is, is
    // copied: the common write pays a look at each held output, once per output object.
    const written = needsStorableCopy(snapshot) ? withStorableChildren(snapshot) : snapshot;
    return { snapshot: written, snapshotJson: storedSnapshotJson(written) };
  } catch (err) {
    return { problem: unpersistable(err) };
  }
}

/**
 * The run's ending as it is written, or why it cannot be. The output is data for the caller, written
 * as JSON (a Date becomes its ISO string); only what JSON cannot write at all (a BigInt, a cycle) fails
 * the run. An ending on the last good snapshot was written once already (nothing to add: the session
 * writes its JSON as it was written).
 */
export function checkedEnding(
  ending: Ending,
  lastGoodSnapshot: unknown,
  host: Pick<SessionHost, 'limits' | 'toError'>,
): { problem: ErrorData } | { snapshot: unknown; snapshotJson: string } | null {
  if (ending.snapshot === lastGoodSnapshot) return null;
  // A machine that reached a final state is never restored: its references need not reconnect.
  const final = (ending.snapshot as { status?: unknown } | null)?.status === 'done';
  const bad = findUndurable(ending.snapshot, '', undefined, !final) ?? unwritable(ending.output);
  if (bad) return { problem: undurableError(bad) };
  const written = writableSnapshot(ending.snapshot);
  if ('problem' in written) return { problem: undurableError(written.problem) };
  // The last write is held to the limit as every other is: a final transition that assigned a large
  // output wrote a row of any size (a 300 MB one, or a database error for one over Postgres's 255 MB).
  const tooLarge = oversizedSnapshot(written.snapshotJson, host);
  return tooLarge ? { problem: tooLarge } : written;
}

/**
 * The state a cancellation or a timeout ends a run in: the actor's, if it can be written; otherwise the
 * last state written (`lastGoodSnapshot`), with why the actor's cannot be — over `limits.snapshotBytes`,
 * what JSON cannot carry, a context whose reading throws. The run ends as asked either way (cancelled
 * with its reason, or failed for its timeout): checked only at its final write, such a state used to
 * turn a cancellation into a failure for its size, and the cancellation's reason was lost. The reason
 * goes into the run's history instead (`state.unwritable`), and no state over the limit is written.
 *
 * @example
 * const { snapshot, unwritable } = terminatedState(actor, lastGoodSnapshot, host);
 * if (unwritable) history.push({ type: 'state.unwritable', data: { error: unwritable } });
 */
export function terminatedState(
  actor: AnyActor,
  lastGoodSnapshot: unknown,
  host: Pick<SessionHost, 'limits' | 'toError'>,
): { snapshot: unknown; unwritable?: ErrorData } {
  let snapshot: unknown;
  try {
    snapshot = actor.getPersistedSnapshot();
  } catch (err) {
    return { snapshot: lastGoodSnapshot, unwritable: unpersistableSnapshotError(err) };
  }
  const checked = checkedEnding({ status: 'cancelled', snapshot }, lastGoodSnapshot, host);
  return checked && 'problem' in checked ? { snapshot: lastGoodSnapshot, unwritable: checked.problem } : { snapshot };
}

/** The entries a cancellation or a timeout closes a run with (run-session.ts `terminate`). */
const TERMINATION_ENTRIES = new Set(['run.cancelled', 'run.timed_out']);

/**
 * The history a cancelled or timed-out run is written with after the database refused one of its writes
 * (a data error: the write can never succeed): the run still ends as asked, from its last written state,
 * with the refusal as why that state is the last (`state.unwritable`, before the cancellation's or
 * timeout's entry). Only entries the engine made of stored data are kept — the signals' (their events
 * came from the inbox), the earlier `state.unwritable`, the termination's — since what was refused may
 * be any other entry (a step's error, a cleanup's); the signals' are then dropped with the rest of the
 * unwritten state (session-signals.ts `endFromLastWritten`).
 */
export function historyAfterRefusal(history: HistoryEntry[], refusal: ErrorData): HistoryEntry[] {
  const kept = history.filter((h) => h.type.startsWith('signal.') || h.type === 'state.unwritable' || TERMINATION_ENTRIES.has(h.type));
  const at = kept.findIndex((h) => TERMINATION_ENTRIES.has(h.type));
  const entry = unwritableStateEntry(refusal);
  return at < 0 ? [...kept, entry] : [...kept.slice(0, at), entry, ...kept.slice(at)];
}

/** The history entry of a run terminated in a state it could not write (see {@link terminatedState}). */
export function unwritableStateEntry(error: ErrorData): HistoryEntry {
  return { type: 'state.unwritable', data: { error } };
}

/** The run's failure when a snapshot's JSON is over `limits.snapshotBytes`, or null. */
function oversizedSnapshot(snapshotJson: string, host: Pick<SessionHost, 'limits' | 'toError'>): ErrorData | null {
  const bytes = jsonBytes(snapshotJson);
  if (bytes <= host.limits.snapshotBytes) return null;
  // Fail the run with a clear error instead of writing (or being refused) a huge row.
  return host.toError(
    new SizeLimitError(
      "The run's snapshot",
      'snapshotBytes',
      bytes,
      host.limits.snapshotBytes,
      'Keep large data in artifacts (ctx.saveArtifact) rather than in the context.',
    ),
  );
}

/** The running actor's state as the next write carries it, or why it cannot be written. */
export type CapturedState = { snapshot: unknown; snapshotJson: string; timers: TimerRecord[] } | { problem: ErrorData };

/**
 * Reads the actor's persisted snapshot and its delayed events, checked: refused at the first write that
 * would carry them, before a step's work can start on them. `dueOf` gives the due time the run's timer
 * clock recorded for a scheduled event (timers.ts `readTimers`).
 */
export function captureState(
  actor: AnyActor,
  host: Pick<SessionHost, 'limits' | 'clock' | 'toError'>,
  dueOf?: (scheduled: object) => number | undefined,
): CapturedState {
  let snapshot: unknown;
  let bad: UndurableValue | null;
  try {
    snapshot = actor.getPersistedSnapshot();
    bad = findUndurable(snapshot, '', actor.getSnapshot());
  } catch (err) {
    // XState's development build refuses to persist an inline child; name it like the check does.
    bad = inlineChild(actor) ?? unpersistable(err);
  }
  if (bad) return { problem: undurableError(bad) };
  const written = writableSnapshot(snapshot);
  if ('problem' in written) return { problem: undurableError(written.problem) };
  const { snapshotJson } = written;
  snapshot = written.snapshot;
  const tooLarge = oversizedSnapshot(snapshotJson, host);
  if (tooLarge) return { problem: tooLarge };
  const timers = readTimers(actor, host.clock.now(), dueOf);
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

/**
 * What the session decides about a write; the rest of its body (timers, step records, signals seen,
 * the state value) the session fills in from its own state.
 */
export type WriteDecision = Pick<WriteBody, 'status' | 'snapshot' | 'snapshotJson' | 'output' | 'error' | 'release' | 'wakeAt'>;

/** The write of a live actor's state: the run stays `running` and held. */
export function runningWrite(state: { snapshot: unknown; snapshotJson: string }): WriteDecision {
  const { snapshot, snapshotJson } = state;
  return { status: 'running', snapshot, snapshotJson, output: null, error: null, release: false, wakeAt: null };
}

/** The write of a run that only waits (session-eviction.ts): given up as `waiting` until `wake`, or a signal. */
export function waitingWrite(state: { snapshot: unknown; snapshotJson: string }, wake: number | null): WriteDecision {
  return { ...runningWrite(state), status: 'waiting', release: true, wakeAt: wake === null ? null : new Date(wake) };
}

/** The closing history entry of an ending (`run.failed`, `run.succeeded`), queued once: the ending is marked recorded. */
export function closingEntries(ending: Ending): HistoryEntry[] {
  if (ending.recorded) return [];
  ending.recorded = true;
  if (ending.status === 'failed') return [{ type: 'run.failed', data: { error: ending.error } }];
  if (ending.status === 'succeeded') return [{ type: 'run.succeeded' }];
  return [];
}

/** The final write of a run that ends: its status, snapshot, output or error; the run is given up. */
export function endingWrite(ending: Ending, written: { snapshot: unknown; snapshotJson: string } | null): WriteDecision {
  const { status } = ending;
  const snapshot = written ? written.snapshot : ending.snapshot;
  return {
    status,
    snapshot,
    snapshotJson: written?.snapshotJson,
    output: ending.output ?? null,
    error: ending.error ?? null,
    release: true,
    wakeAt: null,
  };
}

/**
 * The run's failure when the database refused its write's data (a check the session missed): the run
 * fails with it, from its last good snapshot, instead of retrying a write that can never succeed.
 */
export function rejectedWriteError(cause: ErrorData): ErrorData {
  return { ...cause, code: 'WRITE_REJECTED', category: 'permanent', message: `The database refused the run's state: ${cause.message}` };
}
