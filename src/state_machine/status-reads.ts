/**
 * `waitFor`'s reads of a run's status while it waits, made together. A run that has left this process
 * (it waits for a signal, or another worker executes it) is read every `pollMs`; with one statement per
 * waiting caller, 3,000 callers each polling every 200 ms sent 15,000 statements a second, took every
 * connection of the pool from the worker, and the runs they waited for took 565 s to finish instead of
 * a few (bench/many-waits.ts). Here every read asked for in one turn of the event loop is one statement
 * (5,000 ids at most), and callers poll on the same beats of the clock so that their reads meet.
 */
import type { Queryable } from '../persistence/database.ts';
import type { RunStatus } from '../persistence/run-status.ts';
import { couldBeRunId, getRunStatuses } from '../persistence/runs.ts';

/** The most run ids one statement reads. */
const BATCH_IDS = 5_000;

interface Asked {
  runId: string;
  /** Epoch ms by which the statement must answer. */
  until: number;
  /** The engine's stop for the wait that asked: a read asked before a stop is not made after it. */
  stopped: AbortSignal;
  resolve(status: RunStatus | null): void;
  reject(err: unknown): void;
}

/**
 * Reads of run statuses, batched per turn of the event loop.
 *
 * @example
 * const reads = new StatusReads(() => engine.db(), (until) => until - Date.now());
 * const status = await reads.read(runId, Date.now() + 5_000, stopSignal); // null: no such run
 */
export class StatusReads {
  private asked: Asked[] = [];

  /**
   * @param db - the database, opened on first use
   * @param timeoutFor - the statement timeout for a batch whose latest caller needs an answer by `until`
   */
  constructor(
    private readonly db: () => Promise<Queryable>,
    private readonly timeoutFor: (until: number) => number,
  ) {}

  /** The run's status, or null when it does not exist; read with the other reads asked for in this turn. */
  read(runId: string, until: number, stopped: AbortSignal): Promise<RunStatus | null> {
    // No run has such an id, and the database would refuse the whole batch for it.
    if (!couldBeRunId(runId)) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      if (this.asked.length === 0) setImmediate(() => this.flush());
      this.asked.push({ runId, until, stopped, resolve, reject });
    });
  }

  private flush(): void {
    const asked = this.asked;
    this.asked = [];
    for (let i = 0; i < asked.length; i += BATCH_IDS) void this.readBatch(asked.slice(i, i + BATCH_IDS));
  }

  private async readBatch(all: Asked[]): Promise<void> {
    // Asked before a stop that has begun since: the wait has ended, and a read now would open the
    // database the stop closed.
    const asked = all.filter((a) => !a.stopped.aborted);
    for (const a of all) if (a.stopped.aborted) a.reject(a.stopped.reason);
    if (asked.length === 0) return;
    try {
      let until = 0;
      for (const a of asked) until = Math.max(until, a.until);
      const db = await this.db();
      const statuses = await getRunStatuses(db, [...new Set(asked.map((a) => a.runId))], { timeoutMs: this.timeoutFor(until) });
      for (const a of asked) a.resolve(statuses.get(a.runId) ?? null);
    } catch (err) {
      // A value the database refused (SQLSTATE class 22: one caller's id, say): each read alone, so
      // that only its caller gets it.
      const ids = new Set(asked.map((a) => a.runId));
      if (ids.size > 1 && /^22[0-9A-Z]{3}$/.test(String((err as { code?: unknown } | null)?.code))) {
        for (const a of asked) void this.readBatch([a]);
        return;
      }
      for (const a of asked) a.reject(err);
    }
  }
}

/**
 * How long to pause before the next poll: until the next multiple of `pollMs` on the wall clock, so
 * that callers polling at the same rate read in the same turn (and share a statement).
 */
export function untilNextBeat(pollMs: number, now = Date.now()): number {
  return pollMs - (now % pollMs);
}
