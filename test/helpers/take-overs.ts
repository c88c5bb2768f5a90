/**
 * When runs were taken from an earlier worker, against when that worker's leases would have expired —
 * both by the database's clock, so that a test tells "taken back at once" from "waited for the lease"
 * without timing anything itself.
 */
import type { Queryable } from '../../src/persistence/database.ts';

/** Each leased running run's lease expiry as it stands now (epoch ms), of `ids` or of every run. */
export async function leaseExpiries(db: Queryable, ids?: string[]): Promise<Map<string, number>> {
  const rows = await db.query<{ id: string; expires: Date }>(
    `select id, lease_expires_at as expires from rmapp_runs
      where status = 'running' and lease_expires_at is not null and ($1::text[] is null or id = any($1::text[]))`,
    [ids ?? null],
  );
  return new Map(rows.map((r) => [r.id, r.expires.getTime()]));
}

/** When each of `ids` was first taken over (its `lease.taken_over` history entry, epoch ms); absent if never. */
export async function takeOvers(db: Queryable, ids: string[]): Promise<Map<string, number>> {
  const rows = await db.query<{ id: string; at: Date }>(
    `select run_id as id, min(at) as at from rmapp_run_history
      where run_id = any($1::text[]) and events @> '[{"type":"lease.taken_over"}]' group by run_id`,
    [ids],
  );
  return new Map(rows.map((r) => [r.id, r.at.getTime()]));
}

/** The runs of `expiries` not taken over before their lease expired (or never), described: a restart that waited. */
export function notTakenAtOnce(expiries: Map<string, number>, taken: Map<string, number>): string[] {
  return [...expiries].flatMap(([id, expires]) => {
    const at = taken.get(id);
    if (at === undefined) return [`${id}: never taken over`];
    return at < expires ? [] : [`${id}: taken over ${at - expires} ms after its lease expired`];
  });
}

/** The runs of `expiries` taken over before their lease expired, or never, described: a restart that did not wait. */
export function takenBeforeExpiry(expiries: Map<string, number>, taken: Map<string, number>): string[] {
  return [...expiries].flatMap(([id, expires]) => {
    const at = taken.get(id);
    if (at === undefined) return [`${id}: never taken over`];
    return at >= expires ? [] : [`${id}: taken over ${expires - at} ms before its lease expired`];
  });
}
