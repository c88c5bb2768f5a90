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

/** Finds the live actor at `path`, or undefined when it no longer exists. */
export function findActor(root: AnyActorRef, path: string): AnyActorRef | undefined {
  if (path === '') return root;
  let current: AnyActorRef | undefined = root;
  for (const id of path.split('/')) {
    const children: Record<string, AnyActorRef> | undefined = (
      current?.getSnapshot() as { children?: Record<string, AnyActorRef> } | undefined
    )?.children;
    current = children?.[id];
    if (!current) return undefined;
  }
  return current;
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
