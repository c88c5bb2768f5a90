/**
 * Stable identities for actors inside a run. XState's `sessionId`s change on every restore, so rmapp
 * names an actor by the chain of invoke/spawn ids from the root: `''` for the root,
 * `review/0.review.fixing` for a step inside a child machine.
 */
import type { AnyActorRef } from 'xstate';

interface ParentLink {
  _parent?: AnyActorRef | undefined;
}

/** The path of `ref` below `root`. */
export function actorPath(ref: AnyActorRef, root: AnyActorRef): string {
  const ids: string[] = [];
  let current: AnyActorRef | undefined = ref;
  while (current && current !== root) {
    ids.unshift(current.id);
    current = (current as unknown as ParentLink)._parent;
  }
  return ids.join('/');
}

function childrenOf(ref: AnyActorRef): Record<string, AnyActorRef | undefined> {
  return (ref.getSnapshot() as { children?: Record<string, AnyActorRef | undefined> } | undefined)?.children ?? {};
}

/**
 * Finds the live actor at `path`, or undefined when it no longer exists. An id may itself hold a "/"
 * (an invoke or spawn id is any string): each child whose id starts what is left of the path is tried.
 */
export function findActor(root: AnyActorRef, path: string): AnyActorRef | undefined {
  if (path === '') return root;
  const children = childrenOf(root);
  const whole = children[path];
  if (whole) return whole;
  for (const [id, child] of Object.entries(children)) {
    if (!child || !path.startsWith(`${id}/`)) continue;
    const found = findActor(child, path.slice(id.length + 1));
    if (found) return found;
  }
  return undefined;
}

/** True while `ref` is `root` or one of its live descendants: each link of its chain of parents holds it as a child. */
export function isLiveBelow(ref: AnyActorRef, root: AnyActorRef): boolean {
  let current: AnyActorRef | undefined = ref;
  while (current !== root) {
    const parent: AnyActorRef | undefined = (current as unknown as ParentLink)._parent;
    if (!current || !parent || childrenOf(parent)[current.id] !== current) return false;
    current = parent;
  }
  return true;
}

/** True when the actor runs a state machine (as opposed to a promise, callback or observable). */
export function isMachineActor(ref: AnyActorRef): boolean {
  const logic = (ref as unknown as { logic?: object }).logic;
  return !!logic && 'root' in logic && 'getInitialSnapshot' in logic;
}

/** Every actor below `root`, depth first, with its path. */
export function* descendants(root: AnyActorRef, prefix = ''): Generator<{ path: string; ref: AnyActorRef }> {
  const children = (root.getSnapshot() as { children?: Record<string, AnyActorRef> } | undefined)?.children ?? {};
  for (const [id, ref] of Object.entries(children)) {
    if (!ref) continue;
    const path = prefix ? `${prefix}/${id}` : id;
    yield { path, ref };
    if (isMachineActor(ref)) yield* descendants(ref, path);
  }
}
