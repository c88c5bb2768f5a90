/**
 * How a commit's history entries are stored (`rmapp_run_history.log`): a JSON text array of positional
 * arrays `[type, path, state, step, attempt, data]`, absent fields `null` and trailing ones dropped,
 * instead of a jsonb array of objects (`events`, which rows written before migration 0012 and the
 * statements that append history in SQL — claims, retention's summary — still use). The keys repeated
 * in every event and jsonb's binary layout were most of a history row: a step's commit's events take
 * 145 bytes instead of 296 (the row 249 instead of 412); the WAL per 6-step workflow is in
 * bench/README.md ("What was changed").
 */
/** An entry to append to a run's history. */
export interface HistoryEntry {
  type: string;
  path?: string | undefined;
  state?: unknown;
  step?: string | undefined;
  attempt?: number | undefined;
  data?: unknown;
}

type Stored = [type: string, path?: string | null, state?: unknown, step?: string | null, attempt?: number | null, data?: unknown];

/**
 * The JSON text a commit's entries are stored as. The column is `json`, which takes the escapes of a
 * NUL and of a lone surrogate, but every statement that searches history converts rows to jsonb
 * ({@link historyEventsSql}), which refuses both: one such row made the run's signals unreadable
 * (`unsupported Unicode escape sequence`). History carries text from outside (a step's progress
 * message, an agent's output), so such characters are stored as U+FFFD.
 */
export function encodeHistory(entries: HistoryEntry[]): string {
  const stored = entries.map((e) => {
    const out: Stored = [e.type, e.path ?? null, e.state ?? null, e.step ?? null, e.attempt ?? null, e.data ?? null];
    while (out.length > 1 && out[out.length - 1] === null) out.pop();
    return out;
  });
  const text = JSON.stringify(stored);
  // JSON.stringify writes a NUL and a lone surrogate as escapes (a valid pair stays raw): only then,
  // or for a string that spells such an escape, is anything rewritten. The test was not measurable
  // next to the stringify: 2–4 µs per 3-entry commit either way (loaded 2-core machine, 200,000 runs).
  return holdsRefusedEscape(text) ? JSON.stringify(storable(stored)) : text;
}

/**
 * Whether JSON text holds an escape Postgres's jsonb refuses — a NUL or a lone surrogate, which
 * JSON.stringify writes as `\\u0000`, `\\ud800`… (a valid pair stays raw) — or a string spelling one.
 */
export function holdsRefusedEscape(json: string): boolean {
  return /\\u(?:0000|d[89a-f])/i.test(json);
}

// eslint-disable-next-line no-control-regex -- NUL is what jsonb refuses: matching it is the point
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** A copy of JSON data with every NUL and lone surrogate, in strings and keys, replaced by U+FFFD. */
function storable(value: unknown): unknown {
  if (typeof value === 'string') return value.replace(UNSTORABLE, '\uFFFD');
  if (Array.isArray(value)) return value.map(storable);
  if (typeof value !== 'object' || value === null) return value;
  const json = (value as { toJSON?: unknown }).toJSON;
  if (typeof json === 'function') return storable((json as () => unknown).call(value));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k.replace(UNSTORABLE, '\uFFFD')] = storable(v);
  return out;
}

/** A stored row's entries, whichever form it has: `log` (this codec) or `events` (objects). */
export function decodeHistory(events: unknown, log: unknown): HistoryEntry[] {
  if (log == null) return (events ?? []) as HistoryEntry[];
  const stored = (typeof log === 'string' ? JSON.parse(log) : log) as Stored[];
  return stored.map(([type, path, state, step, attempt, data]) => ({
    type,
    ...(path != null && { path }),
    ...(state != null && { state }),
    ...(step != null && { step }),
    ...(attempt != null && { attempt }),
    ...(data != null && { data }),
  }));
}

/**
 * The same in SQL, for statements that search history (`jsonb_array_elements(${historyEventsSql('h')})`):
 * the events of row `h` as a jsonb array of objects, whichever form the row has. Migration 0012 defines
 * the function.
 */
export const historyEventsSql = (alias: string): string => `rmapp_history_events(${alias}.events, ${alias}.log)`;
