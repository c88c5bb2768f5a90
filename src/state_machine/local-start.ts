/**
 * A run started in the process of a worker with a free slot: inserted already claimed, past its first
 * macrostep, in one statement (worker.ts `reserveFor`, `startLocal`).
 */
import type { ClaimedRun } from '../persistence/claims.ts';
import type { Database } from '../persistence/database.ts';
import { existingRun, insertRun, type NewRun } from '../persistence/runs.ts';
import { storedSnapshotJson } from '../persistence/snapshot-codec.ts';
import type { WorkflowDefinition } from './definition.ts';
import type { ErrorData } from './errors.ts';
import type { EngineEvents } from './events.ts';
import { faultsArmed, reachFaultPoint, stateTargets } from './fault-points.ts';
import type { InsertBatcher, InsertResult } from './insert-batcher.ts';
import { jsonBytes, SizeLimitError } from './limits.ts';
import type { RunSession } from './run-session.ts';

/** What {@link startLocalRun} needs of the worker that starts the run. */
export interface LocalStartHost {
  readonly db: Database;
  readonly owner: string;
  readonly leaseMs: number;
  readonly events: EngineEvents;
  readonly inserts: InsertBatcher;
  /** The run's session, started unborn with the worker's reserved slot; null when the worker cannot start it (stopping, or the id held here). */
  startUnborn(row: ClaimedRun, claimedAt: number): RunSession | null;
  /** Wakes the worker's claim loop: a run inserted pending is there for it to claim. */
  poke(): void;
}

/**
 * Starts a run of `definition` in a worker before it exists in the database (with a slot from worker.ts
 * `reserveFor`): its session runs the first macrostep in memory — no step's work starts, each
 * waits for the snapshot that entered it to be durable — and that macrostep's write is the run's
 * insert. One statement instead of an insert and a first commit (bench/README.md). When the id or
 * idempotency key was taken, the session is dropped unheard (its events were held) and the existing
 * run is returned, as an insert of a pending run would.
 */
export async function startLocalRun(
  host: LocalStartHost,
  definition: WorkflowDefinition,
  run: Omit<NewRun, 'claimFor'>,
): Promise<InsertResult> {
  const claimedAt = performance.now();
  const inputJson = JSON.stringify(run.input ?? null);
  const deadlineAt = run.timeoutMs ? new Date(Date.now() + run.timeoutMs) : null;
  const now = new Date();
  // The row as the claimed insert will write it; the actor gets the input as the database gives it back.
  const row: ClaimedRun = {
    id: run.id,
    workflow: definition.name,
    workflowVersion: definition.version,
    status: 'running',
    statusMessage: null,
    snapshot: null,
    stateValue: null,
    input: JSON.parse(inputJson) as unknown,
    output: null,
    error: null,
    timers: [],
    steps: {},
    stepsDone: null,
    signalSeq: 0,
    historyRows: 0,
    version: 0,
    leaseOwner: host.owner,
    leaseExpiresAt: null,
    leaseEpoch: 1,
    wakeAt: null,
    deadlineAt,
    parentRunId: run.parentRunId ?? null,
    traceContext: run.traceContext ?? null,
    idempotencyKey: run.idempotencyKey ?? null,
    concurrencyKey: null,
    concurrencyLimit: null,
    admitted: false,
    createdAt: now,
    updatedAt: now,
    finishedAt: null,
    hasSignals: false,
  };
  host.events.hold(run.id);
  const session = host.startUnborn(row, claimedAt);
  // The first macrostep settles as it does before a commit (committer.ts: a step's start is recorded
  // a few microtasks after the state that invoked it is entered).
  if (session) await new Promise((resolve) => setImmediate(resolve));
  const prepared = session?.takeFirstWrite() ?? null;
  if (!session || !prepared) {
    // Nothing of a first macrostep to write (the worker is stopping, or the session could not start):
    // the run is inserted pending for any worker, as a start without a worker would.
    host.events.unhold(run.id, false);
    session?.end(false);
    host.poke();
    return insertRun(host.db, run);
  }
  const { write } = prepared;
  const refused = refusedFirstState(write.error, run.input);
  if (refused) {
    // Nothing is stored: the caller's start fails, as one with a too-large input does (request-checks.ts)
    // — unless it names a run stored already (its id, its idempotency key), which it gets back whatever
    // its input, as from an insert that met it.
    host.events.unhold(run.id, false);
    session.end(false);
    const existing = await existingRun(host.db, run);
    if (existing) return existing;
    throw refused;
  }
  let inserted: InsertResult;
  try {
    if (faultsArmed) reachFaultPoint('before-persist', stateTargets(write.stateValue));
    inserted = await host.inserts.insert({
      ...run,
      input: row.input,
      claimFor: {
        owner: host.owner,
        leaseMs: host.leaseMs,
        deadlineAt,
        status: write.status,
        snapshotJson: write.snapshotJson ?? storedSnapshotJson(write.snapshot),
        stateValue: write.stateValue,
        output: write.output,
        error: write.error,
        timers: write.timers,
        steps: write.steps,
        release: write.release,
        wakeAt: write.wakeAt,
        history: write.history,
      },
    });
  } catch (err) {
    host.events.unhold(run.id, false);
    session.end(false);
    throw err;
  }
  const claimed = inserted.claimed;
  host.events.unhold(run.id, claimed !== undefined);
  if (!claimed) {
    session.end(false);
    return inserted;
  }
  if (faultsArmed) reachFaultPoint('after-persist', stateTargets(write.stateValue));
  row.createdAt = claimed.createdAt;
  row.updatedAt = claimed.updatedAt;
  session.onCommitted(prepared, {
    index: 0,
    id: run.id,
    version: claimed.version,
    historyRows: claimed.historyRows,
    wakeNow: false,
    updatedAt: claimed.updatedAt,
  });
  return inserted;
}

/**
 * The error a start fails with when the run's first state cannot be stored for its size: the input,
 * copied into the context and a step's input, makes a snapshot over `limits.snapshotBytes`. Refused to
 * the caller (the API's 413) instead of a run stored already failed that no one asked for — as a start
 * whose input alone is over the limit is. Null for any other first write, a failed one included (a
 * machine that fails at once is the run's business).
 */
function refusedFirstState(written: unknown, input: unknown): SizeLimitError | null {
  const error = written as Partial<ErrorData> | null;
  if (error?.code !== 'SIZE_LIMIT_EXCEEDED') return null;
  const details = error.details as { limit?: unknown; bytes?: unknown; max?: unknown } | undefined;
  if (details?.limit !== 'snapshotBytes' || typeof details.bytes !== 'number' || typeof details.max !== 'number') return null;
  // The input is what the caller can change; a first state that is large without it (a context default,
  // a spawned child's error) was answered "Send less input" (an adversarial pass).
  const inputBytes = jsonBytes(JSON.stringify(input ?? null));
  if (inputBytes * 4 < details.bytes) {
    return new SizeLimitError(
      `The run's first state (its snapshot; its input is only ${inputBytes} bytes)`,
      'snapshotBytes',
      details.bytes,
      details.max,
      "The machine's first macrostep makes it large (its context's defaults, a spawned child's error or output): keep large data in artifacts, or raise limits.snapshotBytes.",
    );
  }
  return new SizeLimitError(
    "The run's first state (its snapshot, with the input copied into its context and steps)",
    'snapshotBytes',
    details.bytes,
    details.max,
    'Send less input: pass large data by reference (a URL, or an artifact a step saves) rather than in the input.',
  );
}
