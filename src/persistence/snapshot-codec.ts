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

function encodeChild(child: Obj): Obj {
  const { syncSnapshot, ...rest } = child;
  const out: Obj = syncSnapshot === false ? rest : child;
  // A child machine's snapshot has the root's shape (src names it; its snapshot has `children`).
  return isObj(out.snapshot) && 'children' in out.snapshot ? { ...out, snapshot: encodeSnapshot(out.snapshot) } : out;
}

function decodeChild(child: Obj): Obj {
  const out: Obj = 'syncSnapshot' in child ? child : { ...child, syncSnapshot: false };
  return isObj(out.snapshot) && 'children' in out.snapshot ? { ...out, snapshot: decodeSnapshot(out.snapshot) } : out;
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
    out[key] = key === 'children' ? mapChildren(value, encodeChild) : value;
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
  return out;
}

/** The JSON text a snapshot is written as. */
export const storedSnapshotJson = (snapshot: unknown): string => JSON.stringify(encodeSnapshot(snapshot ?? null));
