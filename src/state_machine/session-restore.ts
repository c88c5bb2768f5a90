/**
 * Bringing a claimed run's actor to life: restoring its persisted snapshot (or creating it), and
 * reading how the machine ended — a final state (succeeded, or a failure state the definition names),
 * or an error of the machine itself, named with the event and state it met.
 */
import { createActor, type AnyActor, type AnyActorRef, type InspectionEvent, type Snapshot } from 'xstate';
import type { ClaimedRun } from '../persistence/claims.ts';
import type { WorkflowDefinition } from './definition.ts';
import type { ErrorData } from './errors.ts';
import type { SessionHost } from './session-host.ts';
import type { ActorClock } from './timer-catch-up.ts';
import type { Ending } from './session-phase.ts';
import { findRestoreProblem } from './snapshot-check.ts';
import { descendants } from './actor-paths.ts';

/** The actor of a claimed run, or the failure of a run whose persisted snapshot cannot be restored. */
export type RestoredActor = { actor: AnyActor; isNew: boolean } | { problem: ErrorData };

function restoreError(reason: string): ErrorData {
  const message = `The persisted snapshot cannot be restored: ${reason}.`;
  return { name: 'RestoreError', message, code: 'SNAPSHOT_RESTORE_FAILED', category: 'permanent' };
}

/**
 * Creates the run's actor (not started) from its persisted snapshot, or fresh when it has none. The
 * snapshot is checked against the definition first: XState would silently drop a child whose `src` is
 * gone (docs/xstate-semantics.md). Inspection events go to `onInspect`, then to the host's inspector,
 * which may never break a run. XState's delayed events run on `clock`: the engine's, through the run's
 * timer clock, which notes their due times and holds them while a restored run catches up
 * (timer-catch-up.ts).
 */
export function restoreActor(
  host: SessionHost,
  row: ClaimedRun,
  definition: WorkflowDefinition,
  onInspect: (ev: InspectionEvent) => void,
  clock: ActorClock,
): RestoredActor {
  const isNew = row.snapshot == null;
  if (!isNew) {
    const problem = findRestoreProblem(definition.machine, row.snapshot);
    if (problem) return { problem: restoreError(problem) };
  }
  try {
    const actor = createActor(definition.machine, {
      input: machineInput(definition, row.input),
      clock,
      ...(isNew ? {} : { snapshot: row.snapshot as Snapshot<unknown> }),
      inspect: (ev) => {
        onInspect(ev);
        try {
          host.inspect?.(ev);
        } catch {
          // An inspector that fails must never break a run.
        }
      },
    });
    if (!isNew) bookIdsPastRestored(actor);
    return { actor, isNew };
  } catch (err) {
    return { problem: restoreError((err as Error).message) };
  }
}

/** Per definition: whether its input schema takes `undefined` but not `null` (see {@link machineInput}). */
const nullMeansAbsent = new WeakMap<WorkflowDefinition, boolean>();

/**
 * The input the machine gets. A start without input stores JSON's `null` (jsonb holds no `undefined`);
 * when the workflow's schema refuses `null` and takes `undefined` (`z.object(…).optional()`), that null
 * can only have been an absent input, and the machine gets `undefined` as plain XState would — a
 * `({ input = {} })` default then applies instead of failing on null. A schema taking both keeps `null`.
 */
function machineInput(definition: WorkflowDefinition, stored: unknown): unknown {
  if (stored !== null) return stored;
  let absent = nullMeansAbsent.get(definition);
  if (absent === undefined) {
    try {
      absent = !definition.input.safeParse(null).success && definition.input.safeParse(undefined).success;
    } catch {
      // An async refinement cannot be checked here: the input stays as stored.
      absent = false;
    }
    nullMeansAbsent.set(definition, absent);
  }
  return absent ? undefined : null;
}

/**
 * XState names a child spawned without an id after its session id, `x:<n>` from a counter global to
 * the process (xstate's `createSystem`). Restored in a fresh process, where that counter starts again
 * near 0, a run's next unnamed child took the id of a restored one and replaced it: the child's state
 * lost, two refs in the context naming one actor. The restored run's system books its ids past every
 * `x:<n>` its actors hold, and past the process's counter (so no restored actor's session id either).
 */
function bookIdsPastRestored(actor: AnyActor): void {
  const system = actor.system as unknown as { _bookId?: () => string };
  const book = system._bookId;
  if (typeof book !== 'function') return;
  // BigInt: an id the user chose may hold any number of digits.
  let next = 0n;
  const visit = (ref: AnyActorRef, depth: number) => {
    const n = /^x:(\d{1,1000})$/.exec(ref.id)?.[1];
    if (n !== undefined && BigInt(n) >= next) next = BigInt(n) + 1n;
    const children = depth < 100 ? (ref.getSnapshot() as { children?: Record<string, AnyActorRef> } | undefined)?.children : undefined;
    for (const child of Object.values(children ?? {})) visit(child, depth + 1);
  };
  visit(actor, 0);
  if (next === 0n) return;
  system._bookId = () => {
    const counted = BigInt(/^x:(\d{1,1000})$/.exec(book())?.[1] ?? 0);
    if (counted > next) next = counted;
    return `x:${next++}`;
  };
}

/**
 * Starts a run's actor. A restored one is started without the `xstate.snapshot.<id>` events its
 * children with `syncSnapshot` (an invoke with `onSnapshot`, `spawnChild(…, { syncSnapshot: true })`)
 * send their parents as they start: XState's `start()` gives every observer the actor's current
 * snapshot, and a synced child relays it — but that snapshot is the one the parent already took before
 * the run was written, so plain XState, which never stopped, sends nothing then. A run leaves memory
 * whenever it only waits for a signal, so an `onSnapshot` handler ran once more per event the run took
 * (a counter of snapshots seen went `[0,1,2]` → `[0,0,1,1,1,2]`). Only each restored child's first
 * snapshot relay, carrying the snapshot the restore gave it, is dropped, and only during `start()`: any
 * other (a new snapshot, or the same one for an event it ignored, which XState relays too) passes as
 * in XState.
 */
export function startActor(actor: AnyActor, restored: boolean): void {
  if (!restored) return void actor.start();
  const system = actor.system as unknown as { _relay?: (source: AnyActorRef, target: AnyActorRef, event: { type: string }) => void };
  const relay = system._relay;
  // XState's internal: an XState without it starts the actor as XState does (the extra relay comes back).
  if (typeof relay !== 'function') return void actor.start();
  // Each restored child's own snapshot, by the child: its start relays it once, as the first relay it
  // makes (its mailbox starts after), and only that relay is dropped. A snapshot set shared by all
  // children dropped more: a child given an event during start() (the parent's reply to a callback
  // that re-ran and sent at once) that it ignored relays the very same object, as XState does for any
  // ignored event, and its parent's `onSnapshot` never saw the event.
  const restoredSnapshots = new Map<AnyActorRef, unknown>();
  for (const { ref } of descendants(actor)) restoredSnapshots.set(ref, ref.getSnapshot());
  system._relay = (source, target, event) => {
    // Only a snapshot relay ends the child's turn: a callback's `sendBack` during its start comes first.
    if (event.type === `xstate.snapshot.${source.id}` && restoredSnapshots.has(source)) {
      const restoredSnapshot = restoredSnapshots.get(source);
      restoredSnapshots.delete(source);
      if (restoredSnapshot === (event as { snapshot?: unknown }).snapshot) return;
    }
    relay.call(system, source, target, event);
  };
  try {
    actor.start();
  } finally {
    system._relay = relay;
  }
}

/** How a run whose machine reached a final state ends: succeeded, or failed in a failure state. */
export function endingOfDone(actor: AnyActor, definition: WorkflowDefinition, snap: { value: unknown; output?: unknown }): Ending {
  const failed = typeof snap.value === 'string' && definition.failureStates?.includes(snap.value);
  if (!failed) return { status: 'succeeded', snapshot: actor.getPersistedSnapshot(), output: snap.output };
  const reported = (snap.output as { error?: Partial<ErrorData> } | undefined)?.error;
  const error: ErrorData = {
    name: reported?.name ?? 'WorkflowFailed',
    message: reported?.message ?? `The workflow ended in its failure state "${String(snap.value)}".`,
    code: reported?.code ?? 'WORKFLOW_FAILED',
    category: reported?.category ?? 'permanent',
    details: reported?.details,
  };
  return { status: 'failed', snapshot: actor.getPersistedSnapshot(), output: snap.output, error };
}

/** An event the root machine was handling, with the state it met it in (and its inbox id, for a signal). */
export type HandledEvent = { type: string; state: unknown; signalId?: number } | null;

/**
 * What the run failed with when its machine errored. An exception thrown by a guard, an action or an
 * eventless transition (XState's `error` status) is a permanent error of the definition, named with
 * the event and the state — an external event (`delivering`), or one the machine sent itself
 * (`processing`: a delayed `after`, `raise` or `sendTo` that fired, a child's `sendParent`). A child's
 * own failure reaching the root unhandled (`xstate.error.actor.*`: a step's or promise's rejection)
 * keeps its own classification.
 */
export function machineError(
  toError: (err: unknown) => ErrorData,
  err: unknown,
  delivering: HandledEvent,
  processing: HandledEvent,
): ErrorData {
  // The signal is named whatever the error: a retry may leave it out (run-retry.ts, `dropSignal`).
  const signal = delivering?.signalId !== undefined ? { signal: { id: delivering.signalId, type: delivering.type } } : {};
  const data = { ...toError(err), ...signal };
  if ((err as { category?: unknown } | null)?.category !== undefined) return data;
  const during = delivering
    ? ` (while handling event "${delivering.type}" in state ${JSON.stringify(delivering.state)})`
    : processing && !processing.type.startsWith('xstate.error.actor.')
      ? ` (while handling ${processing.type.startsWith('xstate.after.') ? 'the delayed ' : ''}event "${processing.type}" in state ${JSON.stringify(processing.state)})`
      : null;
  if (during === null) return data;
  return { ...data, code: 'MACHINE_ERROR', category: 'permanent', message: `${data.message}${during}` };
}
