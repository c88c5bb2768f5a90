/**
 * How a run's XState snapshot is stored (`rmapp_runs.snapshot`): without the fields every persisted
 * snapshot carries at their usual value — the root's `status: "active"`, an empty `historyValue`, a
 * child's `syncSnapshot: false` — which {@link decodeSnapshot} puts back. Every macrostep rewrites the
 * whole row, so these bytes were WAL: 252 → 186 bytes of jsonb for a run inside a step, figures in
 * bench/README.md ("What was changed"). XState's `getPersistedSnapshot()` always writes the three
 * fields, so a stored snapshot that lacks one was encoded here; rows written before keep them and
 * decode unchanged.
 */

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function mapChildren(children: unknown, fn: (child: Obj) => Obj): unknown {
  if (!isObj(children)) return children;
  const out: Obj = {};
  for (const [id, child] of Object.entries(children)) out[id] = isObj(child) ? fn(child) : child;
  return out;
}

/**
 * The tag of an `Error` stored as a snapshot's `error` (a child that failed and is still held: a spawned
 * machine whose action threw, a rejected promise whose error event the parent handled). JSON writes an
 * `Error` as `{}`, so after a restore `snapshot.error.message` was gone where plain XState still had it;
 * its name, message and own enumerable properties (a `code`) are kept, and its `cause` and an
 * AggregateError's `errors` (Errors in turn) — not its stack (a host's paths).
 */
const ERROR_TAG = '$rmappError';
const ERROR_CLASSES: Record<string, ErrorConstructor> = {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
  AggregateError: AggregateError as unknown as ErrorConstructor,
};

/**
 * The own fields an Error's constructor makes non-enumerable, kept with the rest: a `cause`
 * (`new Error(m, { cause })`) and an AggregateError's `errors`, each of which may hold Errors in turn.
 */
export const LINKED_ERROR_FIELDS = ['cause', 'errors'] as const;
/** Errors linked through `cause`/`errors` past this many in one error's graph are kept as their message text. */
const MAX_LINKED_ERRORS = 1_000;
/** An AggregateError's errors kept: 20,000 made a snapshot over its 1 MB limit and failed the run. */
const MAX_KEPT_ERRORS = 100;
/**
 * Where the linked fields the constructor made not enumerable are stored, beside the tag (a program's
 * own stay with its other fields): `{"$rmappError": {…}, "$rmappHidden": {"cause": …}}`.
 */
const HIDDEN_KEY = '$rmappHidden';

/**
 * A value that is not an Error but has the shape of a tag (an object whose only key is `$rmappError` or
 * `$rmappValue`, a promise rejected with one) is stored inside `$rmappValue`, so that only an Error
 * comes back as one.
 */
const VALUE_TAG = '$rmappValue';
function looksTagged(v: unknown): v is Obj {
  if (!isObj(v)) return false;
  const keys = Object.keys(v);
  if (keys.length === 1) return ERROR_TAG in v || VALUE_TAG in v;
  return keys.length === 2 && ERROR_TAG in v && HIDDEN_KEY in v;
}

/**
 * An Error of any realm (`vm.runInNewContext`, another context's): `instanceof Error` missed them, and
 * JSON wrote them as `{}` still (a second pass).
 */
export function isAnError(value: unknown): value is Error {
  return value instanceof Error || Object.prototype.toString.call(value) === '[object Error]';
}

function encodeError(error: unknown, seen: Set<unknown> = new Set()): unknown {
  if (!isAnError(error)) return looksTagged(error) ? { [VALUE_TAG]: error } : error;
  const fields: Obj = {};
  for (const key of Object.keys(error)) {
    const value = (error as unknown as Obj)[key];
    // JSON drops a function, but calls one named toJSON — on the fields' object, where it was not meant to run.
    if (typeof value !== 'function') fields[key] = value;
  }
  const hidden: Obj = {};
  const how = { error: (e: Error) => encodeError(e, seen), other: (v: unknown) => (looksTagged(v) ? { [VALUE_TAG]: v } : v) };
  // As the constructor makes them (not enumerable), or as the program assigned them.
  for (const { key, value, enumerable } of linkedFields(error, seen, how)) (enumerable ? fields : hidden)[key] = value;
  const tagged = { [ERROR_TAG]: { ...fields, name: error.name, message: error.message } };
  // Beside the error's own fields, not among them: a field of the program's named like it was taken for it.
  return Object.keys(hidden).length > 0 ? { ...tagged, [HIDDEN_KEY]: hidden } : tagged;
}

/** A linked field of an Error as it is kept ({@link linkedFields}). */
export interface LinkedField {
  key: (typeof LINKED_ERROR_FIELDS)[number];
  value: unknown;
  enumerable: boolean;
}

/**
 * The `cause` and an AggregateError's `errors` of `error` as they are kept, for the codec and for the
 * session's storable copy (state_machine/session-write.ts): each Error of the graph through `how.error`
 * once — one met again (its own cause, or shared by several of an AggregateError's errors, whose graph
 * grew exponentially and ended the worker's process) is `"[Circular]"`, and past
 * {@link MAX_LINKED_ERRORS} its message text — anything else through `how.other`, and an
 * AggregateError's first {@link MAX_KEPT_ERRORS} errors. `how.read` reads a property (a copy reads
 * defensively: a getter may throw).
 */
export function linkedFields(
  error: Error,
  seen: Set<unknown>,
  how: { error: (e: Error) => unknown; other: (v: unknown) => unknown; read?: <T>(get: () => T, fallback: T) => T },
): LinkedField[] {
  const read = how.read ?? (<T>(get: () => T) => get());
  seen.add(error);
  const one = (v: unknown): unknown =>
    !read(() => isAnError(v), false)
      ? how.other(v)
      : seen.has(v)
        ? '[Circular]'
        : seen.size >= MAX_LINKED_ERRORS
          ? how.other(String(read<unknown>(() => (v as Error).message, '[Unreadable]')))
          : how.error(v as Error);
  const out: LinkedField[] = [];
  for (const key of LINKED_ERROR_FIELDS) {
    if (!read(() => Object.hasOwn(error, key), false)) continue;
    const value = read<unknown>(() => (error as unknown as Obj)[key], '[Unreadable]');
    const list = key === 'errors' && read(() => Array.isArray(value), false) ? read(() => keptErrors(value as unknown[]), null) : null;
    const enumerable = read(() => Object.prototype.propertyIsEnumerable.call(error, key), false);
    out.push({ key, value: list ? list.map(one) : one(value), enumerable });
  }
  return out;
}

/** An AggregateError's first {@link MAX_KEPT_ERRORS} errors, then how many more there were. */
function keptErrors(errors: readonly unknown[]): unknown[] {
  if (errors.length <= MAX_KEPT_ERRORS) return [...errors];
  return [...errors.slice(0, MAX_KEPT_ERRORS), `[${errors.length - MAX_KEPT_ERRORS} more]`];
}

function decodeError(stored: unknown): unknown {
  if (!looksTagged(stored)) return stored;
  if (VALUE_TAG in stored) return stored[VALUE_TAG];
  if (!isObj(stored[ERROR_TAG])) return stored;
  const { name, message, ...fields } = stored[ERROR_TAG] as Obj;
  const hidden = stored[HIDDEN_KEY];
  const Class = (typeof name === 'string' && Object.hasOwn(ERROR_CLASSES, name) ? ERROR_CLASSES[name] : Error) as ErrorConstructor;
  const text = typeof message === 'string' ? message : '';
  const error = Class === (AggregateError as unknown) ? new AggregateError([], text) : new Class(text);
  // A class of the application's (a `StepError`) comes back as an Error under its name.
  if (name !== undefined && error.name !== name) Object.defineProperty(error, 'name', { value: name, writable: true, configurable: true });
  const linked = (key: string, value: unknown) => (key === 'errors' && Array.isArray(value) ? value.map(decodeError) : decodeError(value));
  for (const key of LINKED_ERROR_FIELDS) {
    if (Object.hasOwn(fields, key)) fields[key] = linked(key, fields[key]);
    // Own and not enumerable, as the constructor makes them.
    if (isObj(hidden) && Object.hasOwn(hidden, key)) {
      Object.defineProperty(error, key, { value: linked(key, hidden[key]), writable: true, configurable: true });
    }
  }
  return Object.assign(error, fields);
}

function encodeChild(child: Obj): Obj {
  const { syncSnapshot, ...rest } = child;
  const out: Obj = syncSnapshot === false ? rest : child;
  if (!isObj(out.snapshot)) return out;
  // A child machine's snapshot has the root's shape (src names it; its snapshot has `children`).
  if ('children' in out.snapshot) return { ...out, snapshot: encodeSnapshot(out.snapshot) };
  const { error } = out.snapshot;
  return isAnError(error) || looksTagged(error) ? { ...out, snapshot: { ...out.snapshot, error: encodeError(error) } } : out;
}

function decodeChild(child: Obj): Obj {
  const out: Obj = 'syncSnapshot' in child ? child : { ...child, syncSnapshot: false };
  if (!isObj(out.snapshot)) return out;
  if ('children' in out.snapshot) return { ...out, snapshot: decodeSnapshot(out.snapshot) };
  return isObj(out.snapshot.error) ? { ...out, snapshot: { ...out.snapshot, error: decodeError(out.snapshot.error) } } : out;
}

/**
 * The stored form of a persisted snapshot; the snapshot given is not changed. Built key by key rather
 * than copied and `delete`d: a deletion turns the copy into a slow dictionary-mode object (encoding and
 * serializing a step's snapshot took 4.1 µs that way, 2.6 µs this way; bench/README.md, eighth session).
 */
export function encodeSnapshot(snapshot: unknown): unknown {
  if (!isObj(snapshot)) return snapshot;
  const out: Obj = {};
  for (const key of Object.keys(snapshot)) {
    const value = snapshot[key];
    if (key === 'status' && value === 'active') continue;
    if (key === 'historyValue' && isObj(value) && Object.keys(value).length === 0) continue;
    out[key] = key === 'children' ? mapChildren(value, encodeChild) : key === 'error' ? encodeError(value) : value;
  }
  return out;
}

/** A stored snapshot as XState persisted it, whichever form the row has. */
export function decodeSnapshot(stored: unknown): unknown {
  if (!isObj(stored)) return stored;
  const out: Obj = { ...stored };
  if (!('status' in out)) out.status = 'active';
  if (!('historyValue' in out)) out.historyValue = {};
  if ('children' in out) out.children = mapChildren(out.children, decodeChild);
  if (isObj(out.error)) out.error = decodeError(out.error);
  return out;
}

/** The JSON text a snapshot is written as. */
export const storedSnapshotJson = (snapshot: unknown): string => JSON.stringify(encodeSnapshot(snapshot ?? null));
