/**
 * The engine's options, their defaults and their checks, in one place: {@link DEFAULT_ENGINE_OPTIONS}
 * is the only statement of a default, and {@link resolveEngineOptions} merges and checks options once,
 * when the engine is created, with a message naming the fix.
 */
import { hostname } from 'node:os';
import type { InspectionEvent } from 'xstate';
import type { Database, OpenDatabaseOptions } from '../persistence/database.ts';
import { silentLogger, type Logger } from '../persistence/logger.ts';
import type { HistoryBound, RetentionPolicy } from '../persistence/retention.ts';
import type { AnyWorkflowDefinition } from './definition.ts';
import { ValidationError } from './errors.ts';
import { DEFAULT_LIMITS, resolveLimits, type Limits } from './limits.ts';
import type { RetryPolicy } from './retry-policy.ts';
import { systemClock, type Clock } from './clock.ts';

/** Options of {@link createEngine}. */
export interface EngineOptions {
  /** An open database, a connection string, or options for {@link openDatabase}. Default: `DATABASE_URL`, else PGlite under `.rmapp/`. */
  database?: Database | string | OpenDatabaseOptions | undefined;
  workflows: readonly AnyWorkflowDefinition[];
  /**
   * Older versions of workflows, kept so that runs started on them finish on them (a run never changes
   * version). They resume runs but never start new ones: `start` always uses the version in `workflows`.
   * Keep a version here until `rmapp versions check` shows no run needs it.
   */
  previousVersions?: readonly AnyWorkflowDefinition[] | undefined;
  /**
   * Names this worker in leases and history; a random suffix makes each process unique. Default:
   * host:pid. Give a stable id (unique among live workers) and a restarted worker takes back the runs
   * its previous incarnation held at once instead of waiting for their leases to expire.
   */
  workerId?: string | undefined;
  /** Runs this worker holds in memory and executes at once. Default 50. */
  concurrency?: number | undefined;
  /** Lease length; a dead worker's runs are taken over this long after its last renewal. Default 30 s. */
  leaseMs?: number | undefined;
  /** Fallback polling interval when no notification arrives. Default 1 s. */
  pollMs?: number | undefined;
  /** A run that only waits for longer than this leaves memory. Default 1 s. */
  evictAfterMs?: number | undefined;
  /** Retry policies by step kind (a step's `kind`, else its invoke `src` name). */
  retryPolicies?: Record<string, Partial<RetryPolicy>> | undefined;
  /** Applies migrations on first use (default true). */
  migrate?: boolean | undefined;
  clock?: Clock | undefined;
  /** Size limits (snapshot, step output, signal, artifact); see {@link Limits} for the defaults. */
  limits?: Partial<Limits> | undefined;
  /**
   * The history bound: a long-running run's history is compacted once it has more than `maxRows` rows
   * (one row per commit), keeping the newest `keepLast` and one summary row. Default 2,000 / 1,000; with
   * only `maxRows` given, `keepLast` is at most half of it.
   */
  history?: Partial<HistoryBound> | undefined;
  /**
   * Periodic pruning of finished runs by age and status, run by the worker (off unless given; the
   * `rmapp worker` command turns it on with {@link DEFAULT_RETENTION}). Default interval 15 min.
   */
  retention?: { policy?: Partial<RetentionPolicy>; intervalMs?: number } | undefined;
  /**
   * Receives the inspection events of every run this worker executes, e.g. a Stately Inspector's
   * `inspector.inspect.next` (see `rmapp serve --inspect`). Mask secrets before they leave the process.
   */
  inspect?: ((event: InspectionEvent) => void) | undefined;
  /**
   * Per worker: at most this many steps of a kind working at once, e.g. `{ agent: 2 }` (kind: a step's
   * `kind`, else its `src`). A step parked in `ctx.sleep` holds no slot: it waits for one at its wake.
   */
  stepConcurrency?: Record<string, number> | undefined;
  /**
   * Where the engine reports failures no caller is waiting for (a commit sent again, a lost lease, a
   * listener that threw). pino-compatible (`logger.warn(fields, message)`); default: silent. The CLI
   * and the service pass their pino logger.
   */
  logger?: Logger | undefined;
}

/** The shortest lease a worker may hold runs with (see {@link resolveEngineOptions}). */
export const MIN_LEASE_MS = 500;

/** Signals buffered with `send(…, { buffer: true })` wait this long for a state that accepts them. */
export const DEFAULT_BUFFER_MS = 24 * 60 * 60 * 1000;

/**
 * Every default of the engine's options (README "Configuration"). The CLI and the service start from
 * these too, so a default is stated once.
 */
export const DEFAULT_ENGINE_OPTIONS = Object.freeze({
  concurrency: 50,
  leaseMs: 30_000,
  pollMs: 1_000,
  evictAfterMs: 1_000,
  migrate: true,
  history: Object.freeze({ maxRows: 2_000, keepLast: 1_000 }) as Readonly<HistoryBound>,
  retentionIntervalMs: 15 * 60_000,
  /** How long `engine.stop()` lets running steps finish before it gives their runs up. */
  stopGraceMs: 10_000,
  signalBufferMs: DEFAULT_BUFFER_MS,
  limits: DEFAULT_LIMITS,
  clock: systemClock as Clock,
  logger: silentLogger as Logger,
});

/**
 * The deadline of an engine's statements, from the call to the answer — a wait for a pooled connection
 * included — past which a statement fails (QUERY_TIMEOUT, transient) and its connection is dropped
 * (`withStatementTimeout`, persistence/database.ts): a quarter of the lease, so that on connections gone
 * silent a worker's renewal fails and is made again on a new connection while the lease still holds; at
 * least 5 s, which no healthy statement of an engine comes near (a commit of a batch of hundreds of runs,
 * a claim of 100 from a 100,000-run backlog, a list of 1,000,000 runs: milliseconds, bench/README.md),
 * so a short lease does not cut slow ones under load — but never more than half the lease, or 2.5 s
 * when that is longer (below). An answer
 * later than that is of no use to the worker (it has fenced itself from its runs a fifth of the lease
 * before the lease ends), and a worker cut off from Postgres by a partition must notice within its lease:
 * with the 5 s floor alone, a worker with a 3 s lease first heard of a partition 5 s in, after its runs
 * had been taken over (test/partition-heal.test.ts). Not under 2.5 s, though: at half of a 2 s lease (1 s)
 * a lock wait behind a migration's table swap, or a worker's statements on a machine loaded by a test
 * suite, failed healthy statements and fenced healthy workers (test/adv3-migrate-race.test.ts,
 * test/scale-out.test.ts in a clean-clone run). Default lease (30 s): 7.5 s; 10 s: 5 s; 3 s and 2 s: 2.5 s.
 * The engine's API calls get it too: they share the pool with its worker, and calls held on silent
 * connections filled it.
 *
 * @example
 * statementTimeoutMs(30_000); // 7_500
 * statementTimeoutMs(3_000); // 2_500
 */
export function statementTimeoutMs(leaseMs: number): number {
  return Math.min(Math.max(2_500, Math.floor(leaseMs / 2)), Math.max(5_000, Math.floor(leaseMs / 4)));
}

/** Options with every default applied: what the engine and its worker read. */
export interface ResolvedEngineOptions {
  workerId: string;
  /** The operator chose `workerId` (see `expirePreviousIncarnation` in persistence/claims.ts). */
  explicitWorkerId: boolean;
  concurrency: number;
  leaseMs: number;
  /** {@link statementTimeoutMs} of the lease. */
  statementTimeoutMs: number;
  pollMs: number;
  evictAfterMs: number;
  migrate: boolean;
  history: HistoryBound;
  retention: { policy: Partial<RetentionPolicy>; intervalMs: number } | null;
  retryPolicies: Record<string, Partial<RetryPolicy>>;
  stepConcurrency: Record<string, number>;
  limits: Limits;
  clock: Clock;
  logger: Logger;
  inspect: ((event: InspectionEvent) => void) | undefined;
}

/**
 * Applies {@link DEFAULT_ENGINE_OPTIONS} and checks the result.
 *
 * @throws ValidationError naming the option and the fix.
 */
export function resolveEngineOptions(options: EngineOptions): ResolvedEngineOptions {
  const d = DEFAULT_ENGINE_OPTIONS;
  const limits = resolveLimits(options.limits);
  const given = options.history ?? {};
  const maxRows = given.maxRows ?? d.history.maxRows;
  // A compaction leaves keepLast rows and a summary, so it must leave at least one row of room.
  if (given.keepLast !== undefined && !(given.keepLast <= maxRows - 2)) {
    throw new ValidationError(`createEngine: history.keepLast (${given.keepLast}) must be at most history.maxRows - 2 (${maxRows - 2}).`);
  }
  if (given.maxRows !== undefined && given.maxRows < 3)
    throw new ValidationError(`createEngine: history.maxRows must be at least 3 (got ${given.maxRows}).`);
  // Renewed every third of the lease and trusted up to a fifth before it ends: below half a second a
  // renewal's own round trip under load eats the lease, and runs cycle between owners until their
  // steps fail as never finished.
  if (options.leaseMs !== undefined && options.leaseMs < MIN_LEASE_MS) {
    throw new ValidationError(
      `createEngine: leaseMs must be at least ${MIN_LEASE_MS} (got ${options.leaseMs}); the default is ${d.leaseMs}.`,
    );
  }
  for (const [name, value] of Object.entries({
    concurrency: options.concurrency,
    leaseMs: options.leaseMs,
    pollMs: options.pollMs,
    'history.maxRows': given.maxRows,
    'history.keepLast': given.keepLast,
  })) {
    if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
      throw new ValidationError(`createEngine: ${name} must be a positive number (got ${String(value)}).`);
    }
  }
  // It names the worker in every lease and history row: an empty one names no one, and one of 5,000
  // characters was copied into each row the worker wrote; control characters reach operators' terminals.
  if (options.workerId !== undefined && !/^[\x21-\x7e\u00a0-\ud7ff\ue000-\uffff\u{10000}-\u{10ffff}]{1,128}$/u.test(options.workerId)) {
    throw new ValidationError(
      `createEngine: workerId must be 1 to 128 visible characters without spaces (got ${JSON.stringify(options.workerId.slice(0, 40))}${options.workerId.length > 40 ? '…' : ''}, ${options.workerId.length} characters).`,
    );
  }
  const keepLast = given.keepLast ?? Math.min(d.history.keepLast, Math.floor((maxRows - 1) / 2));
  return {
    workerId: options.workerId ?? `${hostname()}:${process.pid}`,
    explicitWorkerId: options.workerId !== undefined,
    concurrency: options.concurrency ?? d.concurrency,
    leaseMs: options.leaseMs ?? d.leaseMs,
    statementTimeoutMs: statementTimeoutMs(options.leaseMs ?? d.leaseMs),
    pollMs: options.pollMs ?? d.pollMs,
    evictAfterMs: options.evictAfterMs ?? d.evictAfterMs,
    migrate: options.migrate ?? d.migrate,
    history: { maxRows, keepLast },
    retention: options.retention
      ? { policy: options.retention.policy ?? {}, intervalMs: options.retention.intervalMs ?? d.retentionIntervalMs }
      : null,
    retryPolicies: options.retryPolicies ?? {},
    stepConcurrency: options.stepConcurrency ?? {},
    limits,
    clock: options.clock ?? d.clock,
    logger: options.logger ?? d.logger,
    inspect: options.inspect,
  };
}
