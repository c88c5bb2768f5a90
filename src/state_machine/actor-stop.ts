/**
 * Stopping a run's actor tree, as XState's `actor.stop()` does, in time linear in its children.
 *
 * XState stops a machine with a stop macrostep that resolves one stop action per child, and each
 * copies the snapshot's whole `children` object (`resolveStop`): O(children²). Plain XState pays it
 * once, when the application stops the actor; rmapp stops a run's actor each time the run leaves
 * memory, which for a run that only waits is after every event it takes — 2 s per event with 3,000
 * spawned child machines (bench/many-children.ts), so enough children would block the event loop past
 * the lease. Here each machine's stop macrostep runs on a copy of its snapshot without children, and
 * its children are stopped where XState stops them: in that macrostep's deferred effects.
 *
 * So what XState's stop does is kept: every system id of the tree is freed first (a cleanup that looks
 * a sibling up finds nothing); the children stop in order, each one's own children before it, while
 * the machine is still processing its stop, so what a child sends meanwhile (a cleanup's `sendBack`,
 * an error thrown in it) is queued on the machine and dropped with its mailbox; the machine's
 * observers — those subscribed by then, less those gone — are completed last; snapshots taken before
 * the stop keep their children. What differs is only what XState's inspection reports: no
 * `xstate.stopChild` action per child.
 */
import type { AnyActorRef } from 'xstate';
import { isMachineActor } from './actor-paths.ts';

/** The parts of XState's actor this reaches: what its stop macrostep and its system use (xstate's `Actor`). */
interface ActorInternals {
  _snapshot: MachineSnapshotLike;
  /** Effects run once the macrostep's snapshot is set, before a stop's `_stopProcedure` and `_complete`. */
  _deferred: (() => void)[];
  /** 0 not started, 1 running, 2 stopped (xstate's `ProcessingStatus`). */
  _processingStatus: number;
  _stop(): unknown;
  system: { _unregister(ref: AnyActorRef): void };
}

interface MachineSnapshotLike {
  status?: string;
  children?: Record<string, AnyActorRef | undefined>;
}

const STOPPED = 2;

/**
 * Stops `actor` and everything below it, with the effects of XState's `actor.stop()`: each callback's
 * cleanup runs, each promise's signal aborts, each actor's delayed events are cancelled and its system
 * id freed; every stopped machine's snapshot has status `stopped` and no children.
 *
 * @example
 * if (actor.getSnapshot().status === 'active') stopActorTree(actor); // instead of actor.stop()
 */
export function stopActorTree(actor: AnyActorRef): void {
  // XState's stop action frees the system ids of the whole subtree before any child stops.
  unregisterBelow(actor);
  stopOne(actor);
}

function stopOne(ref: AnyActorRef): void {
  const internals = ref as unknown as ActorInternals;
  // `_stop`: what `stop()` does, less its refusal of a child (what a parent's stop action calls).
  const stop = () => internals._stop();
  const children = liveChildrenOf(ref);
  if (children.length === 0) return void stop();
  // A copy, not the snapshot emptied: a snapshot the application holds keeps its children.
  internals._snapshot = { ...internals._snapshot, children: {} };
  let stopped = false;
  const stopChildren = () => {
    if (stopped) return;
    stopped = true;
    for (const child of children) stopOne(child);
  };
  internals._deferred.push(stopChildren);
  stop();
  // Not run by a macrostep (the actor was stopped already): stopped here, in the same order.
  if (!stopped && internals._processingStatus === STOPPED) {
    internals._deferred = internals._deferred.filter((fn) => fn !== stopChildren);
    stopChildren();
  }
}

/** The children of a machine that is active; none for any other actor. */
function liveChildrenOf(ref: AnyActorRef): AnyActorRef[] {
  if (!isMachineActor(ref)) return [];
  const snapshot = ref.getSnapshot() as MachineSnapshotLike;
  if (snapshot.status !== 'active') return [];
  return childrenOf(snapshot);
}

function childrenOf(snapshot: MachineSnapshotLike): AnyActorRef[] {
  return Object.values(snapshot.children ?? {}).filter((c): c is AnyActorRef => !!c);
}

/** Frees the system ids below `ref`, depth first, whatever each machine's status (xstate's `unregisterRecursively`). */
function unregisterBelow(ref: AnyActorRef): void {
  const system = (ref as unknown as ActorInternals).system;
  const walk = (parent: AnyActorRef) => {
    if (!isMachineActor(parent)) return;
    for (const child of childrenOf(parent.getSnapshot() as MachineSnapshotLike)) {
      walk(child);
      system._unregister(child);
    }
  };
  walk(ref);
}
