/**
 * The row of a run this process finished, built from its final write and that write's result instead
 * of read back: what `engine.waitFor` returns for it (run-session.ts `onCommitted`, worker.ts `awaitFinish`).
 */
import type { ClaimedRun } from '../persistence/claims.ts';
import type { CommitResult, RunWrite } from '../persistence/commits.ts';
import type { RunRow } from '../persistence/row-types.ts';

/**
 * JSON as the database gives it back (a Date becomes its ISO string), as `engine.get` would read it.
 * What JSON writes as nothing (a function, a symbol, a `toJSON` giving `undefined`) is stored as null:
 * parsed as is it threw after the final commit, outside any handler, and ended the worker's process.
 */
function asStored(value: unknown): unknown {
  const json = value == null ? undefined : JSON.stringify(value);
  return json === undefined ? null : (JSON.parse(json) as unknown);
}

/** The run's row after its final write, built from that write and its result instead of read back. */
export function finalRowOf(claimed: ClaimedRun, write: RunWrite, result: CommitResult, stepsDone: Record<string, number> | null): RunRow {
  const { hasSignals: _signals, dueAt: _due, ...row } = claimed;
  const at = result.updatedAt ?? new Date();
  return {
    ...row,
    status: write.status,
    statusMessage: write.statusMessage,
    snapshot: write.snapshot,
    stateValue: asStored(write.stateValue),
    output: asStored(write.output),
    error: asStored(write.error),
    timers: write.timers,
    steps: write.steps,
    stepsDone,
    version: result.version,
    historyRows: result.historyRows,
    leaseOwner: null,
    leaseExpiresAt: null,
    wakeAt: null,
    updatedAt: at,
    finishedAt: at,
  };
}
