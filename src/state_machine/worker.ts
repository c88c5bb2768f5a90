/**
 * A worker: claims runnable runs, holds their leases, and runs them as sessions. Postgres is the only
 * coordinator: `FOR UPDATE SKIP LOCKED` splits runs between workers, leases hand a dead worker's runs
 * to the others, LISTEN/NOTIFY wakes workers at once and polling covers lost notifications.
 *
 * Ownership (README, "One owner at a time"): a session is one claim of a run — (run id, owner, lease epoch) —
 * and every write it makes is fenced in SQL by that triple plus the version. This worker
 * - holds at most one session per run: claiming a run it still holds in memory ends the old session;
 * - judges a renewal only for the sessions it sent, per run;
 * - knows, per session, the latest time its lease can be trusted (the send time of the last renewal
 *   that held it, plus the lease) and ends the session a safety margin before that, whether or not the
 *   database answers (self-fencing), so no two workers execute one run at once by their own clocks.
 */
import type { HistoryBound } from '../persistence/retention.ts';
import { releaseRun, keepLease, type ClaimedRun } from '../persistence/claims.ts';
import type { Database } from '../persistence/database.ts';
import { WAKE_CHANNEL, markUnregisteredVersions, type NewRun } from '../persistence/runs.ts';
import type { RunRow } from '../persistence/row-types.ts';
import { COMMITS_IN_FLIGHT, Committer } from './committer.ts';
import { describeFailure } from './db-refusals.ts';
import { stoppedWhileStarting, WorkflowError } from './errors.ts';
import { InsertBatcher, type InsertResult } from './insert-batcher.ts';
import type { WorkflowDefinition } from './definition.ts';
import { toErrorData, type ErrorData } from './errors.ts';
import type { EngineEvents } from './events.ts';
import { resolveRetryPolicy, type RetryPolicy } from './retry-policy.ts';
import { RunSession } from './run-session.ts';
import { LeaseRenewals } from './lease-renewals.ts';
import { WorkerTakeover } from './worker-takeover.ts';
import { startLocalRun, type LocalStartHost } from './local-start.ts';
import { Semaphore } from './semaphore.ts';
import { ClaimLoop } from './claim-loop.ts';
import { forgetWorkerProcess } from '../persistence/worker-processes.ts';
import { sweepOwedCleanups } from './owed-cleanups.ts';
import type { Limits } from './limits.ts';
import type { Clock, SessionHost } from './session-host.ts';
import type { Logger } from '../persistence/logger.ts';

/** Tuning of a worker; every field has a default in `createEngine`. */
export interface WorkerOptions {
  /** Stable id given by the operator; `owner` is it plus a per-process suffix. */
  workerId: string;
  /** The operator set `workerId`: a restarted worker may take back its previous incarnation's runs. */
  explicitWorkerId: boolean;
  owner: string;
  concurrency: number;
  leaseMs: number;
  pollMs: number;
  evictAfterMs: number;
  retryPolicies: Record<string, Partial<RetryPolicy>>;
  clock: Clock;
  limits: Limits;
  history: HistoryBound;
  inspect?: ((event: import('xstate').InspectionEvent) => void) | undefined;
  /** Per worker: at most this many steps of a kind run at once (e.g. `{ agent: 2 }`). */
  stepConcurrency: Record<string, number>;
  /** Where background failures go (claims, renewals, commits, sessions); see `createEngine({ logger })`. */
  logger: Logger;
}

export class Worker implements SessionHost {
  readonly sessions = new Map<string, RunSession>();
  readonly committer: Committer;
  /** What a local start uses of this worker; its inserts are grouped while one is in flight (insert-batcher.ts). */
  private readonly localStarts: LocalStartHost;
  stopping = false;
  /** Aborted when the worker begins to stop: ends the waits for a step slot. */
  private readonly draining = new AbortController();
  /** The stop in progress or done (see {@link Worker.stop}). */
  private stopped: Promise<boolean> | null = null;
  /** A stop gave the runs up: a claim answered after that starts nothing. */
  private gaveUp = false;
  /** Claims runnable runs while the worker runs (claim-loop.ts). */
  private readonly claims: ClaimLoop;
  /** Renews the sessions' leases and fences them (lease-renewals.ts). */
  private readonly leases: LeaseRenewals;
  /** Looks for cleanups owed by cancelled runs (owed-cleanups.ts), every lease; null without a definition that has a cleanup. */
  private sweepTimer: NodeJS.Timeout | null = null;
  /** The sweep in progress: one at a time, and a graceful stop waits for it. */
  private sweeping: Promise<void> | null = null;
  private unlisten: (() => Promise<void>) | null = null;
  /** Take-overs at start and the locks of this worker's identity (worker-takeover.ts). */
  private readonly takeover: WorkerTakeover;
  private readonly definitions: [string, string][];
  /** Slots promised to runs being inserted by local starts. */
  private reserved = 0;
  /** `engine.waitFor` calls on runs held here, by run id (see {@link awaitFinish}). */
  private readonly finishWaiters = new Map<string, ((row: RunRow | null) => void)[]>();
  private readonly semaphores = new Map<string, Semaphore>();

  constructor(
    readonly db: Database,
    private readonly registry: Map<string, WorkflowDefinition>,
    readonly events: EngineEvents,
    private readonly options: WorkerOptions,
  ) {
    // Two batches in flight (committer.ts); commits retried within a quarter of the lease: a backoff
    // longer than the lease let leases expire after the database was back (a Postgres restart) while
    // writes waited to be sent again.
    this.committer = new Committer(db, COMMITS_IN_FLIGHT, options.logger, Math.max(50, Math.floor(options.leaseMs / 4)));
    this.takeover = new WorkerTakeover(db, options, options.owner, options.leaseMs, options.logger);
    const inserts = new InsertBatcher(db);
    this.localStarts = {
      db,
      owner: options.owner,
      leaseMs: options.leaseMs,
      events,
      inserts,
      startUnborn: (row, claimedAt) => (this.stopping || this.sessions.has(row.id) ? null : this.startSession(row, claimedAt, true)),
      poke: () => this.poke(),
    };
    this.leases = new LeaseRenewals(db, options.owner, options.leaseMs, options.logger, this.sessions);
    this.definitions = [...registry.values()].map((d) => [d.name, d.version]);
    this.claims = new ClaimLoop({
      db,
      owner: options.owner,
      leaseMs: options.leaseMs,
      pollMs: options.pollMs,
      events,
      clock: options.clock,
      logger: options.logger,
      definitions: this.definitions,
      keyed: [...registry.values()].some((d) => d.concurrency),
      isStopping: () => this.stopping,
      hasGivenUp: () => this.gaveUp,
      freeSlots: () => this.options.concurrency - this.sessions.size - this.reserved,
      startSession: (row, claimedAt) => this.startSession(row, claimedAt),
    });
    for (const [kind, n] of Object.entries(options.stepConcurrency)) this.semaphores.set(kind, new Semaphore(n));
  }

  /** Waits for a slot of the step kind's per-worker limit, if it has one; resolves to its release. */
  async acquireStepSlot(kind: string, signal: AbortSignal): Promise<() => void> {
    const semaphore = this.semaphores.get(kind);
    // A drain ends the wait at once: the step never began, and is left to the next owner
    // (step-execution.ts), instead of the drain waiting for it and then releasing it as started.
    return semaphore ? semaphore.acquire(AbortSignal.any([signal, this.draining.signal])) : () => {};
  }

  get owner(): string {
    return this.options.owner;
  }
  get leaseMs(): number {
    return this.options.leaseMs;
  }
  get evictAfterMs(): number {
    return this.options.evictAfterMs;
  }
  get clock(): Clock {
    return this.options.clock;
  }
  get limits(): Limits {
    return this.options.limits;
  }
  get inspect(): ((event: import('xstate').InspectionEvent) => void) | undefined {
    return this.options.inspect;
  }
  get stepConcurrency(): Record<string, number> {
    return this.options.stepConcurrency;
  }
  get history(): HistoryBound {
    return this.options.history;
  }
  get logger(): Logger {
    return this.options.logger;
  }

  retryPolicy(kind: string, override?: Partial<RetryPolicy>): RetryPolicy {
    return resolveRetryPolicy(this.options.retryPolicies[kind], override);
  }

  toError(err: unknown): ErrorData {
    return toErrorData(err);
  }

  releaseRun(runId: string, version: number): Promise<boolean> {
    return releaseRun(this.db, { owner: this.owner, runId, version });
  }

  keepLease(runId: string, version: number): Promise<boolean> {
    return keepLease(this.db, { owner: this.owner, runId, version });
  }

  sessionEnded(session: { runId: string; concurrencyKey?: string | null; finalRow?: RunRow | null }, wakeNow: boolean): void {
    const waiters = this.finishWaiters.get(session.runId);
    if (waiters && this.sessions.get(session.runId) === session) {
      this.finishWaiters.delete(session.runId);
      for (const resolve of waiters) resolve(session.finalRow ?? null);
    }
    // A keyed run that ends frees a slot: admit the next queued run of its key now.
    if (session.concurrencyKey) {
      this.claims.keyFreed(session.concurrencyKey);
      wakeNow = true;
    }
    if (this.sessions.get(session.runId) === session) this.sessions.delete(session.runId);
    // Only a pass of the claim loop that found no free slot may have left runnable runs unclaimed;
    // otherwise starts, signals and due timers wake the loop. Poking on every run that ended while the
    // worker was full cost a claim and a next-wake read per ~10 runs at concurrency 50, when the
    // workload keeps the worker full with its own starts (bench/README.md, seventh session).
    if (wakeNow || (this.claims.missedRunsWhileFull() && !this.stopping)) this.poke();
  }

  /**
   * Warns of the unfinished runs this worker does not register at its start: they wait untouched for a
   * worker that does. A worker started without the user's `--workflows` module said nothing of them, only
   * `runs show` did (test/pk-worker-says-unregistered.test.ts).
   */
  private sayUnregistered(marked: { id: string; definition: string }[]): void {
    if (marked.length === 0) return;
    const definitions = [...new Set(marked.map((m) => m.definition))].sort();
    this.logger.warn(
      { runs: marked.length, definitions },
      `${marked.length} unfinished run(s) of definitions this worker does not register (${definitions.join(', ')}) wait untouched ` +
        'until a worker that registers them claims them (the --workflows module that started them; `rmapp versions check` lists them)',
    );
  }

  /** Starts claiming. Resolves once the worker listens for wake-ups. */
  async start(): Promise<void> {
    // The three are independent, each on its own connection, and all done before the first claim: sent
    // together they cost a restarted worker one round trip instead of three before it recovers runs.
    const [listened, ...rest] = await Promise.allSettled([
      this.db.listen(WAKE_CHANNEL, (runId) => this.onWake(runId), { onReconnect: () => this.onMissedWakes() }),
      markUnregisteredVersions(this.db, this.definitions, this.owner).then((marked) => this.sayUnregistered(marked)),
      // Only with an id the operator chose (and promised unique): the default host:pid is shared by every
      // engine in one process, which would then take each other's live runs.
      this.options.explicitWorkerId ? this.takeover.takeOverPreviousIncarnation() : null,
      this.takeover.takeOverDeadProcess(),
    ]);
    // Kept even when another part failed, so that stopping the worker stops listening.
    if (listened.status === 'fulfilled') this.unlisten = listened.value;
    const failed = [listened, ...rest].find((r) => r.status === 'rejected');
    // Failed, or stopped meanwhile (the stop ran before the lock was taken): the worker id's lock goes.
    if (failed || this.stopping) await this.takeover.releaseWorkerLock();
    if (failed) throw failed.reason;
    // Stopped meanwhile: arm nothing (the stop has run; timers armed now would outlive it).
    if (this.stopping) {
      await this.unlisten?.().catch(() => {});
      throw stoppedWhileStarting();
    }
    this.leases.arm();
    this.claims.start();
    // Every lease: a cleanup left owed by a process that died (or never learnt its cancellation's outcome)
    // runs within the bound in which such a process's runs are resumed. At start too: a worker restarted
    // after a crash runs what its own cancels left. Whatever it registers: a cancel from a process without
    // a run's version marks it owed, and a version without a cleanup has its marks cleared here.
    this.sweepTimer = setInterval(() => this.sweepOwed(), this.leaseMs);
    this.sweepOwed();
  }

  /** Starts a sweep of owed cleanups unless one is running (owed-cleanups.ts); its failure is logged and the next one tries again. */
  private sweepOwed(): void {
    if (this.sweeping || this.stopping) return;
    // Its cleanup leases named after this worker's owner: a restart under its id takes them back (previous-incarnations.ts).
    const history = { worker: this.options.workerId, logger: this.logger, leaseMs: this.leaseMs, leaseOwner: this.owner };
    this.sweeping = sweepOwedCleanups(this.db, this.registry, history, () => this.stopping)
      .then(
        () => {},
        (err: unknown) => {
          const { level, message } = describeFailure(`worker ${this.owner} could not run the cleanups owed by cancelled runs`, err);
          this.logger[level]({ err, owner: this.owner }, message);
        },
      )
      .finally(() => {
        this.sweeping = null;
      });
  }

  /** A run has something to do now (a start, a signal, a release): claim it or deliver to it. */
  onWake(runId: string): void {
    const session = this.sessions.get(runId);
    if (session) void session.pullSignals();
    else {
      // It may be a run this worker is claiming right now, whose claim read its inbox before the
      // signal came: its session will read the inbox once it starts.
      this.claims.woken(runId);
    }
  }

  /**
   * The LISTEN connection was made again after it was lost: starts, signals and releases announced
   * meanwhile were not heard. The claim loop runs now rather than at its next poll (`pollMs`: a run
   * started then waited up to that long). A held run's missed signal comes with its next renewal,
   * which reports every held run with signals unread.
   */
  private onMissedWakes(): void {
    if (!this.stopping) this.poke();
  }

  /** Wakes the claim loop: a run may have become runnable (a start, a signal, a run given back). */
  poke(): void {
    this.claims.poke();
  }

  /**
   * Reserves a slot for a run of `def` started in this process, to claim it at insert time. The slot
   * is taken synchronously, so concurrent starts cannot overshoot the worker's concurrency; it passes
   * to the run's session in {@link startLocal}.
   */
  reserveFor(def: WorkflowDefinition): boolean {
    if (this.stopping || this.sessions.size + this.reserved >= this.options.concurrency) return false;
    if (this.registry.get(`${def.name}@${def.version}`) !== def) return false;
    this.reserved += 1;
    return true;
  }

  /**
   * Starts a run of `definition` in this worker before it exists in the database, with a slot from
   * {@link reserveFor} (local-start.ts `startLocalRun`).
   */
  startLocal(definition: WorkflowDefinition, run: Omit<NewRun, 'claimFor'>): Promise<InsertResult> {
    this.reserved -= 1;
    return startLocalRun(this.localStarts, definition, run);
  }

  /**
   * For `engine.waitFor`: a promise of the run's final row if a session of it runs here (null when the
   * session leaves without finishing it: evicted to wait, lost, handed over), else null. A run this
   * process executes is awaited from its own commits, not by reading it again and again.
   */
  awaitFinish(runId: string): Promise<RunRow | null> | null {
    if (!this.sessions.has(runId)) return null;
    return new Promise((resolve) => {
      const list = this.finishWaiters.get(runId);
      if (list) list.push(resolve);
      else this.finishWaiters.set(runId, [resolve]);
    });
  }

  private startSession(row: ClaimedRun, claimedAt: number, unborn = false): RunSession | null {
    const definition = this.registry.get(`${row.workflow}@${row.workflowVersion}`);
    if (!definition) return null; // cannot happen: claims filter on registered definitions
    // Claimed again while an older session of it is still here (its lease expired during an outage):
    // the old one stops first — its steps are aborted, its unpersisted changes dropped.
    const previous = this.sessions.get(row.id);
    if (previous) previous.lose('reclaimed');
    const session = new RunSession(this, row, definition, { unborn });
    session.leaseValidUntil = claimedAt + this.leaseMs;
    this.sessions.set(row.id, session);
    try {
      session.start();
    } catch (err) {
      this.logger.error({ err, runId: row.id }, `rmapp: starting run ${row.id} failed`);
      session.end(false);
    }
    return session;
  }

  /** See lease-renewals.ts `LeaseRenewals.confirmLease`. */
  confirmLease(session: Parameters<LeaseRenewals['confirmLease']>[0]): Promise<boolean> {
    return this.leases.confirmLease(session);
  }

  /** See lease-renewals.ts `LeaseRenewals.leaseTrusted`. */
  leaseTrusted(session: { leaseValidUntil: number }): boolean {
    return this.leases.leaseTrusted(session);
  }

  /**
   * Stops at once as a killed process would: nothing more is written or released, every actor stops,
   * the leases stay until they expire. For crash tests (`rmapp/testing`).
   */
  kill(): void {
    this.stopping = true;
    this.claims.interrupt();
    this.leases.disarm();
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    void this.unlisten?.().catch(() => {});
    // As a killed process's connection would.
    void this.takeover.releaseWorkerLock();
    for (const session of [...this.sessions.values()]) session.end(false);
    this.sessions.clear();
  }

  /**
   * The stop did not finish within its bound: the runs still held are given up as a killed process
   * would give them up (nothing more is sent; the leases expire and the next worker resumes each run
   * from its last durable state), and the operator is told which runs and why.
   */
  private abandonUnwritten(elapsedMs: number): void {
    this.gaveUp = true;
    const runs = [...this.sessions.keys()];
    if (runs.length === 0) {
      this.logger.warn(
        { owner: this.owner },
        `rmapp: worker ${this.owner} gave up its stop after ${Math.round(elapsedMs)} ms waiting for the database; it held no run.`,
      );
      return;
    }
    this.logger.error(
      { owner: this.owner, runs },
      `rmapp: worker ${this.owner} gave up its stop after ${Math.round(elapsedMs)} ms: its last statements did not ` +
        `finish in time (the database refusing, unreachable, slow or holding them on a lock; see the warnings or errors ` +
        `above). ${runs.length} run(s) still held — their latest ` +
        'changes or the release of their lease not written — stay leased until their leases expire; then any worker ' +
        'resumes them from their last durable state.',
    );
    this.committer.abandon();
    for (const session of [...this.sessions.values()]) session.end(false);
    this.sessions.clear();
  }

  /**
   * Graceful stop: claim nothing more, let steps that are running finish within `graceMs` (no new
   * step starts), persist, and give every lease back so another worker can continue at once. The
   * database may be down, refuse rmapp's writes, or hold a statement on a lock for ever: all of it is
   * bounded by {@link stopBoundMs}, after which the runs still held are given up as a crash would
   * leave them. Resolves true when it gave runs up (the caller then closes the database by force: a
   * statement may still be waiting). A second call returns the first one's promise.
   */
  stop(graceMs: number): Promise<boolean> {
    if (this.stopped) return this.stopped;
    // Killed (a simulated crash): nothing is left to write or release.
    if (this.stopping) return Promise.resolve(false);
    this.stopped = this.stopWithin(graceMs);
    return this.stopped;
  }

  private async stopWithin(graceMs: number): Promise<boolean> {
    const startedAt = performance.now();
    this.stopping = true;
    this.draining.abort(new WorkflowError('The worker is stopping.', { code: 'WORKER_STOPPING', category: 'cancelled' }));
    this.claims.interrupt();
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    const graceful = (async () => {
      await this.claims.done;
      const graceEnd = Date.now() + graceMs;
      // A cancelled run's cleanup running is work as a step's is (session-release.ts `releaseAfterCleanup`).
      while (Date.now() < graceEnd && [...this.sessions.values()].some((s) => s.executing.size > 0 || s.cleaningUp)) {
        await new Promise((r) => setTimeout(r, 20));
      }
      // A step whose function still runs is aborted and given half of what the bound leaves after the grace
      // to return — at most a quarter of the lease, which its ended session no longer renews (a fourth pass).
      const callsMs = Math.min(Math.max(graceMs, this.leaseMs / 2, 1_000) / 2, this.leaseMs / 4);
      await Promise.all([...this.sessions.values()].map((s) => s.release(callsMs)));
      await this.committer.idle();
      // A cleanup being run finishes (the sweep starts no other) before the LISTEN connection, which holds
      // its lock, goes; meanwhile the running steps had their grace. Cut off by the stop's bound, it stays
      // owed and runs again.
      await this.sweeping;
      await this.unlisten?.().catch(() => {});
      // Its record (previous-incarnations.ts) is of no use once its leases are released.
      if (this.options.explicitWorkerId) await forgetWorkerProcess(this.db, this.owner).catch(() => {});
      await this.takeover.releaseWorkerLock();
    })();
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      graceful.then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), stopBoundMs(graceMs, this.leaseMs)))),
    ]);
    clearTimeout(timer);
    if (!finished) this.abandonUnwritten(performance.now() - startedAt);
    this.leases.disarm();
    return !finished;
  }
}

/**
 * The longest a graceful stop takes: the grace for running steps, then at least as long again — and at
 * least half a lease, at least a second — for the last writes and releases (a commit sent again after a
 * brief outage backs off up to a quarter of the lease, committer.ts).
 */
export function stopBoundMs(graceMs: number, leaseMs: number): number {
  // Node fires a delay past 2^31 - 1 ms after 1 ms: the longest grace (what `--grace-ms` takes) overflowed it.
  return Math.min(graceMs + Math.max(graceMs, leaseMs / 2, 1_000), MAX_TIMER_MS);
}

/** The longest delay Node's timers hold. */
const MAX_TIMER_MS = 2 ** 31 - 1;
