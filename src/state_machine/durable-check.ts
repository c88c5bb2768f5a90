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

interface Walk {
  out: UndurableValue[];
  /** Objects on the current path: meeting one again is a cycle, which JSON cannot write. */
  ancestors: Set<object>;
  /** Objects already checked (a shared one is written twice by JSON, which is fine). */
  visited: Set<object>;
}

function walk(value: unknown, path: string, depth: number, w: Walk): void {
  if (w.out.length > 0) return;
  if (depth > MAX_DEPTH) {
    w.out.push({
      path,
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
    if (Object.getOwnPropertySymbols(value).length > 0) {
      w.out.push({ path, problem: 'has symbol keys, which JSON drops; use string keys' });
    }
    for (const [key, item] of Object.entries(value)) {
      const bad = textProblem(key);
      if (bad) w.out.push({ path: `${path}[${JSON.stringify(key)}]`, problem: `has a key that ${bad.replace(/^holds/, 'holds')}` });
      else walk(item, `${path}.${key}`, depth + 1, w);
    }
  }
  w.ancestors.delete(value);
}

const newWalk = (): Walk => ({ out: [], ancestors: new Set(), visited: new Set() });

/** The first value under `value` that JSON cannot carry faithfully (see {@link findUndurable}). */
export function findUndurableValue(value: unknown, path: string): UndurableValue | null {
  const w = newWalk();
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

/**
 * The first value of a persisted snapshot that JSON cannot carry faithfully, in the context of the
 * machine or of any child machine, or a child whose logic was given inline; null when all is durable.
 */
export function findUndurable(snapshot: unknown, path = ''): UndurableValue | null {
  if (!snapshot || typeof snapshot !== 'object') return null;
  const s = snapshot as { context?: unknown; input?: unknown; children?: Record<string, { src?: unknown; snapshot?: unknown }> };
  const w = newWalk();
  if (s.context !== undefined) walk(s.context, `${path}context`, 0, w);
  // A child's input is persisted too (a step gets it again when it runs after a restore).
  if (path !== '' && s.input !== undefined) walk(s.input, `${path}input`, 0, w);
  if (w.out[0]) return w.out[0];
  const foreign = s.context === undefined ? null : findForeignRef(s.context, `${path}context`, new Set(Object.keys(s.children ?? {})), 0);
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
    const inner = findUndurable(child.snapshot, `${path}children.${id}.`);
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
function findForeignRef(value: unknown, path: string, children: Set<string>, depth: number): UndurableValue | null {
  if (!value || typeof value !== 'object' || depth > MAX_DEPTH) return null;
  const ref = value as { xstate$$type?: unknown; id?: unknown };
  if (ref.xstate$$type === 1) {
    if (typeof ref.id === 'string' && children.has(ref.id)) return null;
    return {
      path,
      problem:
        `is a reference to actor ${JSON.stringify(ref.id)}, which is not a live child of this machine (itself, its parent, or a ` +
        'child already stopped): a restored snapshot cannot reconnect it. Keep references to your own running children only ' +
        '(remove one from context when you stop it); reach the parent with sendParent, and this machine with raise',
    };
  }
  for (const [key, item] of Object.entries(value)) {
    const inner = findForeignRef(item, Array.isArray(value) ? `${path}[${key}]` : `${path}.${key}`, children, depth + 1);
    if (inner) return inner;
  }
  return null;
}
