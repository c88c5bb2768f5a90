/**
 * Group commit. Sessions mark themselves dirty; whenever the {@link InFlightPolicy} leaves room for a
 * batch, every dirty session builds its write and all of them go to Postgres in one statement. While
 * commits are in flight new changes accumulate for the next one, so under load each round trip carries
 * many runs' macrosteps, and each run has at most one write in flight (its writes stay ordered).
 */
import type { Database } from '../persistence/database.ts';
import { commitRunWrites, landedWrite, type CommitResult, type RunWrite } from '../persistence/commits.ts';
import { faultsArmed, reachFaultPoint, stateTargets } from './fault-points.ts';
import { dbFaultsArmed, withDbFault } from './db-faults.ts';
import { describeFailure } from './db-refusals.ts';
import { silentLogger, type Logger } from '../persistence/logger.ts';

/** What the committer needs from a run session. */
export interface CommitParticipant {
  readonly runId: string;
  /** The session has stopped: a write of it whose outcome is unknown is no longer sent again. */
  readonly ended: boolean;
  /** The write to send now, or null when there is nothing to write. */
  buildWrite(): PreparedWrite | null;
  onCommitted(prepared: PreparedWrite, result: CommitResult): void;
  /** The write was dropped unsent-again (its session ended while its outcome was unknown). */
  onFailed(prepared: PreparedWrite): void;
  /** The fence failed: another worker owns the run now, or it was changed under us. */
  onLost(prepared: PreparedWrite): void;
  /** The database refused this write itself (its data, not the connection): it will never succeed. */
  onRejected(prepared: PreparedWrite, err: unknown): void;
}

type Entry = { participant: CommitParticipant; prepared: PreparedWrite; inDoubt: boolean };

/**
 * Whether a failed commit failed for its data, so sending it again can never succeed: Postgres's data
 * exceptions (SQLSTATE class 22: bad JSON, a NUL byte, a value out of range), integrity violations (23)
 * and limits (54: a row or value too large), or a write whose values JSON cannot write, found before
 * sending (`UNWRITABLE_WRITE`, commits.ts). Anything else — a lost connection, a cancelled statement or
 * `statement_timeout` (57014), a read-only server after a fail-over (25006), lack of resources (53), a
 * connection that could not be set up (an SSL file unreadable for a moment, `DATABASE_CONFIG`) — is the
 * database's state, not the write's: the write is sent again, in doubt. Treating those as refusals
 * failed runs for good, or (a setup problem) dropped their sessions with the runs still leased, so
 * their steps ran again after the lease (an adversarial pass).
 */
function refusesData(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return ['22', '23', '54'].includes(code.slice(0, 2));
  return code === 'UNWRITABLE_WRITE';
}

/** A write plus what the session needs to know once it is durable. */
export interface PreparedWrite {
  write: RunWrite;
  /** The session's change counter when the write was built. */
  seq: number;
}

/** How many commit batches a committer keeps in flight. */
export interface InFlightPolicy {
  /** Batches in flight at once, each on its own connection; a run never has two writes in flight. */
  batches: number;
  /** Another batch goes out while one is in flight only when the writes in flight number at least this. */
  anotherFrom: number;
}

/**
 * What a worker keeps in flight. One batch at a time left a worker restoring 1,000 runs idle while
 * each large batch (hundreds of writes) was in Postgres (86 of its 730 ms after the first claim); a
 * second batch sent meanwhile takes the runs whose writes landed: recovery 1,020 → 983 ms (medians of
 * 8 interleaved rounds, 6 of 8 pairs faster). Small batches are answered sooner than a second could
 * help: at concurrency 50 (batches of at most 50 writes) a second batch only split them, costing
 * 0.71 → 0.80 ms of worker CPU and 0.37 → 0.43 ms of Postgres CPU per workflow and ~6 % of the
 * throughput (1,148–1,214 against 1,057–1,095 wf/s). Hence two, the second only behind 64 writes or
 * more. Concurrency 1 is unchanged (one run has one write in flight). bench/README.md, eighteenth session.
 */
export const COMMITS_IN_FLIGHT: InFlightPolicy = { batches: 2, anotherFrom: 64 };

export class Committer {
  private readonly dirty = new Set<CommitParticipant>();
  private inFlight = 0;
  /** Writes in the batches in flight. */
  private writesInFlight = 0;
  private scheduled = false;
  private failures = 0;
  private pausedUntil = 0;
  private idleWaiters: (() => void)[] = [];
  /** Given up by a stop whose writes could not be made in time: nothing is sent any more. */
  private abandoned = false;
  /**
   * Writes whose statement broke off (a lost connection, a restart): Postgres may have committed them
   * before the reply was lost. Each is sent again exactly as it was, never rebuilt with newer changes,
   * so its fence tells which case it was (see {@link landedWrite}). Rebuilding instead made the session
   * read the fence failure of its own applied write as a lost run, and drop a step whose start was
   * already durable (a CI run saw 12 such attempts across a Postgres restart).
   */
  private readonly inDoubt = new Map<CommitParticipant, PreparedWrite>();
  /**
   * Sessions with a write in a batch in flight. A session's own check (`buildWrite` returns null while
   * its write is out) does not cover a write in doubt, which the committer sends itself: with two
   * batches in flight, one sent again after a lost reply went out twice at once, both fence checks
   * failed, and the session took the second as its own (an adversarial pass: the run lost, its steps
   * run again, queued history dropped). Such a session waits in `deferred` for its batch's answer, then
   * is dirty again (kept out of `dirty` meanwhile: each launch would scan it again, and a recovering
   * worker's 1,000 sessions made that quadratic).
   */
  private readonly sending = new Set<CommitParticipant>();
  private readonly deferred = new Set<CommitParticipant>();

  constructor(
    private readonly db: Database,
    private readonly inFlightPolicy: InFlightPolicy = COMMITS_IN_FLIGHT,
    /** Told of every commit that failed and will be sent again (a warning: it is retried). */
    private readonly logger: Logger = silentLogger,
    /** The longest wait before a failed commit is sent again. */
    private readonly maxBackoffMs = 2_000,
  ) {}

  /** Queues a session's changes for the next commit. */
  schedule(participant: CommitParticipant): void {
    this.dirty.add(participant);
    this.kick();
  }

  /** Resolves when nothing is dirty and no commit is in flight. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    return this.abandoned || (this.inFlight === 0 && !this.scheduled && this.dirty.size === 0 && this.deferred.size === 0);
  }

  /**
   * Sends nothing more: a stopping worker whose writes kept failing past its deadline gives them up, as
   * a killed process would (their runs resume from their last durable state once the leases expire).
   * Writes in doubt are reported failed to their sessions; `idle()` resolves.
   */
  abandon(): void {
    this.abandoned = true;
    for (const [participant, prepared] of this.inDoubt) participant.onFailed(prepared);
    this.inDoubt.clear();
    this.dirty.clear();
    this.deferred.clear();
    this.settle();
  }

  private kick(): void {
    if (this.abandoned || this.scheduled || this.dirty.size === 0 || !this.roomInFlight()) return;
    this.scheduled = true;
    const delay = Math.max(0, this.pausedUntil - Date.now());
    // setImmediate, not a microtask: a step's completion is recorded a few microtasks before XState
    // applies the transition it causes; waiting for the microtask queue to drain puts both in one
    // write (13 → 7 commits for a 6-step run, measured).
    const go = () => {
      this.scheduled = false;
      this.launch();
    };
    if (delay > 0) setTimeout(go, delay);
    else setImmediate(go);
  }

  private roomInFlight(): boolean {
    const { batches, anotherFrom } = this.inFlightPolicy;
    return this.inFlight === 0 || (this.inFlight < batches && this.writesInFlight >= anotherFrom);
  }

  private launch(): void {
    if (this.abandoned) return;
    const batch: Entry[] = [];
    for (const participant of this.dirty) {
      if (this.sending.has(participant)) {
        this.deferred.add(participant);
        continue;
      }
      const unknown = this.inDoubt.get(participant);
      if (unknown && participant.ended) {
        this.inDoubt.delete(participant);
        participant.onFailed(unknown);
        continue;
      }
      const prepared = unknown ?? participant.buildWrite();
      if (prepared) batch.push({ participant, prepared, inDoubt: unknown !== undefined });
    }
    this.dirty.clear();
    if (batch.length === 0) return this.settle();
    for (const b of batch) this.sending.add(b.participant);
    this.inFlight += 1;
    this.writesInFlight += batch.length;
    void this.commit(batch).finally(() => {
      for (const b of batch) {
        this.sending.delete(b.participant);
        if (this.deferred.delete(b.participant) && !this.abandoned) this.dirty.add(b.participant);
      }
      this.inFlight -= 1;
      this.writesInFlight -= batch.length;
      this.kick();
      this.settle();
    });
  }

  private settle(): void {
    if (this.isIdle()) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private async commit(batch: Entry[]): Promise<void> {
    if (this.abandoned) return;
    let results: CommitResult[];
    if (faultsArmed) for (const b of batch) reachFaultPoint('before-persist', stateTargets(b.prepared.write.stateValue));
    try {
      const commit = () =>
        commitRunWrites(
          this.db,
          batch.map((b) => b.prepared.write),
        );
      results = dbFaultsArmed ? await withDbFault('commit', commit) : await commit();
      this.failures = 0;
    } catch (err) {
      // The database refused the data (not a lost connection): find the write it cannot take, alone,
      // so one run's bad write never holds back the others' (a batch is one statement).
      if (refusesData(err)) {
        if (batch.length === 1) {
          const [only] = batch;
          if (only) this.inDoubt.delete(only.participant);
          only?.participant.onRejected(only.prepared, err);
        } else {
          for (const b of batch) await this.commit([b]);
        }
        return;
      }
      // The database is unreachable or the statement broke off: all of it or none of it was applied
      // (one statement is one transaction), and the reply does not say which. Send the same writes
      // again with backoff.
      this.retryLater(batch, err);
      return;
    }
    const byIndex = new Map(results.map((r) => [r.index, r]));
    // Durable, but no session has acted on it yet (a step waiting on this write has not started).
    if (faultsArmed) batch.forEach((b, i) => byIndex.has(i) && reachFaultPoint('after-persist', stateTargets(b.prepared.write.stateValue)));
    const unsure: Entry[] = [];
    for (const [i, entry] of batch.entries()) {
      const result = byIndex.get(i);
      this.inDoubt.delete(entry.participant);
      if (result) entry.participant.onCommitted(entry.prepared, result);
      else if (entry.inDoubt) unsure.push(entry);
      else entry.participant.onLost(entry.prepared);
    }
    // A write sent again whose fence failed: either its first sending was applied, or the run is lost.
    for (const entry of unsure) {
      let landed: CommitResult | null;
      try {
        landed = await landedWrite(this.db, entry.prepared.write);
      } catch (err) {
        this.retryLater([entry], err);
        continue;
      }
      if (landed) entry.participant.onCommitted(entry.prepared, landed);
      else entry.participant.onLost(entry.prepared);
    }
  }

  private retryLater(entries: Entry[], err: unknown): void {
    if (this.abandoned) return;
    this.failures += 1;
    const { level, message } = describeFailure(`could not commit ${entries.length} run(s)`, err);
    this.logger[level]({ err, runs: entries.length, attempt: this.failures }, message);
    this.pausedUntil = Date.now() + Math.min(this.maxBackoffMs, 50 * 2 ** Math.min(this.failures, 6));
    for (const { participant, prepared } of entries) {
      this.inDoubt.set(participant, prepared);
      this.dirty.add(participant);
    }
  }
}
