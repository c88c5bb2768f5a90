/**
 * Stopping a run's actor tree, as XState's `actor.stop()` does, in time linear in its children.
 *
 * XState stops a machine with a stop macrostep that resolves one stop action per child, and each
 * copies the snapshot's whole `children` object (`resolveStop`): O(children²). Plain XState pays it
 * once, when the application stops the actor; rmapp stops a run's actor each time the run leaves
 * memory, which for a run that only waits is after every event it takes — 2 s per event with 3,000
 * spawned child machines (bench/many-children.ts), so enough children would block the event loop past
 * the lease. Here each machine's stop macrostep runs on a copy of its snapshot without children, and
 * the children are stopped one by one afterwards.
 *
 * What XState's stop does, kept: every system id of the tree is freed first (a cleanup that looks up a
 * sibling finds nothing); the machine is stopped before its children, so what a child sends while it
 * stops (a cleanup's `sendBack`, an error thrown in it) reaches a stopped parent and is dropped; the
 * children stop in order, each one's own children before it; snapshots taken before the stop keep
 * their children, and its observers are completed once its children have stopped. What differs is
 * only what XState's inspection reports: no `xstate.stopChild` action per child.
 */
import type { AnyActorRef } from 'xstate';
import { isMachineActor } from './actor-paths.ts';

/** The parts of XState's actor this reaches: what its own stop action and its system use (xstate's `Actor`). */
interface ActorInternals {
  _parent?: unknown;
  _snapshot: MachineSnapshotLike;
  _stop(): unknown;
  _complete(): void;
  observers: Set<unknown>;
  system: { _unregister(ref: AnyActorRef): void };
}

interface MachineSnapshotLike {
  status?: string;
  children?: Record<string, AnyActorRef | undefined>;
}

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
  const stop = () => (internals._parent ? internals._stop() : ref.stop());
  const children = liveChildrenOf(ref);
  if (children.length === 0) return void stop();
  // A copy, not the snapshot emptied: a snapshot the application holds keeps its children.
  internals._snapshot = { ...internals._snapshot, children: {} };
  // Its observers are completed after its children have stopped, as XState's stop does.
  const observers = internals.observers;
  internals.observers = new Set();
  stop();
  for (const child of children) stopOne(child);
  internals.observers = observers;
  internals._complete();
}

function liveChildrenOf(ref: AnyActorRef): AnyActorRef[] {
  if (!isMachineActor(ref)) return [];
  const snapshot = ref.getSnapshot() as MachineSnapshotLike;
  if (snapshot.status !== 'active' || !snapshot.children) return [];
  return Object.values(snapshot.children).filter((c): c is AnyActorRef => !!c);
}

function unregisterBelow(ref: AnyActorRef): void {
  const system = (ref as unknown as ActorInternals).system;
  const walk = (parent: AnyActorRef) => {
    for (const child of liveChildrenOf(parent)) {
      walk(child);
      system._unregister(child);
    }
  };
  walk(ref);
}
