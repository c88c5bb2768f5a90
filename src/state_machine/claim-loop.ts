/**
 * A worker's claim loop: admits queued runs of keyed definitions, claims runnable runs up to the free
 * slots in batches of {@link CLAIM_BATCH}, starts their sessions, and sleeps until the next wake-up it
 * read, a poke (a notification, a session that freed a slot) or the poll. Postgres is the only
 * coordinator (worker.ts).
 */
import type { Database } from '../persistence/database.ts';
import type { Logger } from '../persistence/logger.ts';
import { admitQueuedRuns, type AdmissionCursor, claimRuns, nextWakeAt, type ClaimedRun } from '../persistence/claims.ts';
import type { Clock } from './clock.ts';
import { dbFaultsArmed, withDbFault } from './db-faults.ts';
import { describeFailure } from './db-refusals.ts';
import type { EngineEvents } from './events.ts';

/**
 * At most this many runs per claim statement: a worker with many free slots (a restart taking 1,000 runs
 * back, a burst of starts) claims them in several statements, and the runs of the first batch restore
 * and commit while Postgres executes the next claim — instead of one claim, then every actor restored
 * at once while Postgres idles, then one huge commit while Node idles. Measured figures:
 * bench/README.md, "What was changed".
 */
export const CLAIM_BATCH = 100;

/** What the claim loop reads and calls of its worker. */
export interface ClaimLoopHost {
  readonly db: Database;
  readonly owner: string;
  readonly leaseMs: number;
  readonly pollMs: number;
  readonly events: EngineEvents;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The registered definitions, as (name, version) pairs: claims and wake-ups are filtered on them. */
  readonly definitions: [string, string][];
  /** A registered definition has a concurrency key: queued runs are admitted on every pass. */
  readonly keyed: boolean;
  /** The worker is stopping: the loop ends. */
  isStopping(): boolean;
  /** A stop gave the runs up: a claim answered after that starts nothing. */
  hasGivenUp(): boolean;
  /** Slots free for claimed runs (concurrency less sessions held and slots reserved for local starts). */
  freeSlots(): number;
  /** Starts the session of a run just claimed. */
  startSession(row: ClaimedRun, claimedAt: number): unknown;
}

/** One worker's claim loop, from {@link start} until the worker stops; {@link poke} runs it again now. */
export class ClaimLoop {
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private poked = false;
  /**
   * The claim loop had no free slot on a pass since its last claim: a run may be runnable that no claim
   * saw (a start or signal it was woken for, a due timer, a poll). A session that ends then frees a slot
   * to claim it with at once; otherwise the last claim saw every runnable run, and later ones wake the
   * loop themselves (a notification, the next wake-up it read, the poll).
   */
  private missedWhileFull = false;
  /** Runs woken while no session held them, since the current claim was sent. */
  private readonly wokenWhileClaiming = new Set<string>();
  /** Where this worker's admission passes have got to in the queued keys (claims.ts `admitQueuedRuns`). */
  private readonly admission: AdmissionCursor = { after: '' };
  /** Keys whose runs ended here since the last pass: their queues are admitted first. */
  private readonly freedKeys = new Set<string>();

  constructor(private readonly host: ClaimLoopHost) {}

  /** Runs the loop until the worker stops. */
  start(): void {
    this.loop = this.claimLoop();
  }

  /** The loop while it runs, null before {@link start}: a graceful stop waits for it. */
  get done(): Promise<void> | null {
    return this.loop;
  }

  /** A pass since the last claim found no free slot: a session that ends should poke the loop. */
  missedRunsWhileFull(): boolean {
    return this.missedWhileFull;
  }

  /** A run may have become runnable: the loop runs again at once rather than at its next wake-up. */
  poke(): void {
    this.poked = true;
    this.wake?.();
  }

  /** Ends the loop's wait at once (the worker is stopping). */
  interrupt(): void {
    this.wake?.();
  }

  /** A run no session here holds was woken: claimed by the claim in flight, its session reads its inbox. */
  woken(runId: string): void {
    this.wokenWhileClaiming.add(runId);
    this.poke();
  }

  /** A keyed run ended here: its key's queue is admitted first on the next pass. */
  keyFreed(key: string): void {
    this.freedKeys.add(key);
  }

  private async claimLoop(): Promise<void> {
    let failures = 0;
    while (!this.host.isStopping()) {
      this.poked = false;
      const free = this.host.freeSlots();
      let claimed: ClaimedRun[] = [];
      let claimedAt = 0;
      let limit = 0;
      let next: Date | null = null;
      try {
        if (this.host.keyed) {
          const freed = [...this.freedKeys];
          this.freedKeys.clear();
          await admitQueuedRuns(this.host.db, this.host.definitions, this.admission, freed);
        }
        this.missedWhileFull = free <= 0;
        if (free > 0) {
          this.wokenWhileClaiming.clear();
          claimedAt = performance.now();
          limit = Math.min(free, CLAIM_BATCH);
          const claim = () =>
            claimRuns(this.host.db, { owner: this.host.owner, leaseMs: this.host.leaseMs, limit, definitions: this.host.definitions });
          claimed = dbFaultsArmed ? await withDbFault('claim', claim) : await claim();
          // Answered after a stop gave up (a claim held on a lock): the runs stay leased until they expire.
          if (this.host.hasGivenUp()) return;
        }
        // Sessions start before anything else is awaited: a run this worker just claimed back (its own
        // lease had expired) must replace its old session at once.
        for (const row of claimed) {
          if (row.dueAt)
            this.host.events.emit('run.claimed', {
              runId: row.id,
              workflow: row.workflow,
              lagMs: Math.max(0, this.host.clock.now() - row.dueAt.getTime()),
            });
          this.host.startSession(this.wokenWhileClaiming.has(row.id) ? { ...row, hasSignals: true } : row, claimedAt);
        }
        this.wokenWhileClaiming.clear();
        if (claimed.length < limit) next = await nextWakeAt(this.host.db, this.host.definitions);
        failures = 0;
      } catch (err) {
        failures += 1;
        const { level, message } = describeFailure(`worker ${this.host.owner} could not claim runs (attempt ${failures})`, err);
        this.host.logger[level]({ err, owner: this.host.owner, attempt: failures }, message);
      }
      if (this.host.isStopping()) break;
      if (claimed.length > 0 && claimed.length === limit) continue;
      if (this.poked) continue;
      const now = this.host.clock.now();
      let waitMs = failures > 0 ? Math.min(5_000, 100 * 2 ** failures) : this.host.pollMs;
      if (next) waitMs = Math.min(waitMs, Math.max(0, next.getTime() - now) + 5);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
  }
}
