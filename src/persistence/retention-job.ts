/**
 * A background job applying retention periodically, for a worker process that runs for months:
 * prunes finished runs ({@link pruneRuns}) and compacts long histories ({@link compactLongHistories}).
 */
import type { Queryable } from './database.ts';
import { silentLogger, type Logger } from './logger.ts';
import { countsByFinalStatus } from './run-status.ts';
import {
  compactLongHistories,
  pruneRuns,
  type HistoryBound,
  type PruneResult,
  type PruneStore,
  type RetentionPolicy,
} from './retention.ts';

/** Options of {@link startRetentionJob}. */
export interface RetentionJobOptions {
  policy: RetentionPolicy;
  /** Time between the starts of two passes. The first pass starts after one interval. */
  intervalMs: number;
  /** The history bound runs are compacted to (the engine's `history` option). */
  history: HistoryBound;
  /** Runs deleted per statement (see {@link pruneRuns}). */
  batchSize?: number | undefined;
  /** Where failures of scheduled passes go; default: {@link RetentionJobOptions.logger}. */
  onError?: ((err: unknown) => void) | undefined;
  /** Receives a scheduled pass's failure as one error line, when `onError` is not given. Default: silent. */
  logger?: Logger | undefined;
}

/** What one pass did. */
export interface RetentionPassResult {
  pruned: PruneResult;
  /** Runs whose history was compacted. */
  compactedRuns: number;
}

/** A started retention job. */
export interface RetentionJob {
  /** Stops scheduling, ends a running pass at its next batch boundary and waits for it. */
  stop(): Promise<void>;
  /**
   * Runs a pass now. While a pass is running, returns that pass instead of starting another.
   * Rejects with the pass's error (an `AggregateError` if pruning and compaction both failed).
   */
  runOnce(): Promise<RetentionPassResult>;
}

/** One line per failed pass: the first line of its message (an `AggregateError` names both failures). */
const logTo = (logger: Logger) => (err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  logger.error({ err }, `rmapp retention: pass failed: ${message.split('\n')[0]}`);
};

/**
 * Starts pruning and compacting every `intervalMs`, so a long-lived deployment keeps its tables
 * bounded without a cron. Passes never overlap: a tick that finds the previous pass still running is
 * skipped. Scheduled passes report failures through `onError` and the job carries on (the next pass
 * retries); a pruning failure does not prevent compaction. The timer is `unref`'d: the job alone
 * does not keep the process alive.
 */
export function startRetentionJob(db: Queryable & PruneStore, options: RetentionJobOptions): RetentionJob {
  const { intervalMs } = options;
  if (!Number.isFinite(intervalMs) || intervalMs <= 0) throw new Error(`intervalMs must be a positive number (got ${intervalMs}).`);
  if (options.history.maxRows <= options.history.keepLast) {
    throw new Error(
      `history.maxRows must be greater than history.keepLast (got ${options.history.maxRows} and ${options.history.keepLast}).`,
    );
  }
  const onError = options.onError ?? logTo(options.logger ?? silentLogger);
  const abort = new AbortController();
  let running: Promise<RetentionPassResult> | undefined;

  async function pass(): Promise<RetentionPassResult> {
    const signal = abort.signal;
    const errors: unknown[] = [];
    let pruned: PruneResult = { runs: 0, historyRows: 0, signals: 0, artifacts: 0, byStatus: countsByFinalStatus() };
    let compactedRuns = 0;
    try {
      pruned = await pruneRuns(db, options.policy, { batchSize: options.batchSize, signal });
    } catch (err) {
      errors.push(err);
    }
    try {
      if (!signal.aborted) {
        compactedRuns = await compactLongHistories(db, { ...options.history, signal });
      }
    } catch (err) {
      errors.push(err);
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1)
      throw new AggregateError(errors, `pruning and compaction both failed: ${errors.map((e) => (e as Error)?.message).join('; ')}`);
    return { pruned, compactedRuns };
  }

  function runOnce(): Promise<RetentionPassResult> {
    if (abort.signal.aborted) return Promise.reject(new Error('The retention job is stopped.'));
    if (running) return running;
    const current = pass().finally(() => {
      if (running === current) running = undefined;
    });
    running = current;
    return current;
  }

  const timer = setInterval(() => {
    if (running) return; // the previous pass is still going: skip this tick
    runOnce().catch(onError);
  }, intervalMs);
  timer.unref();

  return {
    runOnce,
    async stop() {
      clearInterval(timer);
      abort.abort();
      await running?.catch(() => {});
    },
  };
}
