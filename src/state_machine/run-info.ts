/** The public view of a run: what `engine.get`, `engine.list` and the CLI show. */
import type { RunRow } from '../persistence/row-types.ts';
import { childPath } from './actor-paths.ts';
import { isFinalStatus, type RunStatus } from '../persistence/run-status.ts';
import type { WorkflowDefinition } from './definition.ts';
import type { ErrorData } from './errors.ts';
import type { ConcurrencyScope } from './concurrency-key.ts';

/** A child actor of a run (a sub-workflow or a step), read from the persisted snapshot. */
export interface ChildInfo {
  /** Path below the root, e.g. `review-1` or `review-1/0.review.fixing`. */
  path: string;
  /** Actor name from `setup({ actors })`. */
  src: string;
  /** XState status: active, done, error or stopped. */
  status: string;
  /** State value for a child machine; absent for steps. */
  state?: unknown;
}

/** A run as the API returns it; `TOutput` is the machine's output type when the run id was typed (see `RunId`). */
export interface RunInfo<TOutput = unknown> {
  id: string;
  workflow: string;
  workflowVersion: string;
  status: RunStatus;
  /** Why the run is not moving, when it is not (e.g. its version is not registered). */
  statusMessage: string | null;
  state: unknown;
  input: unknown;
  /** The machine's output once the run succeeded; null before (and for a run that failed). */
  output: TOutput | null;
  error: ErrorData | null;
  parentRunId: string | null;
  idempotencyKey: string | null;
  wakeAt: Date | null;
  /**
   * The worker executing the run now; null when none does, and always for a finished run — whose row a
   * cancelled run's owed cleanup leases while it runs (`statusMessage` says the cleanup is still owed).
   */
  leaseOwner: string | null;
  createdAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
  children: ChildInfo[];
  /**
   * For a run waiting for a concurrency slot: its key, the key's scope, and its place in the queue (1 =
   * next). `key` is a global key as the workflow gave it, a workflow's key after the workflow's name
   * (`Deploy:prod`), a per-workflow limit as the workflow's name (concurrency-key.ts `shownConcurrencyKey`).
   */
  queue?: { key: string; scope: ConcurrencyScope; position: number } | undefined;
}

interface PersistedChild {
  src?: unknown;
  snapshot?: { status?: string; value?: unknown; children?: Record<string, PersistedChild> };
}

/**
 * Children of a persisted snapshot, depth first. With `activeOnly`, only the active ones whose parents
 * are all active: those a restore runs (engine.retry reads them, step-record.ts `retriedRecords`).
 */
export function childrenOf(snapshot: unknown, prefix = '', activeOnly = false): ChildInfo[] {
  const children = ((snapshot as { children?: Record<string, PersistedChild> } | null)?.children ?? {}) as Record<string, PersistedChild>;
  const out: ChildInfo[] = [];
  for (const [id, child] of Object.entries(children)) {
    const path = childPath(prefix, id);
    const snap = child.snapshot ?? {};
    if (activeOnly && snap.status !== 'active') continue;
    const info: ChildInfo = { path, src: typeof child.src === 'string' ? child.src : '(inline)', status: snap.status ?? 'unknown' };
    if (snap.value !== undefined) info.state = snap.value;
    out.push(info, ...childrenOf(snap, path, activeOnly));
  }
  return out;
}

/**
 * Builds the public view; explains an unregistered version even if no worker has said so yet.
 * @internal (its row type is drizzle's, which the published declarations must not reach)
 */
export function toRunInfo(row: RunRow, registry: Map<string, WorkflowDefinition>): RunInfo {
  let statusMessage = row.statusMessage;
  const active = row.status === 'pending' || row.status === 'running' || row.status === 'waiting';
  if (active && !statusMessage && !registry.has(`${row.workflow}@${row.workflowVersion}`)) {
    statusMessage = `Definition ${row.workflow}@${row.workflowVersion} is not registered in this process: the run waits untouched until a worker that registers this version claims it.`;
  }
  return {
    id: row.id,
    workflow: row.workflow,
    workflowVersion: row.workflowVersion,
    status: row.status,
    statusMessage,
    state: row.stateValue,
    input: row.input,
    output: row.output,
    error: (row.error as ErrorData | null) ?? null,
    parentRunId: row.parentRunId,
    idempotencyKey: row.idempotencyKey,
    wakeAt: row.wakeAt,
    // A finished run has no owner: the lease an owed cleanup takes on its row is the cleanup's, not the run's.
    leaseOwner: isFinalStatus(row.status) ? null : row.leaseOwner,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    finishedAt: row.finishedAt,
    // A finished run runs nothing: a child its last snapshot holds as active (a cancelled run keeps the
    // snapshot from before its actors were stopped; a failed one the snapshot a retry resumes) is stopped.
    children: isFinalStatus(row.status)
      ? childrenOf(row.snapshot).map((c) => (c.status === 'active' ? { ...c, status: 'stopped' } : c))
      : childrenOf(row.snapshot),
  };
}
