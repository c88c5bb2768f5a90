/**
 * `engine.retry`: a failed run put back to run again from its last snapshot, optionally without the
 * signal it failed handling (a poison event — an event the definition throws on, sent by a system the
 * operator cannot fix first). Temporal's reset can leave signals out in the same way.
 */
import { inboxSignal, queuedByDedupeKey } from '../persistence/inbox.ts';
import { getRun, getRunHead } from '../persistence/runs.ts';
import { rewindFailedRun } from '../persistence/run-admin.ts';
import { encodeHistory, type HistoryEntry } from '../persistence/history-codec.ts';
import type { Queryable } from '../persistence/database.ts';
import { decodeStepRecords, retriedRecords } from './step-record.ts';
import { RunNotFoundError, RunStateError, ValidationError, type ErrorData } from './errors.ts';
import { CANCEL_SIGNAL } from './session-signals.ts';

/** Options of `engine.retry`. */
export interface RetryOptions {
  /**
   * Leave out the signal the run failed handling (its error's `signal`: a guard or an action threw on
   * an event sent with `engine.send`, or the state it made cannot be written — signal-blame.ts): it is
   * consumed as `dropped` — its dedupe key freed, a `signal.dropped` history entry naming it — and the
   * run resumes from its last written state without it. For an event no definition should have to
   * take; a bug the next deploy fixes is retried without it. Refused for a run that did not fail on a
   * signal.
   *
   * A number leaves out that queued signal of the run instead (its inbox id, as `engine.send` returned
   * it and `engine.queuedSignals` lists it): for a run whose error names no signal though one caused it
   * — a state that cannot be written after a signal arrived together with a step's result or a timer,
   * or after more signals than the run could check one by one (signal-blame.ts) — which a plain retry
   * fails the same way. The operator picks it; the run resumes from its last written state, which no
   * queued signal has touched.
   */
  dropSignal?: boolean | number;
}

/** What the retry needs of its engine: the run's definition, if registered, and who writes. */
export interface RetryHost {
  clockNow(): number;
  workerId: string;
  /** Whether the run's definition (as registered here) has a concurrency limit; true when unknown. */
  keyed(workflow: string, version: string): boolean;
}

/** Checks `options` as the API, the CLI and a script may pass them. */
export function checkRetryOptions(options: unknown): RetryOptions {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ValidationError('retry options must be an object such as { dropSignal: true }.', [
      { path: 'options', message: 'not an object' },
    ]);
  }
  for (const key of Object.keys(options)) {
    if (key !== 'dropSignal') {
      throw new ValidationError(`retry options take only "dropSignal" (got "${key.slice(0, 100)}").`, [
        { path: key.slice(0, 100), message: 'unknown option' },
      ]);
    }
  }
  const drop = (options as { dropSignal?: unknown }).dropSignal;
  if (drop !== undefined && typeof drop !== 'boolean' && !(Number.isSafeInteger(drop) && (drop as number) > 0)) {
    throw new ValidationError("retry option dropSignal must be true, false, or a queued signal's id (a positive integer).", [
      { path: 'dropSignal', message: 'not a boolean or a signal id' },
    ]);
  }
  return drop === undefined ? {} : { dropSignal: drop as boolean | number };
}

/**
 * Puts failed run `runId` back (run-admin.ts `rewindFailedRun`) after the checks that a retry could
 * work at all; returns the status it has now, a sentence saying what will happen, and its concurrency
 * key (a queued run's key is admitted at once by the caller).
 */
export async function retryFailedRun(
  db: Queryable,
  host: RetryHost,
  runId: string,
  options: RetryOptions,
): Promise<{ status: 'waiting' | 'pending'; message: string; concurrencyKey: string | null }> {
  const run = await getRun(db, runId);
  if (!run) throw new RunNotFoundError(runId);
  if (run.status !== 'failed') {
    throw new RunStateError(`Run ${runId} is ${run.status}; only failed runs can be retried.`);
  }
  const error = run.error as Partial<ErrorData> | null;
  if ((run.snapshot as { status?: unknown } | null)?.status === 'done') {
    const why = error?.message ? ` (${error.code ?? 'error'}: ${error.message})` : '';
    throw new RunStateError(
      `Run ${runId} cannot be retried: its workflow ended it in its failure state ${JSON.stringify(run.stateValue)}${why}, so no step is left to run again and a retry would fail at once. Start a new run instead.`,
      [{ path: 'runId', message: 'ended in a failure state of its workflow' }],
    );
  }
  // The deadline stays the run's: one already passed would end the resumed run at once (RUN_TIMEOUT again).
  if (run.deadlineAt && run.deadlineAt.getTime() <= host.clockNow()) {
    throw new RunStateError(
      `Run ${runId} cannot be retried: its deadline (${run.deadlineAt.toISOString()}, from timeoutMs at start) has passed, so it would time out again at once. Start a new run instead, with a longer timeoutMs if it needs one.`,
      [{ path: 'runId', message: 'deadline passed' }],
    );
  }
  const history: HistoryEntry[] = [];
  let dropped: { id: number; type: string; event: unknown } | null = null;
  // A signal picked by its id is the operator's choice: the run's error may name another, or none.
  const chosen = typeof options.dropSignal === 'number';
  if (options.dropSignal) {
    dropped = chosen ? await chosenSignal(db, runId, options.dropSignal as number) : await signalToDrop(db, runId, error);
    history.push({
      type: 'signal.dropped',
      state: run.stateValue,
      data: {
        id: dropped.id,
        event: dropped.event,
        reason: chosen ? 'the operator chose to retry the run without it' : 'the run failed handling it and was retried without it',
      },
    });
  }
  // A cancellation the run never took — it reached the run after its last read of the inbox, while
  // the run was failing, or the run failed before reading it — was for the execution that failed: a
  // cancel sent a moment later finds the run finished and changes nothing (engine.ts `cancelNow`).
  // The retry is a new execution asked for after it, which it must not end: left queued, the resumed
  // run took it at once and ended cancelled before its step ran again
  // (test/b4-cancel-then-retry.test.ts). Dropped in the retry's statement, its key freed. A failed
  // run takes no signal (inbox.ts `appendSignal`), so none comes between this read and that statement.
  const staleCancel = await queuedByDedupeKey(db, runId, CANCEL_SIGNAL);
  if (staleCancel && staleCancel.id !== dropped?.id) {
    history.push({
      type: 'signal.dropped',
      state: run.stateValue,
      data: {
        id: staleCancel.id,
        event: staleCancel.event,
        reason: 'a cancellation that reached the run as it failed, which it never took: the retry, asked after it, runs again',
      },
    });
  }
  history.push({ type: 'run.retried', data: { previousError: run.error, ...(dropped ? { droppedSignal: dropped.id } : {}) } });
  // The failed execution runs again under its own idempotency key; earlier failed ones count as finished.
  const steps = retriedRecords(decodeStepRecords(run.steps), run.snapshot);
  // Queued again unless the run's definition, registered here, has no limit any more: a process that
  // does not know the run's version cannot tell, and letting the run skip the queue ran it beside the
  // key's runs over the limit (a newer deploy retrying an older run).
  const status = await rewindFailedRun(db, {
    id: runId,
    version: run.version,
    steps,
    keyed: host.keyed(run.workflow, run.workflowVersion),
    history: encodeHistory(history),
    worker: host.workerId,
    dropSignal: dropped?.id ?? null,
    dropCancel: staleCancel?.id ?? null,
  });
  if (!status) {
    // Deleted meanwhile (a prune): not found, as it would be a moment later.
    if (!(await getRunHead(db, runId))) throw new RunNotFoundError(runId);
    throw new RunStateError(`Run ${runId} changed while retrying it; look at it again and retry.`);
  }
  const without = dropped
    ? ` without signal ${dropped.id} (${JSON.stringify(dropped.type)})${chosen ? '' : ', which it failed handling'}`
    : '';
  // A run that failed before its first state was written (started and signalled before a worker took
  // it) has no state to resume from: it starts again from its first one.
  const from = run.stateValue == null ? 'start again from its first state' : `resume from ${JSON.stringify(run.stateValue)}`;
  return {
    status,
    concurrencyKey: run.concurrencyKey ?? null,
    message:
      status === 'pending'
        ? `Run ${runId} will ${from}${without} once its concurrency key has a free slot.`
        : `Run ${runId} will ${from}${without}.`,
  };
}

/** Signal `id` of the run, which must still be queued: the one the operator chose to leave out. */
async function chosenSignal(db: Queryable, runId: string, id: number): Promise<{ id: number; type: string; event: unknown }> {
  const row = await inboxSignal(db, runId, id);
  if (!row || !row.queued) {
    throw new RunStateError(
      `Run ${runId} has no queued signal ${id}${row ? ` (it was ${row.outcome ?? 'taken'} already)` : ''}: only a signal still in its inbox can be left out (engine.queuedSignals and \`rmapp runs show\` list them).`,
      [{ path: 'dropSignal', message: row ? 'the signal is not queued' : 'no such signal' }],
    );
  }
  return { id, type: typeof row.event?.type === 'string' ? row.event.type : '(no type)', event: row.event };
}

/** The signal a run's error names, still queued; else why there is nothing to drop. */
async function signalToDrop(
  db: Queryable,
  runId: string,
  error: Partial<ErrorData> | null,
): Promise<{ id: number; type: string; event: unknown }> {
  const named = error?.signal;
  if (!named || typeof named.id !== 'number') {
    const what = error ? `${error.code ?? 'error'}: ${String(error.message ?? '').slice(0, 500)}` : 'no error recorded';
    throw new RunStateError(
      `Run ${runId} did not fail handling a signal (${what}), so there is no signal to drop: retry it without dropSignal (--drop-signal) once what failed is fixed.`,
      [{ path: 'dropSignal', message: 'the run did not fail on a signal' }],
    );
  }
  const row = await inboxSignal(db, runId, named.id);
  if (!row || !row.queued) {
    throw new RunStateError(
      `Run ${runId} failed handling signal ${named.id} ("${named.type}"), but that signal is ${row ? `no longer queued (${row.outcome ?? 'taken'})` : 'gone from its inbox'}: retry it without dropSignal.`,
      [{ path: 'dropSignal', message: 'the signal is not queued' }],
    );
  }
  return { id: named.id, type: typeof row.event?.type === 'string' ? row.event.type : named.type, event: row.event };
}
