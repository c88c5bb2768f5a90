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

/** The JSON text a commit's entries are stored as. */
export function encodeHistory(entries: HistoryEntry[]): string {
  return JSON.stringify(
    entries.map((e) => {
      const out: Stored = [e.type, e.path ?? null, e.state ?? null, e.step ?? null, e.attempt ?? null, e.data ?? null];
      while (out.length > 1 && out[out.length - 1] === null) out.pop();
      return out;
    }),
  );
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
