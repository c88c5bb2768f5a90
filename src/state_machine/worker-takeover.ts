/**
 * What a starting worker takes over at once rather than after the leases expire: the leases a dead
 * process left on an embedded store it holds alone, and, under an id the operator chose, the runs of its
 * own previous incarnation (previous-incarnations.ts) — and the locks that tell a restart from a second
 * live process under the same id, held while the worker runs.
 */
import { expireDeadProcessLeases, ownerLockName } from '../persistence/claims.ts';
import type { Database } from '../persistence/database.ts';
import type { Logger } from '../persistence/logger.ts';
import { recordIncarnation, takeBackFromPreviousIncarnations } from './previous-incarnations.ts';

/**
 * Every lease owner a worker of this process has been (`takeOverDeadProcess`), in the process's global
 * symbol registry so that every copy of the package loaded in it shares one set: a module-level set
 * let a second copy's worker take over a first copy's live runs (an adversarial pass). Never emptied: a
 * worker stopped or cut off by a closed store may still be running a step.
 */
const processOwners: Set<string> = ((globalThis as Record<symbol, unknown>)[Symbol.for('rmapp.leaseOwners')] ??=
  new Set<string>()) as Set<string>;

/**
 * One worker's take-overs and the locks of its identity. Constructing it counts its owner among this
 * process's live owners, whose leases no take-over expires.
 */
export class WorkerTakeover {
  /** The locks of the worker id the operator chose and of this owner, while this worker runs (see takeOverPreviousIncarnation). */
  private readonly workerLocks: { release(): Promise<void> }[] = [];

  constructor(
    private readonly db: Database,
    private readonly options: { workerId: string },
    private readonly owner: string,
    private readonly leaseMs: number,
    private readonly logger: Logger,
  ) {
    processOwners.add(owner);
  }

  /**
   * On an embedded store this process holds alone, takes over at once the leases a dead process left
   * (`Database.soleHolder`): those of every owner but this process's own workers — whose steps may be
   * running still, after a stop that gave up or with the store closed and opened again under them.
   */
  async takeOverDeadProcess(): Promise<void> {
    if (!this.db.soleHolder) return;
    await expireDeadProcessLeases(this.db, [...processOwners]);
  }

  /**
   * Under an id the operator chose, takes back at once the runs its previous incarnation held (a
   * restart) when that process is proven gone (previous-incarnations.ts), unless another live process
   * holds the id's lock (Postgres): two processes then share the id, and expiring the other's leases
   * would run its steps in flight a second time. Its runs are left to their leases, and the operator is told.
   */
  async takeOverPreviousIncarnation(): Promise<void> {
    const { workerId } = this.options;
    // Held before anything is claimed, whether or not the id's lock is: a restart of this id leaves the
    // leases of a live owner alone (claims.ts `expirePreviousIncarnation`).
    const ownerLock = await this.db.holdLock?.(ownerLockName(this.owner), () => {});
    if (ownerLock) this.workerLocks.push(ownerLock);
    await recordIncarnation(this.db, { workerId, owner: this.owner });
    // Told only when a connection that is not this store's holds the id's lock once this worker is back
    // (listener.ts `Listener.holdLock`): its own old connection, which a partition leaves holding the lock on the
    // server for minutes, is terminated and the lock taken again — it was reported as another process.
    const lock = await this.db.holdLock?.(`rmapp.worker:${workerId}`, (holder) =>
      this.logger.error(
        { workerId, owner: this.owner, holder },
        `rmapp: another process took worker id "${workerId}" while this worker (${this.owner}) was cut off from the database ` +
          `(the id's lock is held by backend ${holder.pid}, application "${holder.applicationName ?? '?'}"` +
          `${holder.clientAddr ? ` from ${holder.clientAddr}` : ''}): two live processes share the id. This worker goes on with ` +
          `the runs it holds (every write is fenced by its lease) and tries to take the id's lock back every few seconds; ` +
          `give each worker its own --worker-id.`,
      ),
    );
    if (lock) this.workerLocks.push(lock);
    if (lock && !lock.held) {
      this.logger.error(
        { workerId, owner: this.owner },
        `rmapp: worker id "${workerId}" is in use by another live process (it holds the id's lock in the database), so this worker (${this.owner}) does not take over the runs that id holds: they stay with their worker, or move once their leases expire. Worker ids must be unique among running workers; give this one its own --worker-id.`,
      );
      return;
    }
    await takeBackFromPreviousIncarnations(this.db, {
      workerId,
      owner: this.owner,
      liveOwners: [...processOwners],
      ownerLocks: ownerLock?.held === true,
      leaseMs: this.leaseMs,
      logger: this.logger,
    });
  }

  /** Lets go of the locks {@link takeOverPreviousIncarnation} took (a stop, a failed start, a simulated crash). */
  async releaseWorkerLock(): Promise<void> {
    const locks = this.workerLocks.splice(0);
    await Promise.all(locks.map((lock) => lock.release().catch(() => {})));
  }
}
