/**
 * The Drizzle schema: the single source of truth for the tables; `drizzle-kit generate` turns it
 * into the SQL in `migrations/`. Hot-path statements (claim, commit) are hand-written SQL in
 * `src/persistence/*.ts` against these same tables.
 */
import { sql } from 'drizzle-orm';
import {
  bigserial,
  boolean,
  check,
  index,
  integer,
  json,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';

import { type RunStatus } from './run-status.ts';
import type { HistoryRow, RunRow } from './row-types.ts';

export { FINAL_STATUSES, RUN_STATUSES, type HistoryEvent, type RunStatus } from './run-status.ts';

const tz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

/** One row per run: the persisted XState snapshot plus everything a worker needs to claim and fence it. */
export const runs = pgTable(
  'rmapp_runs',
  {
    // Column order (migration 0014): what stays put while a run executes first, what a commit changes
    // after every macrostep (snapshot … steps) last. Postgres logs a same-page update without the bytes
    // the old and new tuples share at either end, so this order keeps a commit's WAL to what changed
    // (bench/README.md, "WAL at c=50"). A new column goes with the group it changes with.
    id: text('id').primaryKey(),
    workflow: text('workflow').notNull(),
    workflowVersion: text('workflow_version').notNull(),
    createdAt: tz('created_at').notNull().defaultNow(),
    /** Per-run timeout: past this instant the run fails with category `timeout`. */
    deadlineAt: tz('deadline_at'),
    parentRunId: text('parent_run_id'),
    idempotencyKey: text('idempotency_key'),
    /**
     * Concurrency limit: at most `concurrencyLimit` admitted, unfinished runs share a key. A keyed run
     * waits `pending` and un-admitted (queued) until a slot frees; see claims.ts `admitQueuedRuns`.
     */
    concurrencyKey: text('concurrency_key'),
    concurrencyLimit: integer('concurrency_limit'),
    admitted: boolean('admitted').notNull().default(false),
    /** W3C `traceparent` of the run's trace: a run resumed in another process continues the same trace. */
    traceContext: text('trace_context'),
    input: jsonb('input'),
    /** Incremented by every claim; history rows carry it so overlapping owners would be visible. */
    leaseEpoch: integer('lease_epoch').notNull().default(0),
    leaseOwner: text('lease_owner'),
    leaseExpiresAt: tz('lease_expires_at'),
    wakeAt: tz('wake_at'),
    /**
     * Signals ever appended to the run. An eviction compares it with the count its session has read,
     * so a signal that races with the eviction still wakes the run (see commits.ts).
     */
    signalSeq: integer('signal_seq').notNull().default(0),
    status: text('status').$type<RunStatus>().notNull().default('pending'),
    /** Human-readable reason a run is stuck or failed to restore (e.g. its version is not registered). */
    statusMessage: text('status_message'),
    output: jsonb('output'),
    error: jsonb('error'),
    finishedAt: tz('finished_at'),
    /** Durable timers (`after` delays, step backoffs and sleeps) with their absolute due times. */
    timers: jsonb('timers')
      .notNull()
      .default(sql`'[]'::jsonb`),
    /** `actor.getPersistedSnapshot()` of the root, children nested inside. Null until first persisted. */
    snapshot: jsonb('snapshot'),
    /** The root's state value, kept beside the snapshot so lists need not parse it. */
    stateValue: jsonb('state_value'),
    /** Optimistic concurrency counter: every write says which version it expects. */
    version: integer('version').notNull().default(0),
    /**
     * History rows the run has, kept by every statement that appends or compacts them: the history bound
     * is checked against it by whichever worker holds the run, however often it is picked up.
     */
    historyRows: integer('history_rows').notNull().default(0),
    updatedAt: tz('updated_at').notNull().defaultNow(),
    /** Step attempt bookkeeping by step path (attempt number, last error), so retries survive restarts. */
    steps: jsonb('steps')
      .notNull()
      .default(sql`'{}'::jsonb`),
    /**
     * Counts of finished executions of step paths that nothing uses any more, moved out of `steps` a
     * batch at a time (src/state_machine/step-book.ts) and merged in with `||` only then: a loop over
     * items, a step per item, made every commit rewrite one entry per item it had done (bench/README.md,
     * "fourteenth session"). Null until the first batch. An entry of `steps` wins over one here. Last
     * (migration 0020 added it): it rarely changes, and a same-page update leaves a shared suffix out of
     * the WAL.
     */
    stepsDone: jsonb('steps_done'),
  },
  (t) => [
    // Partial: runs without a key (or without a parent) add no entry, and their final update no index
    // insert (139 B of WAL per workflow each, measured with bench/wal-breakdown.ts).
    uniqueIndex('rmapp_runs_idempotency_key_uq')
      .on(t.idempotencyKey)
      .where(sql`idempotency_key is not null`),
    // The lists (newest first, filtered by status or not): an index scan per status that stops at the
    // limit, merged (runs.ts listRuns). Measured on 760k rows: the unfiltered list was a parallel
    // sequential scan of every row before. A `(created_at, id)` index for the unfiltered list cost two
    // entries per run (its insert and its final, non-HOT update: 238 B of WAL per workflow,
    // bench/wal-breakdown.ts) and was dropped (migration 0013).
    index('rmapp_runs_status_idx').on(t.status, t.createdAt, t.id),
    // Claims read due runs in `wake_at` order, new runs apart from runs under way (claims.ts): each
    // its own partial index, so a backlog of one kind is never walked to reach the other. A run is
    // in at most one of them, so they cost no more WAL than the single index they replace.
    index('rmapp_runs_due_pending_idx')
      .on(t.wakeAt)
      .where(sql`status = 'pending'`),
    index('rmapp_runs_due_resumed_idx')
      .on(t.wakeAt)
      .where(sql`status in ('running', 'waiting')`),
    index('rmapp_runs_parent_idx')
      .on(t.parentRunId)
      .where(sql`parent_run_id is not null`),
    index('rmapp_runs_queue_idx')
      .on(t.concurrencyKey, t.createdAt)
      .where(sql`concurrency_key is not null and status = 'pending' and not admitted`),
    index('rmapp_runs_slots_idx')
      .on(t.concurrencyKey)
      .where(sql`concurrency_key is not null and admitted and status in ('pending', 'running', 'waiting')`),
    // Runs cancelled while queued whose definition's cleanup is still owed (run-admin.ts `CLEANUP_OWED`,
    // the only status message a cancelled run keeps): every worker looks for them every lease
    // (run-admin.ts `owedCleanupRuns`), which without it read every cancelled run through the status
    // index. Empty but for those few runs; a run enters it once and leaves it when its cleanup ran.
    index('rmapp_runs_cleanup_owed_idx')
      .on(t.id)
      .where(sql`status = 'cancelled' and status_message is not null`),
    check('rmapp_runs_status_ck', sql`${t.status} in ('pending', 'running', 'waiting', 'succeeded', 'failed', 'cancelled')`),
  ],
);

/**
 * Append-only history: one row per commit of a run, holding that commit's events in order (see
 * {@link HistoryEvent}). One row per commit rather than per event: a 6-step run appends 7 rows instead
 * of 21, which took the WAL of a 6-step run from 12.6 KB to the figure in the README ("Benchmark").
 */
export const runHistory = pgTable(
  'rmapp_run_history',
  {
    runId: text('run_id').notNull(),
    id: bigserial('id', { mode: 'number' }).notNull(),
    worker: text('worker'),
    leaseEpoch: integer('lease_epoch'),
    at: tz('at').notNull().defaultNow(),
    /**
     * `[{ type, path?, state?, step?, attempt?, data? }, …]`: rows appended in SQL (claims, retention's
     * summary) and rows written before migration 0012. Null when `log` holds the events.
     */
    events: jsonb('events'),
    /** A commit's events in the compact form of history-codec.ts (JSON text: smaller than jsonb here). */
    log: json('log'),
  },
  // One index, serving "a run's history in order".
  (t) => [
    primaryKey({ name: 'rmapp_run_history_pk', columns: [t.runId, t.id] }),
    check('rmapp_run_history_events_ck', sql`${t.events} is not null or ${t.log} is not null`),
  ],
);

/** Durable per-run inbox of signals; `consumedAt` is set in the transaction that persists their effect. */
export const runInbox = pgTable(
  'rmapp_run_inbox',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    runId: text('run_id').notNull(),
    event: jsonb('event').notNull(),
    dedupeKey: text('dedupe_key'),
    /**
     * A buffered signal (`send(…, { buffer })`): while the run's states do not accept it, it stays
     * unconsumed until this instant, and is offered again after every change of the run.
     */
    keepUntil: tz('keep_until'),
    /**
     * What became of it: `received` (it changed the run), `ignored` (it changed nothing), `expired`,
     * `dropped` (the run failed handling it and an operator retried the run without it).
     */
    outcome: text('outcome'),
    /**
     * A buffered signal whose `signal.buffered` is in the run's history (written by the same commit): a
     * later owner keeps it without reporting it again. Searching the history for that entry instead cost
     * each read of the inbox O(buffered signals × history rows) (bench/README.md, "twelfth session").
     */
    reported: boolean('reported').notNull().default(false),
    /** When it was sent, on the sending engine's clock (engine.ts `send`; a test clock's time in tests). */
    createdAt: tz('created_at').notNull().defaultNow(),
    consumedAt: tz('consumed_at'),
  },
  (t) => [
    uniqueIndex('rmapp_run_inbox_dedupe_uq').on(t.runId, t.dedupeKey),
    index('rmapp_run_inbox_pending_idx')
      .on(t.runId, t.id)
      .where(sql`consumed_at is null`),
  ],
);

/**
 * Artifacts of a run (a plan, test output, a large step output): kept out of the snapshot so it stays
 * small. Written at least once, so keyed by name and overwritten by a retried step.
 */
export const runArtifacts = pgTable(
  'rmapp_run_artifacts',
  {
    runId: text('run_id').notNull(),
    name: text('name').notNull(),
    /** Any JSON value; text is stored as a JSON string. */
    value: jsonb('value').notNull(),
    bytes: integer('bytes').notNull(),
    createdAt: tz('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ name: 'rmapp_run_artifacts_pk', columns: [t.runId, t.name] })],
);

/**
 * The process behind each lease owner of a worker started under an operator-chosen id: a worker
 * started again under that id takes back at once only the leases of a process it can prove gone (same
 * boot, same PID namespace, its pid not running or running another process). A process the database
 * has lost holds none of its locks there (they live on its connections), so without this record a
 * restart took the runs of a process still running their steps (README, "One owner at a time").
 */
export const workerProcesses = pgTable(
  'rmapp_worker_processes',
  {
    /** The lease owner (`<worker id>:<8 hex digits>`). */
    owner: text('owner').primaryKey(),
    workerId: text('worker_id').notNull(),
    pid: integer('pid').notNull(),
    /** Clock ticks since boot at the process's start (`/proc/<pid>/stat`); null where unknown. */
    processStart: text('process_start'),
    bootId: text('boot_id'),
    pidNamespace: text('pid_namespace'),
    startedAt: tz('started_at').notNull().defaultNow(),
  },
  (t) => [index('rmapp_worker_processes_worker_idx').on(t.workerId)],
);

export type { HistoryRow, RunRow } from './row-types.ts';

/** True when A and B are the same type (each assignable to the other, in both directions). */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
// The Drizzle-free row types (row-types.ts) must be exactly what the tables infer: a column added,
// removed or retyped here without changing them fails the build on these lines.
const runRowMatches: Same<RunRow, typeof runs.$inferSelect> = true;
const historyRowMatches: Same<HistoryRow, typeof runHistory.$inferSelect> = true;
void runRowMatches;
void historyRowMatches;

export type InboxRow = typeof runInbox.$inferSelect;
