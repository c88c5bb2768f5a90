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
/** Errors linked through `cause`/`errors` past this depth are kept as their message text. */
export const MAX_LINK_DEPTH = 32;

/**
 * A value that is not an Error but has the shape of a tag (an object whose only key is `$rmappError` or
 * `$rmappValue`, a promise rejected with one) is stored inside `$rmappValue`, so that only an Error
 * comes back as one.
 */
const VALUE_TAG = '$rmappValue';
const looksTagged = (v: unknown): v is Obj => isObj(v) && Object.keys(v).length === 1 && (ERROR_TAG in v || VALUE_TAG in v);

/**
 * An Error of any realm (`vm.runInNewContext`, another context's): `instanceof Error` missed them, and
 * JSON wrote them as `{}` still (a second pass).
 */
export function isAnError(value: unknown): value is Error {
  return value instanceof Error || Object.prototype.toString.call(value) === '[object Error]';
}

function encodeError(error: unknown, within: Error[] = []): unknown {
  if (!isAnError(error)) return looksTagged(error) ? { [VALUE_TAG]: error } : error;
  const fields: Obj = {};
  for (const key of Object.keys(error)) {
    const value = (error as unknown as Obj)[key];
    // JSON drops a function, but calls one named toJSON — on the fields' object, where it was not meant to run.
    if (typeof value !== 'function') fields[key] = value;
  }
  const chain = [...within, error];
  for (const key of LINKED_ERROR_FIELDS) {
    if (!Object.hasOwn(error, key)) continue;
    const value = (error as unknown as Obj)[key];
    fields[key] = key === 'errors' && Array.isArray(value) ? value.map((v) => encodeLinked(v, chain)) : encodeLinked(value, chain);
  }
  return { [ERROR_TAG]: { ...fields, name: error.name, message: error.message } };
}

/** An Error's `cause` or one of its `errors`: an Error encoded in turn, one of its own chain as text. */
function encodeLinked(value: unknown, chain: Error[]): unknown {
  if (!isAnError(value)) return looksTagged(value) ? { [VALUE_TAG]: value } : value;
  if (chain.includes(value)) return '[Circular]';
  return chain.length >= MAX_LINK_DEPTH ? String(value.message) : encodeError(value, chain);
}

function decodeError(stored: unknown): unknown {
  if (!looksTagged(stored)) return stored;
  if (VALUE_TAG in stored) return stored[VALUE_TAG];
  if (!isObj(stored[ERROR_TAG])) return stored;
  const { name, message, ...fields } = stored[ERROR_TAG] as Obj;
  const Class = (typeof name === 'string' && Object.hasOwn(ERROR_CLASSES, name) ? ERROR_CLASSES[name] : Error) as ErrorConstructor;
  const text = typeof message === 'string' ? message : '';
  const error = Class === (AggregateError as unknown) ? new AggregateError([], text) : new Class(text);
  // A class of the application's (a `StepError`) comes back as an Error under its name.
  if (name !== undefined && error.name !== name) Object.defineProperty(error, 'name', { value: name, writable: true, configurable: true });
  for (const key of LINKED_ERROR_FIELDS) {
    if (!Object.hasOwn(fields, key)) continue;
    const value = fields[key];
    delete fields[key];
    // Own and not enumerable, as the constructor makes them.
    Object.defineProperty(error, key, {
      value: key === 'errors' && Array.isArray(value) ? value.map(decodeError) : decodeError(value),
      writable: true,
      configurable: true,
    });
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
