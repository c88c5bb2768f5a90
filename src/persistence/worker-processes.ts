/**
 * The record of which process each lease owner of an operator-chosen worker id was (migration 0021),
 * so that a worker started again under that id can tell a previous incarnation that is gone — whose
 * runs it takes back at once — from one the database has merely lost (a network cut, its connections
 * terminated, a Postgres restart), which holds none of its locks there any more but may still be running
 * steps: those runs wait for their leases, by which time that process has stopped them itself
 * (self-fencing). README, "One owner at a time".
 */
import type { Queryable } from './database.ts';
import type { ProcessIdentity } from './process-identity.ts';
import { CLEANUP_OWED } from './run-admin.ts';

/** Writes (or rewrites) the record of `owner`: this worker's process. */
export async function recordWorkerProcess(db: Queryable, owner: string, workerId: string, me: ProcessIdentity): Promise<void> {
  await db.query(
    `insert into rmapp_worker_processes (owner, worker_id, pid, process_start, boot_id, pid_namespace) values ($1, $2, $3, $4, $5, $6)
     on conflict (owner) do update set worker_id = excluded.worker_id, pid = excluded.pid, process_start = excluded.process_start,
       boot_id = excluded.boot_id, pid_namespace = excluded.pid_namespace, started_at = now()`,
    [owner, workerId, me.pid, me.start ?? null, me.boot ?? null, me.ns ?? null],
  );
}

/** A previous lease owner of a worker id that still holds leases, with the process it recorded (null: none). */
export interface PreviousOwner {
  owner: string;
  /** Its running runs whose lease has not expired. */
  leases: number;
  process: ProcessIdentity | null;
}

/**
 * The lease owners of `workerId` other than `liveOwners` (this process's own) that hold unexpired
 * leases of running runs, with their records. A kept lease (claims.ts `keptOwner`: its worker stopped
 * while a step function had not returned) counts as its owner's: once that owner's process is proven
 * gone, nothing of it runs any more, and a restart under the id waited out such leases for nothing —
 * the CLI exits soon after a stop that kept some (test/adv8-owner-kept-gone.test.ts). An owed cleanup's
 * lease taken by the owner's sweep (`<owner>:cleanup:<8 hex>`, run-admin.ts `takeOwedCleanup`) counts
 * too: a worker killed mid-cleanup held nothing else, and its restart waited out that lease.
 */
export async function previousOwners(db: Queryable, workerId: string, liveOwners: string[]): Promise<PreviousOwner[]> {
  const rows = await db.query<{
    owner: string;
    leases: number;
    pid: number | null;
    process_start: string | null;
    boot_id: string | null;
    pid_namespace: string | null;
  }>(
    // An owner is `<worker id>:<8 hex chars>`, a kept lease's `<owner>:kept`: the suffixes are stripped
    // to compare ids exactly.
    `select l.owner, l.leases, p.pid, p.process_start, p.boot_id, p.pid_namespace
       from (select o.owner, count(*)::int as leases from rmapp_runs r
              cross join lateral (select case when r.status = 'cancelled' then substring(r.lease_owner from '^(.*:[0-9a-f]{8}):cleanup:[0-9a-f]{8}$')
                when right(r.lease_owner, 5) = ':kept' then left(r.lease_owner, -5) else r.lease_owner end as owner) o
              where (r.status = 'running' or (r.status = 'cancelled' and r.status_message = $3))
                and r.lease_expires_at > now() and left(o.owner, -9) = $1
                and o.owner <> all($2::text[])
              group by o.owner) l
       left join rmapp_worker_processes p on p.owner = l.owner
      order by l.owner`,
    [workerId, liveOwners, CLEANUP_OWED],
  );
  return rows.map((r) => ({
    owner: r.owner,
    leases: r.leases,
    process:
      r.pid === null
        ? null
        : {
            pid: r.pid,
            ...(r.process_start === null ? {} : { start: r.process_start }),
            ...(r.boot_id === null ? {} : { boot: r.boot_id }),
            ...(r.pid_namespace === null ? {} : { ns: r.pid_namespace }),
          },
  }));
}

/**
 * The owner `p.owner` holds no unexpired lease: of a running run (its own, or kept), nor of an owed
 * cleanup it runs (`<owner>:cleanup:<8 hex>`, run-admin.ts `takeOwedCleanup`, as {@link previousOwners}
 * counts it); `owed` is the SQL parameter that carries run-admin.ts `CLEANUP_OWED`. A live earlier owner that held only a cleanup lease
 * lost its record, and a restart after its death could no longer prove it gone: it waited out the lease.
 */
const holdsNoLease = (
  owed: string,
) => `not exists (select 1 from rmapp_runs r where r.lease_owner in (p.owner, p.owner || ':kept') and r.status = 'running'
         and r.lease_expires_at > now())
       and not exists (select 1 from rmapp_runs r where r.status = 'cancelled' and r.status_message = ${owed}
         and r.lease_expires_at > now() and left(r.lease_owner, length(p.owner) + 9) = p.owner || ':cleanup:')`;

/**
 * Deletes the records of `workerId`'s owners other than `keep` that hold no unexpired lease: nothing
 * is left for a later incarnation to judge them by (their runs, if any, are claimable already).
 */
export async function forgetWorkerProcesses(db: Queryable, workerId: string, keep: string[]): Promise<void> {
  await db.query(
    `delete from rmapp_worker_processes p where p.worker_id = $1 and p.owner <> all($2::text[])
       and ${holdsNoLease('$3')}`,
    [workerId, keep, CLEANUP_OWED],
  );
}

/**
 * Deletes `owner`'s own record when it holds no lease any more (a clean stop released them all): ids
 * never used again (a pod's name) would otherwise leave a row per process for good. Kept while a kept
 * lease or a cleanup lease stands (an `engine.cancel`'s cleanup runs on past its worker's stop): a
 * restart needs it to prove that process gone.
 */
export async function forgetWorkerProcess(db: Queryable, owner: string): Promise<void> {
  await db.query(`delete from rmapp_worker_processes p where p.owner = $1 and ${holdsNoLease('$2')}`, [owner, CLEANUP_OWED]);
}
