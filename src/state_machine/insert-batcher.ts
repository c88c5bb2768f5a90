/**
 * Group insert of locally started runs (local-start.ts `startLocalRun`), as the committer groups commits: a
 * start while no insert is in flight is sent at once, alone (the latency of a lone start is unchanged);
 * starts that arrive while one is in flight wait for it and then go together, in one statement. At
 * concurrency 50 the benchmark's starts were one statement and one transaction each, ~1 of its 1.35
 * statements per workflow (bench/README.md).
 *
 * A batch is one transaction: when Postgres refuses it for one run — an id or idempotency key that
 * exists (a start that must return the existing run), a value it cannot store — nothing of it was
 * written, and each run is inserted again alone, so each start gets its own answer. So too when Postgres
 * aborts the batch as a deadlock's victim: a batch inserts its runs in id order, but their idempotency
 * keys fall in any order, so two processes' batches sharing two keys can each hold one the other waits
 * for (test/lk-insert-batch-deadlock.test.ts); a lone insert takes one entry per index and cannot close
 * such a cycle. A lost connection fails every start of the batch, as it fails a lone start.
 */
import type { Queryable } from '../persistence/database.ts';
import { insertClaimedRuns, type ClaimedNewRun } from '../persistence/run-inserts.ts';
import { insertRun } from '../persistence/runs.ts';
import { VICTIM_SQLSTATES } from './errors.ts';

/** What inserting a run reports (persistence/runs.ts `insertRun`). */
export type InsertResult = Awaited<ReturnType<typeof insertRun>>;
type Waiting = { run: ClaimedNewRun; resolve: (r: InsertResult) => void; reject: (err: unknown) => void };

/** The statement failed for a run's data or keys (SQLSTATE classes 22, 23, 54), not for the database. */
function refusedForARun(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(22|23|54)[0-9A-Z]{3}$/.test(code);
}

/**
 * Postgres aborted the batch to break a deadlock (or a serialization conflict): it wrote nothing, and
 * its runs inserted alone meet no such cycle (see the module's comment).
 */
function abortedAsVictim(err: unknown): boolean {
  return VICTIM_SQLSTATES.has(String((err as { code?: unknown } | null)?.code));
}

export class InsertBatcher {
  private queue: Waiting[] = [];
  private inFlight = false;

  constructor(private readonly db: Queryable) {}

  /** Inserts a run already claimed and past its first macrostep (runs.ts `insertRun` with `claimFor`). */
  insert(run: ClaimedNewRun): Promise<InsertResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ run, resolve, reject });
      if (!this.inFlight) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      this.inFlight = true;
      try {
        await this.send(batch);
      } finally {
        this.inFlight = false;
      }
    }
  }

  private async send(batch: Waiting[]): Promise<void> {
    if (batch.length === 1) return this.alone(batch[0] as Waiting);
    let claimed;
    try {
      claimed = await insertClaimedRuns(
        this.db,
        batch.map((b) => b.run),
      );
    } catch (err) {
      if (refusedForARun(err) || abortedAsVictim(err)) {
        await Promise.all(batch.map((b) => this.alone(b)));
        return;
      }
      for (const b of batch) b.reject(err);
      return;
    }
    batch.forEach((b, i) => {
      const c = claimed[i];
      b.resolve(c ? { id: b.run.id, created: true, claimed: c } : { id: b.run.id, created: false, parentGone: true });
    });
  }

  private async alone(b: Waiting): Promise<void> {
    try {
      b.resolve(await insertRun(this.db, b.run));
    } catch (err) {
      b.reject(err);
    }
  }
}
