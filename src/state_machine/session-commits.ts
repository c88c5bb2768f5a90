/**
 * A session's side of the commit path: the changes counted since the last durable write, the history
 * queued for the next one, the one write in flight, the run's version (the optimistic fence), its
 * history row count and the compaction that keeps it under the bound, and the steps waiting for a
 * change to be durable (`persisted()`: a step's work starts only once the snapshot that entered it is).
 */
import type { CommitResult, RunWrite } from '../persistence/commits.ts';
import { compactHistory } from '../persistence/retention.ts';
import type { HistoryEntry } from '../persistence/runs.ts';
import type { CommitParticipant, PreparedWrite } from './committer.ts';
import type { SessionHost } from './session-host.ts';

interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** What the write of one session carries besides the fence and the history (filled in by {@link SessionCommits.send}). */
export type WriteBody = Omit<RunWrite, 'id' | 'expectedVersion' | 'owner' | 'epoch' | 'history'>;

export class SessionCommits {
  /** History queued for the next write, in order. */
  history: HistoryEntry[] = [];
  /** The write in flight, if any, and whether it gives the run up. */
  inFlight: { releasing: boolean } | null = null;
  /** The run's version as of its last write: the next write is fenced by it. */
  private version: number;
  /** The run's history rows as of its last write (the run row's `history_rows`). */
  private historyRows: number;
  private changeSeq = 0;
  private persistedSeq = 0;
  private waiters: Waiter[] = [];
  private compacting: Promise<void> | null = null;

  constructor(
    private readonly host: SessionHost,
    private readonly session: CommitParticipant & { readonly epoch: number },
    row: { version: number; historyRows: number },
    /** The session still has something to write (changes, or its ending): schedule it after a compaction. */
    private readonly hasMoreToWrite: () => boolean,
  ) {
    this.version = row.version;
    this.historyRows = row.historyRows;
  }

  /** The run's version as of its last durable write. */
  get currentVersion(): number {
    return this.version;
  }

  /** Changes were made since the last durable write. */
  get pending(): boolean {
    return this.changeSeq > this.persistedSeq;
  }

  /** Counts a change and queues the session for the next commit. */
  markDirty(): void {
    this.changeSeq += 1;
    this.host.committer.schedule(this.session);
  }

  /** Resolves once everything changed so far is durable; rejects if the run is lost or `signal` aborts. */
  persisted(signal?: AbortSignal): Promise<void> {
    const seq = this.changeSeq;
    if (seq <= this.persistedSeq) return Promise.resolve();
    return new Promise((resolve, reject) => {
      if (!signal) return void this.waiters.push({ seq, resolve, reject });
      // Taken off once the wait settles: a step waits here at every attempt and sleep, on one signal
      // (a listener each piled up: Node's MaxListenersExceededWarning past ten).
      const onAbort = () => reject(signal.reason);
      const off = () => signal.removeEventListener('abort', onAbort);
      this.waiters.push({
        seq,
        resolve: () => {
          off();
          resolve();
        },
        reject: (err: unknown) => {
          off();
          reject(err);
        },
      });
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** At the bound with a compaction in flight, a write that adds a row waits for it: the bound holds. */
  heldAtBound(): boolean {
    return this.compacting !== null && this.history.length > 0 && this.historyRows >= this.host.history.maxRows;
  }

  /** The write to send: `body` fenced by (run, owner, epoch, version) with the queued history; now in flight. */
  send(body: WriteBody): PreparedWrite {
    // Named one by one, not `...body`: the spread allocated ~700 bytes a write here, half of it after
    // (bench/README.md, seventeenth session).
    const write: RunWrite = {
      id: this.session.runId,
      expectedVersion: this.version,
      owner: this.host.owner,
      epoch: this.session.epoch,
      status: body.status,
      snapshot: body.snapshot,
      snapshotJson: body.snapshotJson,
      stateValue: body.stateValue,
      output: body.output,
      error: body.error,
      timers: body.timers,
      steps: body.steps,
      stepsDone: body.stepsDone,
      wakeAt: body.wakeAt,
      release: body.release,
      statusMessage: body.statusMessage,
      seenSignalSeq: body.seenSignalSeq,
      consumedSignals: body.consumedSignals,
      reportedSignals: body.reportedSignals,
      history: [...this.history],
    };
    this.inFlight = { releasing: body.release };
    return { write, seq: this.changeSeq };
  }

  /** The write is durable: take its version and row count, drop what it carried, wake its waiters. */
  committed(prepared: PreparedWrite, result: CommitResult): void {
    const { write } = prepared;
    this.historyRows = result.historyRows;
    if (write.history.length > 0 && result.historyRows >= this.compactionThreshold()) this.compact();
    this.version = result.version;
    this.history.splice(0, write.history.length);
    this.persistedSeq = prepared.seq;
    for (const w of this.waiters.filter((w) => w.seq <= prepared.seq)) w.resolve();
    this.waiters = this.waiters.filter((w) => w.seq > prepared.seq);
  }

  /** The session ended: no waiter's change will ever be durable by it. */
  abandon(reason: Error): void {
    for (const w of this.waiters.splice(0)) w.reject(reason);
  }

  /**
   * The run's row count (kept in the run's row by every statement that appends or folds history, so
   * it holds across eviction, hand-overs and workers) at which it is compacted: a little below the
   * bound, so the commits made while a compaction runs do not cross it.
   */
  private compactionThreshold(): number {
    const { maxRows, keepLast } = this.host.history;
    return maxRows - Math.min(32, Math.floor((maxRows - keepLast) / 4));
  }

  /**
   * A run in a long loop appends a history row per commit; near the bound, fold the oldest rows into
   * one summary. Off the hot path: it runs beside the run's commits, never blocks them.
   */
  private compact(): void {
    if (this.compacting) return;
    const runId = this.session.runId;
    this.compacting = compactHistory(this.host.db, runId, { keepLast: this.host.history.keepLast })
      .then((r) => {
        this.historyRows = Math.max(0, this.historyRows - r.deletedRows);
      })
      .catch((err: unknown) =>
        this.host.logger.warn({ err, runId }, `rmapp: compacting the history of run ${runId} failed: ${(err as Error).message}`),
      )
      .finally(() => {
        this.compacting = null;
        // Writes held back at the bound go now.
        if (!this.session.ended && this.hasMoreToWrite()) this.host.committer.schedule(this.session);
      });
  }
}
