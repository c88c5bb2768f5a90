/**
 * Stable identities for actors inside a run. XState's `sessionId`s change on every restore, so rmapp
 * names an actor by the chain of invoke/spawn ids from the root: `''` for the root,
 * `review/0.review.fixing` for a step inside a child machine. An id is any string, so each one is
 * escaped before it is joined (`pathSegment`): a step `a/b` at the root and a step `b` inside a child
 * `a` are two actors, and must not share a path — the path keys the step's record and its idempotency
 * key (step-execution.ts `stepKey`).
 */
import type { AnyActorRef } from 'xstate';

/**
 * One id as a segment of a path: `%` becomes `%25` and `/` becomes `%2F`, nothing else changes, so an
 * id holding neither (nearly all) is its own segment, as it was before ids were escaped. The empty id
 * (XState takes it) is `%`, which no other id gives: the root's path is `''`, and a child `''` must not
 * be the root.
 */
export function pathSegment(id: string): string {
  if (id === '') return '%';
  return id.includes('/') || id.includes('%') ? id.replace(/%/g, '%25').replace(/\//g, '%2F') : id;
}

/** The id a path segment was made from (`pathSegment`'s inverse). */
function segmentId(segment: string): string {
  if (segment === '%') return '';
  return segment.includes('%') ? segment.replace(/%2F/g, '/').replace(/%25/g, '%') : segment;
}

/** The path of the child `id` of the actor at `prefix` (`''`: the root). */
export function childPath(prefix: string, id: string): string {
  return prefix ? `${prefix}/${pathSegment(id)}` : pathSegment(id);
}

interface ParentLink {
  _parent?: AnyActorRef | undefined;
}

/** The path of `ref` below `root`. */
export function actorPath(ref: AnyActorRef, root: AnyActorRef): string {
  const ids: string[] = [];
  let current: AnyActorRef | undefined = ref;
  while (current && current !== root) {
    ids.unshift(pathSegment(current.id));
    current = (current as unknown as ParentLink)._parent;
  }
  return ids.join('/');
}

function childrenOf(ref: AnyActorRef): Record<string, AnyActorRef | undefined> {
  return (ref.getSnapshot() as { children?: Record<string, AnyActorRef | undefined> } | undefined)?.children ?? {};
}

/**
 * Finds the live actor at `path`, or undefined when it no longer exists. A path written before ids were
 * escaped (a timer of a run in flight at the upgrade) may hold an id's own "/": when the escaped walk
 * finds nothing, each child whose raw id starts what is left of the path is tried.
 */
export function findActor(root: AnyActorRef, path: string): AnyActorRef | undefined {
  if (path === '') return root;
  let current: AnyActorRef | undefined = root;
  for (const segment of path.split('/')) {
    current = childrenOf(current)[segmentId(segment)];
    if (!current) return findUnescaped(root, path);
  }
  return current;
}

function findUnescaped(root: AnyActorRef, path: string): AnyActorRef | undefined {
  const children = childrenOf(root);
  const whole = children[path];
  if (whole) return whole;
  for (const [id, child] of Object.entries(children)) {
    if (!child || !path.startsWith(`${id}/`)) continue;
    const found = findUnescaped(child, path.slice(id.length + 1));
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
    const path = childPath(prefix, id);
    yield { path, ref };
    if (isMachineActor(ref)) yield* descendants(ref, path);
  }
}
