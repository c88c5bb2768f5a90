/**
 * What a persisted snapshot cannot carry. rmapp stores snapshots as JSON (jsonb): a `Date` in context
 * comes back as a string, a `Map` as `{}`, a class instance loses its methods, a function or an
 * `undefined` array item turns into null, a `BigInt` cannot be written at all — and a child spawned from
 * inline logic (`spawnChild(fromPromise(…))`) is persisted without its logic, so it cannot be restored.
 * Each would work until the run is next restored (an eviction between two events is enough) and then
 * fail mid-run, after work was done. So the first write that would carry one fails the run instead,
 * naming the path and the fix (docs/xstate-semantics.md).
 */

/** Where in the snapshot, and what to do about it. */
export interface UndurableValue {
  path: string;
  problem: string;
}

/** Deeper nesting is refused: JSON.stringify would recurse that deep, and nobody means it. */
const MAX_DEPTH = 256;

/** A NUL character or a lone UTF-16 surrogate: Postgres refuses both in jsonb (and in text). */
// eslint-disable-next-line no-control-regex -- NUL is what Postgres refuses: matching it is the point
const UNSTORABLE_TEXT = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function textProblem(text: string): string | null {
  if (!UNSTORABLE_TEXT.test(text)) return null;
  return text.includes('\u0000')
    ? 'holds a NUL character (\\u0000), which Postgres cannot store; remove it, or encode the text (e.g. base64)'
    : 'holds a lone UTF-16 surrogate (not valid Unicode), which Postgres cannot store; repair the text (e.g. text.toWellFormed())';
}

function describe(value: unknown): string | null {
  switch (typeof value) {
    case 'string':
      return textProblem(value);
    case 'bigint':
      return 'is a BigInt: JSON cannot carry it; store it as a string (value.toString()) and convert back where you use it';
    case 'function':
      return 'is a function: a snapshot holds data only; keep behaviour in the machine (actions, actors) and data in context';
    case 'symbol':
      return 'is a symbol: JSON cannot carry it; use a string';
    case 'number':
      return Number.isFinite(value) ? null : `is ${value}: JSON writes it as null; store null or a finite number`;
    case 'object': {
      if (value === null || Array.isArray(value)) return null;
      if (value instanceof Date)
        return 'is a Date: JSON turns it into a string; store an ISO string (date.toISOString()) or a number (date.getTime())';
      if (value instanceof Map)
        return 'is a Map: JSON writes it as {}; store a plain object (Object.fromEntries(map)) or an array of entries';
      if (value instanceof Set) return 'is a Set: JSON writes it as {}; store an array ([...set])';
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) {
        const name = (value as { constructor?: { name?: string } }).constructor?.name ?? 'a class';
        return `is an instance of ${name}: it comes back as a plain object without its methods; store plain data`;
      }
      return null;
    }
    default:
      return null;
  }
}

/** The key XState's persisted snapshot marks an actor reference with (`{ xstate$$type: 1, id }`). */
const ACTOR_MARK = 'xstate$$type';
const ACCESSOR =
  'is a getter or setter (an accessor property): JSON stores the value it returns once, and a restored run holds that value, not the accessor; store the value, or compute it where it is used';
const MARK_IN_DATA =
  "is the key XState's persisted snapshot marks an actor reference with ({ xstate$$type: 1, id }): a restored run would turn this object into a child actor (or fail, if no child has that id); rename the key";

const REF_SHAPED =
  "has the keys sessionId, send and ref, which XState's persistence takes for an actor reference: a restored run would turn this object into a child actor (or fail, if no child has its id); rename a key";

interface Walk {
  out: UndurableValue[];
  /** The walk is over data (an event, an input, an output): an actor reference's mark in it is data too. */
  data: boolean;
  /** Objects on the current path: meeting one again is a cycle, which JSON cannot write. */
  ancestors: Set<object>;
  /** Objects already checked (a shared one is written twice by JSON, which is fine). */
  visited: Set<object>;
}

function walk(value: unknown, path: string, depth: number, w: Walk): void {
  if (w.out.length > 0) return;
  if (depth > MAX_DEPTH) {
    // The path itself is that deep: its middle would be hundreds of `.o` (a message of kilobytes).
    w.out.push({
      path: path.length > 160 ? `${path.slice(0, 60)}…${path.slice(-60)}` : path,
      problem: `is nested more than ${MAX_DEPTH} levels deep (a cycle through copies, or a list built as nested pairs); store a flatter shape`,
    });
    return;
  }
  const problem = describe(value);
  if (problem) {
    w.out.push({ path, problem });
    return;
  }
  if (!value || typeof value !== 'object') return;
  if (w.ancestors.has(value)) {
    w.out.push({ path, problem: 'is a circular reference: JSON cannot write it; store an id and look the object up' });
    return;
  }
  if (w.visited.has(value)) return;
  w.visited.add(value);
  w.ancestors.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length && w.out.length === 0; i++) {
      if (!(i in value))
        w.out.push({ path: `${path}[${i}]`, problem: 'is a hole in a sparse array: JSON writes it as null; fill it (e.g. with null)' });
      else if (value[i] === undefined)
        w.out.push({ path: `${path}[${i}]`, problem: 'is undefined in an array: JSON writes it as null; use null' });
      else walk(value[i], `${path}[${i}]`, depth + 1, w);
    }
  } else {
    try {
      walkObject(value, path, depth, w);
    } catch (err) {
      // A proxy whose traps throw: named here, not thrown raw from engine.send or the run's write.
      w.out.push({ path, problem: `cannot be read (reading it threw: ${errorText(err)}); store plain data` });
    }
  }
  w.ancestors.delete(value);
}

function errorText(err: unknown): string {
  try {
    return String((err as Error | null)?.message ?? err).slice(0, 200);
  } catch {
    return 'an unreadable error';
  }
}

/** XState's persistence takes an object with these keys for an actor reference (its `persistContext`). */
function shapedLikeRef(value: object): boolean {
  return 'sessionId' in value && 'send' in value && 'ref' in value;
}

function walkObject(value: object, path: string, depth: number, w: Walk): void {
  if (Object.getOwnPropertySymbols(value).length > 0) {
    w.out.push({ path, problem: 'has symbol keys, which JSON drops; use string keys' });
  }
  if (w.data && shapedLikeRef(value)) {
    w.out.push({ path, problem: REF_SHAPED });
    return;
  }
  for (const key of Object.keys(value)) {
    const bad = textProblem(key);
    if (bad) {
      w.out.push({ path: `${path}[${JSON.stringify(key)}]`, problem: `has a key that ${bad}` });
      continue;
    }
    // Read without calling a getter: JSON would store what it returns once, and a restored run would
    // hold that value, not the getter (XState itself never calls it). The descriptor costs 8.6 µs
    // against 7.7 for Object.entries per check of a 40-value context (scratch measure, 2026-12-06).
    const own = Object.getOwnPropertyDescriptor(value, key);
    if (own && (own.get || own.set)) {
      w.out.push({ path: `${path}.${key}`, problem: ACCESSOR });
      continue;
    }
    if (key === ACTOR_MARK && own?.value === 1 && w.data) {
      w.out.push({ path: `${path}.${key}`, problem: MARK_IN_DATA });
      continue;
    }
    walk(own?.value, `${path}.${key}`, depth + 1, w);
  }
}

const newWalk = (data: boolean): Walk => ({ out: [], data, ancestors: new Set(), visited: new Set() });

/**
 * The first value under `value` — data: an event, an input, an output — that JSON cannot carry
 * faithfully (see {@link findUndurable}), or that XState would read as something else once restored.
 */
export function findUndurableValue(value: unknown, path: string): UndurableValue | null {
  const w = newWalk(true);
  walk(value, path, 0, w);
  return w.out[0] ?? null;
}

/**
 * The first string (or key) under `value` that Postgres cannot store in jsonb: a NUL or a lone
 * surrogate. Only text: an artifact is JSON as written (a Date becomes its ISO string, as the caller
 * expects), but text Postgres refuses fails the write with a message that names neither.
 */
export function findUnstorableText(value: unknown, path: string, depth = 0): UndurableValue | null {
  if (typeof value === 'string') {
    const problem = textProblem(value);
    return problem ? { path, problem } : null;
  }
  if (!value || typeof value !== 'object' || depth > MAX_DEPTH) return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findUnstorableText(value[i], `${path}[${i}]`, depth + 1);
      if (found) return found;
    }
    return null;
  }
  for (const [key, item] of Object.entries(value)) {
    const problem = textProblem(key);
    if (problem) return { path: `${path}[${JSON.stringify(key)}]`, problem: `has a key that ${problem}` };
    const found = findUnstorableText(item, `${path}.${key}`, depth + 1);
    if (found) return found;
  }
  return null;
}

/** What a live snapshot (`actor.getSnapshot()`) gives the check: its context and children. */
interface LiveSnapshot {
  context?: unknown;
  children?: Record<string, { getSnapshot?: () => unknown } | undefined>;
}

/**
 * The first value of a persisted snapshot that JSON cannot carry faithfully, in the context of the
 * machine or of any child machine, or a child whose logic was given inline; null when all is durable.
 * `live`, the actor's own snapshot (`getSnapshot()`), tells an actor reference XState marked from data
 * shaped like one, and shows a child XState's persisted snapshot left out. `refs: false` leaves actor
 * references alone: a final snapshot is never restored, and its stopped children's contexts still hold
 * references to their own children, which it no longer lists (a run refused at its final state could
 * never finish).
 */
export function findUndurable(snapshot: unknown, path = '', live?: unknown, refs = true, lastValue = false): UndurableValue | null {
  if (!snapshot || typeof snapshot !== 'object') return null;
  const s = snapshot as { context?: unknown; input?: unknown; children?: Record<string, { src?: unknown; snapshot?: unknown }> };
  const l = (live && typeof live === 'object' ? live : {}) as LiveSnapshot;
  // XState writes each child under its id by assignment: one with the id "__proto__" sets the persisted
  // object's prototype instead, and the child is in no snapshot (its work lost at the next restore).
  if (l.children && Object.prototype.hasOwnProperty.call(l.children, '__proto__')) {
    return {
      path: `${path}children.__proto__`,
      problem:
        'is a child whose id is "__proto__", which XState\'s persisted snapshot cannot hold (the key sets the object\'s prototype: the child is left out and lost at the next restore); give the child another id',
    };
  }
  const w = newWalk(false);
  // An observable's context is the last value it emitted, not state a restore goes on from: it is
  // stored as a held output is (session-write.ts), not refused.
  if (s.context !== undefined && !lastValue) walk(s.context, `${path}context`, 0, w);
  // A child's input is persisted too (a step gets it again when it runs after a restore).
  if (path !== '' && s.input !== undefined) walk(s.input, `${path}input`, 0, w);
  if (w.out[0]) return w.out[0];
  const foreign =
    s.context === undefined || !refs || lastValue
      ? null
      : findForeignRef(s.context, `${path}context`, new Set(Object.keys(s.children ?? {})), 0, l.context);
  if (foreign) return foreign;
  for (const [id, child] of Object.entries(s.children ?? {})) {
    if (!child) continue;
    if (typeof child.src !== 'string') {
      return {
        path: `${path}children.${id}`,
        problem:
          'was spawned or invoked from inline logic, which a snapshot cannot name: register the logic in ' +
          `setup({ actors: { ${JSON.stringify(id)}: logic } }) and spawn or invoke it by that name`,
      };
    }
    const liveChild = Object.prototype.hasOwnProperty.call(l.children ?? {}, id) ? l.children?.[id] : undefined;
    // Without the live actor (a run's ending), told by the persisted snapshot's shape instead.
    const lastValue = liveChild !== undefined ? holdsLastValue(liveChild) : persistedLastValue(child.snapshot);
    const inner = findUndurable(child.snapshot, `${path}children.${id}.`, readLive(liveChild), refs, lastValue);
    if (inner) return inner;
  }
  return null;
}

/**
 * XState persists an actor reference held in context as `{ xstate$$type: 1, id }` and, on restore,
 * reconnects it only to a live child of the same actor with that id: a reference to the machine itself,
 * to its parent (passed in as input) or to a child already stopped comes back as `undefined` — after
 * every eviction, so between any two events. Refused at the first write that carries one.
 */
function findForeignRef(value: unknown, path: string, children: Set<string>, depth: number, live: unknown): UndurableValue | null {
  if (!value || typeof value !== 'object' || depth > MAX_DEPTH) return null;
  const ref = value as { xstate$$type?: unknown; id?: unknown };
  if (ref.xstate$$type === 1) {
    // XState marks a live actor; anything else the context holds there is data shaped like an actor
    // reference (an event's payload, say) — the mark itself, or an object with sessionId, send and ref —
    // which a restore would turn into an actor.
    if (live !== undefined && !isLiveActor(live)) {
      const marked = typeof live === 'object' && live !== null && ownValue(live, ACTOR_MARK) === 1;
      return marked ? { path: `${path}.${ACTOR_MARK}`, problem: MARK_IN_DATA } : { path, problem: REF_SHAPED };
    }
    if (typeof ref.id === 'string' && children.has(ref.id)) return null;
    return {
      path,
      problem:
        `is a reference to actor ${JSON.stringify(ref.id)}, which is not a live child of this machine (itself, its parent, or a ` +
        'child already stopped): a restored snapshot cannot reconnect it. Keep references to your own running children only ' +
        '(remove one from context when you stop it); reach the parent with sendParent, and this machine with raise',
    };
  }
  const liveObject = live && typeof live === 'object' ? live : undefined;
  for (const [key, item] of Object.entries(value)) {
    const at = Array.isArray(value) ? `${path}[${key}]` : `${path}.${key}`;
    const own = liveObject ? Object.getOwnPropertyDescriptor(liveObject, key) : undefined;
    // An object XState copied to mark a reference inside it (`{ ...object }`): the copy holds a getter's
    // value, which the walk of the persisted snapshot took for data; the live object still has the getter.
    if (own && (own.get || own.set)) return { path: at, problem: ACCESSOR };
    const inner = findForeignRef(item, at, children, depth + 1, own?.value);
    if (inner) return inner;
  }
  return null;
}

/**
 * Whether `child` is an observable (`fromObservable`, `fromEventObservable`), whose snapshot's `context`
 * is the last value it emitted: a restore subscribes it again from the start (docs/xstate-semantics.md,
 * "Resume semantics"), and a finished one's value is only read from its snapshot — as a held child's
 * output is. Told by its logic: a `start` (a promise's, a callback's and an observable's; only the
 * observable's snapshot has a context), and not a machine or a `fromTransition`, whose context is the
 * state a restore goes on from. Plain XState runs on with a Date there; a clock observable of Dates
 * failed the run at its first value (test/h219-xs-held-output.test.ts).
 */
function holdsLastValue(child: unknown): boolean {
  try {
    const logic = (child as { logic?: { start?: unknown; root?: unknown } } | undefined)?.logic;
    return !!logic && typeof logic.start === 'function' && !('root' in logic);
  } catch {
    return false;
  }
}

/**
 * {@link holdsLastValue} from a persisted snapshot (XState 5's shapes): an observable's has `context` and
 * `input` and no `children`; a `fromTransition`'s has no `input`, a promise's and a callback's no `context`.
 */
function persistedLastValue(snapshot: unknown): boolean {
  return !!snapshot && typeof snapshot === 'object' && !('children' in snapshot) && 'context' in snapshot && 'input' in snapshot;
}

/** A running actor (what XState marks), as opposed to data shaped like one. */
function isLiveActor(value: unknown): boolean {
  const v = value as { send?: unknown; getSnapshot?: unknown } | null;
  return typeof v === 'object' && v !== null && typeof v.send === 'function' && typeof v.getSnapshot === 'function';
}

function ownValue(value: object, key: string): unknown {
  return Object.getOwnPropertyDescriptor(value, key)?.value;
}

/** A live child's own snapshot, if it can be read (a step's or a promise's has no context to check). */
function readLive(child: { getSnapshot?: () => unknown } | undefined): unknown {
  try {
    return typeof child?.getSnapshot === 'function' ? child.getSnapshot() : undefined;
  } catch {
    return undefined;
  }
}
