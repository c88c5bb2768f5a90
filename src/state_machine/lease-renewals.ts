/**
 * A worker's leases (README, "One owner at a time"): renews the leases of the sessions it holds, judges
 * each renewal only for the sessions it was sent for, and ends a session with work running a safety
 * margin before its lease could expire by this process's clock, whether or not the database answers
 * (self-fencing). A session's step confirms the lease before it starts ({@link LeaseRenewals.confirmLease}).
 */
import { renewLeases } from '../persistence/claims.ts';
import type { Database } from '../persistence/database.ts';
import type { Logger } from '../persistence/logger.ts';
import { dbFaultsArmed, withDbFault } from './db-faults.ts';
import { describeFailure } from './db-refusals.ts';
import type { RunSession } from './run-session.ts';

/**
 * Renews and fences the leases of one worker's sessions. Separate from worker.ts because it reads the
 * sessions and nothing else of the worker: its timers run from {@link arm} until {@link disarm}.
 */
export class LeaseRenewals {
  /** Renewals in flight; a slow database gets a few at once, never a pile. */
  private renewalsInFlight = 0;
  private renewTimer: NodeJS.Timeout | null = null;
  private fenceTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly db: Database,
    private readonly owner: string,
    private readonly leaseMs: number,
    private readonly logger: Logger,
    private readonly sessions: ReadonlyMap<string, RunSession>,
  ) {}

  /** Starts renewing (every third of the lease) and self-fencing (every twentieth). */
  arm(): void {
    this.renewTimer = setInterval(() => void this.renew(), Math.max(50, Math.floor(this.leaseMs / 3)));
    this.fenceTimer = setInterval(() => this.selfFence(), Math.max(10, Math.floor(this.leaseMs / 20)));
  }

  /** Stops both timers; a renewal in flight is still judged when it answers. */
  disarm(): void {
    if (this.renewTimer) clearInterval(this.renewTimer);
    if (this.fenceTimer) clearInterval(this.fenceTimer);
  }

  /** The margin by which a session stops before its lease could expire by this process's clock. */
  private get fenceMarginMs(): number {
    return Math.floor(this.leaseMs / 5);
  }

  /**
   * Extends the leases of the sessions held now. The reply is judged for exactly those sessions: one
   * started or replaced while the statement was in flight is not part of it. Renewals do not wait for
   * each other (a slow one must not delay the next), up to three at once.
   */
  private async renew(): Promise<void> {
    const sent = [...this.sessions.values()].filter((s) => !s.ended);
    if (sent.length === 0 || this.renewalsInFlight >= 3) return;
    this.renewalsInFlight += 1;
    const sentAt = performance.now();
    try {
      const renew = () =>
        renewLeases(this.db, { owner: this.owner, leaseMs: this.leaseMs, runs: sent.map((s) => ({ id: s.runId, epoch: s.epoch })) });
      const { held, withSignals } = dbFaultsArmed ? await withDbFault('renew', renew) : await renew();
      for (const session of sent) {
        if (session.ended) continue;
        if (held.has(session.runId)) {
          // The database set the expiry to at least its now() + lease, later than `sentAt`, and never
          // lowers it (a renewal that queued behind a lock commits after this one: claims.ts `renewLeases`).
          session.leaseValidUntil = Math.max(session.leaseValidUntil, sentAt + this.leaseMs);
          if (withSignals.has(session.runId)) void session.pullSignals();
        } else if (!session.writing) {
          // A session with a write in flight may be releasing the run itself; its commit decides.
          session.lose('renewal');
        }
      }
    } catch (err) {
      const { level, message } = describeFailure(`worker ${this.owner} could not renew leases`, err);
      this.logger[level]({ err, owner: this.owner }, message);
    } finally {
      this.renewalsInFlight -= 1;
    }
  }

  /**
   * Ends every session with work running — a step's, or its definition's cleanup (a cancelled run's:
   * left out, it ran on, its signal unaborted, beside the next owner's run of it once the lease expired,
   * test/a3-session-cleanup-fence.test.ts) — whose lease could expire within the safety margin by this
   * process's clock: that work must stop before another worker may take the run. A session running no
   * work is left alone: its writes are fenced by the database, and its next step confirms the lease
   * before starting (`confirmLease`). A session whose write giving the run up (it ended, or only
   * waits) is in flight runs nothing: its commit decides, so a run finished by its owner is not
   * reported lost.
   */
  private selfFence(): void {
    for (const session of [...this.sessions.values()]) {
      if (!session.ended && !session.releasing && (session.working > 0 || session.cleaningUp) && !this.leaseTrusted(session))
        session.lose('self-fence');
    }
  }

  /**
   * A step is about to start and its session's lease is no longer trusted (renewals were slow or
   * failed): renew this run now. Held → the step starts under the renewed lease; not held → the run
   * was taken and the session stops; unreachable → try again until one of those is known. Every claim
   * bumps the epoch (even this worker's own, of a run whose lease expired), so a renewal that finds
   * this owner at the session's epoch proves no one took the run since the session's claim.
   */
  async confirmLease(session: {
    readonly runId: string;
    readonly epoch: number;
    readonly ended: boolean;
    leaseValidUntil: number;
    lose(reason: 'renewal'): void;
  }): Promise<boolean> {
    while (!session.ended) {
      if (this.leaseTrusted(session)) return true;
      const sentAt = performance.now();
      try {
        const renew = () =>
          renewLeases(this.db, { owner: this.owner, leaseMs: this.leaseMs, runs: [{ id: session.runId, epoch: session.epoch }] });
        const { held } = dbFaultsArmed ? await withDbFault('renew', renew) : await renew();
        if (session.ended) return false;
        if (!held.has(session.runId)) {
          session.lose('renewal');
          return false;
        }
        session.leaseValidUntil = Math.max(session.leaseValidUntil, sentAt + this.leaseMs);
      } catch {
        await new Promise((resolve) => setTimeout(resolve, this.fenceMarginMs));
      }
    }
    return false;
  }

  /** The session's lease is certainly held for at least the safety margin (by this process's clock). */
  leaseTrusted(session: { leaseValidUntil: number }): boolean {
    return performance.now() + this.fenceMarginMs < session.leaseValidUntil;
  }
}
