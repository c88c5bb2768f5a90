/**
 * What a worker started under an operator-chosen id does with the runs earlier processes under that id
 * still hold (README, "One owner at a time"): it takes back at once those of a process it can prove
 * gone, and leaves the others to their leases. Locks in the database (the id's, each owner's) tell a
 * live process that is connected; they cannot tell a dead process from one the database has lost — a
 * network cut, its connections terminated, a Postgres restart — which holds none of them until it
 * reconnects, yet may still be running steps: taking its runs at once ran 30 steps twice at the same
 * time in an adversarial pass. Its record (its pid, start time, boot and PID namespace) can: on the same
 * machine and in the same PID namespace, a pid not running, or running another process, is gone. Any
 * other previous process — on another machine, in another container, or from before this version —
 * has its runs claimed once their leases expire, by which time it has stopped them itself if it still
 * runs (self-fencing, a fifth of the lease before).
 */
import { expirePreviousIncarnation } from '../persistence/claims.ts';
import type { Queryable } from '../persistence/database.ts';
import { expireOwedCleanupLeases } from '../persistence/run-admin.ts';
import type { Logger } from '../persistence/logger.ts';
import { processFate, thisProcess, type ProcessIdentity } from '../persistence/process-identity.ts';
import { forgetWorkerProcesses, previousOwners, recordWorkerProcess } from '../persistence/worker-processes.ts';

/** Who is starting, and what it knows of the database's locks. */
export interface Incarnation {
  workerId: string;
  /** This worker's lease owner. */
  owner: string;
  /** Every owner this process's workers have been: alive, whatever the records say. */
  liveOwners: string[];
  /** The database holds each owner's lock (Postgres): an owner whose lock is held is alive. */
  ownerLocks: boolean;
  leaseMs: number;
  logger: Logger;
}

/**
 * Records this process as the owner's, before anything is claimed under it, for the incarnations
 * after it to judge — also when another live process holds the id: this one still runs runs.
 */
export async function recordIncarnation(db: Queryable, me: Pick<Incarnation, 'workerId' | 'owner'>): Promise<void> {
  await recordWorkerProcess(db, me.owner, me.workerId, thisProcess());
}

/**
 * Takes back at once the runs of previous incarnations proven gone and logs why the others wait.
 * Returns how many runs (and owed cleanups) were taken back. Only once the id's lock is held: a second live process under
 * the id takes nothing.
 */
export async function takeBackFromPreviousIncarnations(db: Queryable, me: Incarnation): Promise<number> {
  const self = thisProcess();
  const previous = await previousOwners(db, me.workerId, me.liveOwners);
  const gone: string[] = [];
  for (const p of previous) {
    const fate = p.process ? processFate(p.process, self) : 'unknown';
    if (fate === 'gone') gone.push(p.owner);
    else
      me.logger.warn(
        { workerId: me.workerId, owner: me.owner, previousOwner: p.owner, runs: p.leases },
        waitingMessage(me, p.owner, p.leases, p.process, fate),
      );
  }
  const taken = await expirePreviousIncarnation(db, {
    workerId: me.workerId,
    owners: gone,
    // Their kept leases too: a process proven gone runs none of the step functions its stop left running.
    keptOwners: gone,
    liveOwners: me.liveOwners,
    ownerLocks: me.ownerLocks,
  });
  // The owed cleanups they were running (their sweeps' leases): run again by this worker's first sweep.
  const cleanups = await expireOwedCleanupLeases(db, gone);
  await forgetWorkerProcesses(db, me.workerId, [me.owner, ...me.liveOwners]);
  return taken + cleanups;
}

function waitingMessage(
  me: Incarnation,
  previous: string,
  runs: number,
  process: ProcessIdentity | null,
  fate: 'alive' | 'unknown',
): string {
  const within = `within ${Math.ceil(me.leaseMs / 1000)} s`;
  const head = `rmapp: worker id "${me.workerId}": ${runs} run${runs === 1 ? '' : 's'} of its earlier process ${previous}`;
  if (fate === 'alive')
    return `${head} (pid ${process?.pid}) stay with it: that process is still running on this machine, cut off from the database or not yet stopped, and may be running their steps. They move here when their leases expire (${within}), once it has stopped them. Worker ids must be unique among running processes: stop the old one first, or give this one its own --worker-id.`;
  const why = !process
    ? 'it left no record of itself (an older rmapp)'
    : 'it ran on another machine or in another container (another boot or PID namespace), where this process cannot see whether it still runs';
  return `${head} resume when their leases expire (${within}), not at once: ${why}.`;
}
