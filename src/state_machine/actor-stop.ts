/**
 * Stopping a run's actor tree, as XState's `actor.stop()` does, in time linear in its children.
 *
 * XState stops a machine with a stop macrostep that resolves one stop action per child, and each
 * copies the snapshot's whole `children` object (`resolveStop`): O(children²). Plain XState pays it
 * once, when the application stops the actor; rmapp stops a run's actor each time the run leaves
 * memory, which for a run that only waits is after every event it takes — 2 s per event with 3,000
 * spawned child machines (bench/many-children.ts), so enough children would block the event loop past
 * the lease. Here each child is stopped first, depth first in XState's order, and the machine's
 * `children` is emptied before its own stop macrostep runs.
 */
import type { AnyActorRef } from 'xstate';
import { isMachineActor } from './actor-paths.ts';

interface Stoppable {
  /** XState's stop without the root-only check: what a parent's stop action calls on its child. */
  _stop(): unknown;
}

interface MachineSnapshotLike {
  status?: string;
  children?: Record<string, AnyActorRef | undefined>;
}

/**
 * Stops `actor` and everything below it. The effects are XState's: each callback's cleanup runs, each
 * promise's signal aborts, each child's delayed events are cancelled and its system id freed, in the
 * order XState's stop uses (a parent's children in order, each child's own children before it); every
 * stopped machine's snapshot has status `stopped` and no children.
 *
 * @example
 * if (actor.getSnapshot().status === 'active') stopActorTree(actor); // instead of actor.stop()
 */
export function stopActorTree(actor: AnyActorRef): void {
  stopChildren(actor);
  if ((actor as unknown as { _parent?: unknown })._parent) (actor as unknown as Stoppable)._stop();
  else actor.stop();
}

function stopChildren(ref: AnyActorRef): void {
  if (!isMachineActor(ref)) return;
  const snapshot = ref.getSnapshot() as MachineSnapshotLike;
  if (snapshot.status !== 'active' || !snapshot.children) return;
  const children = Object.values(snapshot.children);
  if (children.length === 0) return;
  for (const child of children) if (child) stopActorTree(child);
  // A new (empty) object, not the old one emptied: earlier snapshots may share it.
  snapshot.children = {};
}
