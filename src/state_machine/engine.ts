/**
 * The engine: the public face of rmapp's durable execution. It validates and stores runs, delivers
 * signals and cancellations, and runs a worker that executes runs. Its queries (get, list, history,
 * artifacts, waitFor) and its database are run-queries.ts; its options and defaults engine-options.ts;
 * the checks of a start's and a send's arguments request-checks.ts.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { context as otelContext, SpanStatusCode } from '@opentelemetry/api';
import { appendSignal, signalByDedupeKey, signalOutcome, type SignalOutcome } from '../persistence/inbox.ts';
import { getRun, getRunHead, insertRun } from '../persistence/runs.ts';
import { countRuns } from '../persistence/run-admin.ts';
import { cancelPendingInPlace, holdCleanup, runOwedCleanup, type CleanupRunner } from './pending-cancel.ts';
import { isCleanupOwed, runCleanupIfOwed, snapshotContext } from './owed-cleanups.ts';
import { checkRetryOptions, retryFailedRun, type RetryHost, type RetryOptions } from './run-retry.ts';
import { admitKey } from '../persistence/claims.ts';
import { isFinalStatus, type RunStatus } from '../persistence/run-status.ts';
import type { Database, Queryable } from '../persistence/database.ts';
import type { RunRow } from '../persistence/row-types.ts';
import type { HistoryEntry } from '../persistence/history-codec.ts';
import { DEFAULT_RETENTION } from '../persistence/retention.ts';
import { startRetentionJob, type RetentionJob } from '../persistence/retention-job.ts';
import { newRunId } from './run-id.ts';
import type { AnyWorkflowDefinition, RunId, WorkflowEvent, WorkflowStartInput } from './typed-runs.ts';
import {
  cancelledError,
  RunNotFoundError,
  stoppedWhileStarting,
  toErrorData,
  UnknownWorkflowError,
  RunStateError,
  ValidationError,
  VICTIM_SQLSTATES,
  isDatabaseUnavailable,
} from './errors.ts';
import { CANCEL_SIGNAL } from './session-signals.ts';
import { stopBoundMs, Worker } from './worker.ts';
import { instrumentMetrics } from './metrics.ts';
import { ATTR, traceparentOf, tracer } from './telemetry.ts';
import { DEFAULT_ENGINE_OPTIONS, type EngineOptions } from './engine-options.ts';
import { RunQueries, stopController } from './run-queries.ts';
import { checkSend, checkStart, checkText, MAX_REASON_BYTES, type SendOptions, type StartOptions } from './request-checks.ts';
import { refuseUnknownCallOptions } from './option-names.ts';

export { DEFAULT_BUFFER_MS, DEFAULT_ENGINE_OPTIONS, MIN_LEASE_MS, type EngineOptions } from './engine-options.ts';
export type { SendOptions, StartOptions } from './request-checks.ts';

/** What {@link Engine.send} knows of the event. */
export interface SendResult {
  /** It was appended to the inbox (false: a duplicate of a signal sent with the same key). */
  delivered: boolean;
  /**
   * Its inbox id; with `duplicate`, the id of the signal that took the `dedupeKey` before, whether the
   * run goes on or has finished (a caller retrying a send learns which signal it sent).
   */
  id: number | null;
  /**
   * `queued` until the run takes it; then `received`, `ignored` or `expired` (`dropped`: the run failed
   * handling it and was retried without it); `duplicate` when not appended.
   */
  outcome: 'queued' | 'duplicate' | SignalOutcome;
  /**
   * With `duplicate`, present (true) when the signal already taken under the `dedupeKey` is another event
   * (a different type or payload): this one was not sent at all — a key reused by mistake, not a retry
   * of the same send. Absent otherwise, so a plain duplicate reads as before. The HTTP API answers 422.
   */
  differentEvent?: true;
}

/** Result of {@link Engine.cancel}. */
export interface CancelResult {
  /** False when the run had already finished: cancelling it does nothing. */
  cancelled: boolean;
  status: RunStatus;
  message: string;
}

/**
 * A durable workflow engine over one database.
 *
 * @example
 * const engine = createEngine({ workflows: [order] });
 * await engine.startWorker();
 * const id = await engine.start('order', { id: 'A-1' });
 * const run = await engine.waitFor(id, { timeoutMs: 60_000 });
 */
export class Engine extends RunQueries {
  private worker: Worker | null = null;
  private stopMetrics: (() => void) | null = null;
  private retentionJob: RetentionJob | null = null;
  private stopping: Promise<void> | null = null;
  /** A start under way: a concurrent call shares it (two calls must not make two workers). */
  private starting: Promise<void> | null = null;
  /** Per run, the last of this engine's appends to its inbox, settled or not ({@link inCallOrder}). */
  private readonly appending = new Map<string, Promise<unknown>>();

  /**
   * Stores a new run; a worker executes it. Input is validated first: invalid input throws a
   * {@link ValidationError} naming the field, and nothing is stored.
   */
  async start<TWorkflow extends AnyWorkflowDefinition>(
    workflow: TWorkflow,
    input: WorkflowStartInput<TWorkflow>,
    options?: StartOptions,
  ): Promise<RunId<TWorkflow>>;
  async start(name: string, input: unknown, options?: StartOptions): Promise<RunId>;
  async start(workflow: string | AnyWorkflowDefinition, input: unknown, options: StartOptions = {}): Promise<RunId> {
    refuseUnknownCallOptions('start', options);
    const name = typeof workflow === 'string' ? workflow : workflow.name;
    const def = this.latest.get(name);
    if (!def) throw new UnknownWorkflowError(name, [...this.latest.keys()]);
    const { input: data, timeoutMs, concurrency } = checkStart(def, input, options, this.limits);
    const db = await this.db();
    // A parent that does not exist would be a dangling link (the dashboard's parent link a 404), and two
    // runs naming each other as parent would never be pruned (each keeps the other). Checked here before
    // any work, and again by the insert, which locks the parent (runs.ts `insertRun`): one a prune deletes
    // in between is refused the same way.
    if (options.parentRunId !== undefined && !(await getRunHead(db, options.parentRunId))) throw noParent(options.parentRunId);
    const worker = this.worker;
    // A keyed run waits for admission; any other run is started by this worker, inserted already past
    // its first macrostep, if it has room (local-start.ts `startLocalRun`).
    const local = !concurrency && worker?.reserveFor(def) ? worker : null;
    // The root of the run's trace (a child of the caller's span, if any); its context is persisted so
    // every segment of the run, in whatever process, joins this trace.
    const span = tracer().startSpan(
      `workflow.start ${def.name}`,
      { attributes: { [ATTR.name]: def.name, [ATTR.version]: def.version } },
      otelContext.active(),
    );
    let inserted: Awaited<ReturnType<typeof insertRun>>;
    try {
      const run = {
        traceContext: traceparentOf(span),
        concurrency,
        timeoutMs,
        id: options.runId ?? newRunId(),
        workflow: def.name,
        workflowVersion: def.version,
        input: data,
        idempotencyKey: options.idempotencyKey,
        parentRunId: options.parentRunId,
      };
      inserted = local ? await local.startLocal(def, run) : await insertRun(db, run);
      if (inserted.parentGone) throw noParent(options.parentRunId as string);
      span.setAttributes({ [ATTR.id]: inserted.id, 'workflow.created': inserted.created });
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      throw err;
    } finally {
      span.end();
    }
    const { id, existing } = inserted;
    // A keyed run goes into its key's queue: admitted at once if the key has a free slot (a worker's
    // passes over the queued keys go round them, and could come to this one late).
    if (concurrency && inserted.created) await this.admitNow(db, concurrency.key);
    if (!local) this.worker?.poke();
    // A key (or run id) names one start: a later call with it gets that run back, whatever its input
    // (a webhook delivered again carries a new delivery id). A key first used for another workflow is
    // a mistake the caller must hear about, not a run of something they did not ask for.
    if (existing && existing.workflow !== def.name) {
      const what = existing.byKey ? `Idempotency key "${options.idempotencyKey}"` : `Run id "${id}"`;
      throw new ValidationError(
        `${what} was already used to start run ${id} of workflow "${existing.workflow}"; use a new ${existing.byKey ? 'key' : 'run id'} to start a "${def.name}" run.`,
      );
    }
    return id;
  }

  /**
   * Sends an event to a run through its durable inbox; it is applied once, in order, exactly as XState
   * would apply it. An event that no state of the run accepts when it arrives is ignored — unless it is
   * buffered (`buffer: true`, or `{ forMs }`; default 24 h): then it waits in the inbox and is offered
   * again after every change of the run, until a state accepts it or it expires (as Temporal buffers
   * signals). A workflow defined with `signals: { buffer }` buffers by default; the call's `buffer` wins.
   * With a `dedupeKey` used before for this run and not ignored, nothing is sent again (`duplicate`, and
   * `differentEvent` when the key was used for another event: a mistake the caller should hear of).
   * `waitMs` waits (at most that long) for the run to take the event and says what became of it; a run
   * that fails meanwhile answers `queued` at once (the event stays in its inbox for `engine.retry`).
   * A run that has finished takes no event: a {@link RunStateError} (HTTP 409), unless the event's
   * `dedupeKey` was taken before (then `duplicate`).
   *
   * @example
   * const { outcome } = await engine.send(id, { type: 'approve' }, { dedupeKey: 'approval-1', buffer: true, waitMs: 5_000 });
   * // 'received' | 'ignored' | 'expired' once the run took it; 'queued' before; 'duplicate' for a used key
   */
  async send<TWorkflow = unknown>(
    runId: RunId<TWorkflow>,
    event: WorkflowEvent<TWorkflow>,
    options: SendOptions = {},
  ): Promise<SendResult> {
    refuseUnknownCallOptions('send', options);
    checkSend(event, options, this.limits);
    const sent = await this.inCallOrder(runId, () => this.enqueue(runId, event, options.dedupeKey ?? null, options.buffer));
    // A stop under way ends the wait at once rather than opening the database again after it. A
    // duplicate sent nothing to wait for: its answer stays `duplicate` (its id is the earlier signal's).
    if (!sent.delivered || sent.id === null || !options.waitMs || this.stopping) return sent;
    const deadline = Date.now() + options.waitMs;
    // The event is stored: a wait cut short (the engine stopped, the database went away) answers what is
    // known, 'queued', as a wait that timed out does; a send that threw would be retried, storing it twice.
    // A poll the database did not answer (its backend terminated, a connection lost: a failover) is made
    // again on a new connection until the deadline: ended at the first, the wait answered 'queued' for
    // an event the run took a moment later (test/b4-send-wait-terminated.test.ts).
    try {
      const db = await this.db();
      for (;;) {
        let outcome: Awaited<ReturnType<typeof signalOutcome>>;
        try {
          outcome = await signalOutcome(db, runId, sent.id);
        } catch (err) {
          // pg's "Connection terminated unexpectedly" (a socket closed without a FATAL first) carries no code.
          const lost = isDatabaseUnavailable(err) || (err as { code?: unknown } | null)?.code === undefined;
          if (!lost || this.stopping || Date.now() >= deadline) return sent;
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        // 'held': the run failed with the event still queued (kept for `engine.retry`): 'queued' now.
        if (outcome === 'held') return sent;
        if (outcome) return { ...sent, outcome };
        if (Date.now() >= deadline) return sent;
        await new Promise((r) => setTimeout(r, 25));
      }
    } catch {
      return sent;
    }
  }

  /**
   * Runs `append` once this engine's earlier appends to the run's inbox have settled, so that events sent
   * to one run without awaiting each send apply in the order of the calls, as `actor.send` in a loop
   * would. Each append otherwise took its own pooled connection, and the inbox's order was the order
   * they were granted the run's row lock in: 30 sends in a loop came out shuffled on Postgres. Sends
   * from other processes are ordered as they reach the database. A call waits for the one before it at
   * most one statement timeout: behind a run's row held locked, the k-th queued send waited k timeouts
   * (with a one-hour lease, 15 minutes each), `cancel` behind them all.
   */
  private inCallOrder<T>(runId: string, append: () => Promise<T>): Promise<T> {
    const previous = this.appending.get(runId);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const waited = previous
      ? Promise.race([previous, new Promise<void>((resolve) => (timer = setTimeout(resolve, this.settings.statementTimeoutMs)))])
      : Promise.resolve();
    const result = waited.then(() => {
      clearTimeout(timer);
      return append();
    });
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    this.appending.set(runId, settled);
    void settled.then(() => {
      if (this.appending.get(runId) === settled) this.appending.delete(runId);
    });
    return result;
  }

  /** Appends to the inbox; `buffer` undefined takes the run's workflow default (`signals.buffer`). */
  private async enqueue(
    runId: string,
    event: object,
    dedupeKey: string | null,
    buffer?: SendOptions['buffer'] | null,
  ): Promise<SendResult> {
    const db = await this.db();
    const run = await getRunHead(db, runId);
    if (!run) throw new RunNotFoundError(runId);
    if (isFinalStatus(run.status)) return this.refuseFinished(db, runId, event, dedupeKey, run.status);
    // The run's own version's default, else the current one's (a run of a version this deploy lacks).
    const chosen =
      buffer === undefined
        ? (this.definition(run.workflow, run.workflowVersion) ?? this.definition(run.workflow))?.signals?.buffer
        : buffer;
    const bufferMs = chosen === true ? DEFAULT_ENGINE_OPTIONS.signalBufferMs : chosen ? chosen.forMs : null;
    const { appended, id, finished } = await againIfVictim(() =>
      appendSignal(db, runId, event, dedupeKey, bufferMs, this.settings.clock.now()),
    );
    // The run finished (or was deleted) after the read above: refused as if it had been seen finished.
    if (finished) return this.refuseFinished(db, runId, event, dedupeKey);
    if (appended) {
      this.worker?.onWake(runId);
      return { delivered: true, id, outcome: 'queued' };
    }
    // Not appended: the key is taken (or was, by a signal now ignored: then it is free and sent again).
    const taken = dedupeKey === null ? null : await signalByDedupeKey(db, runId, dedupeKey, event);
    if (taken === null) return this.enqueue(runId, event, dedupeKey, buffer);
    // The earlier signal's id, as a finished run answers (refuseFinished): it was null here.
    return { delivered: false, id: taken.id, outcome: 'duplicate', ...(taken.sameEvent ? {} : { differentEvent: true as const }) };
  }

  /**
   * An event for a finished run: sending again what the run already took (a caller retrying, a program
   * run twice) is answered as the duplicate it is; anything else is a {@link RunStateError}.
   */
  private async refuseFinished(
    db: Queryable,
    runId: string,
    event: object,
    dedupeKey: string | null,
    status?: string,
  ): Promise<SendResult> {
    const taken = dedupeKey === null ? null : await signalByDedupeKey(db, runId, dedupeKey, event);
    if (taken !== null)
      return { delivered: false, id: taken.id, outcome: 'duplicate', ...(taken.sameEvent ? {} : { differentEvent: true as const }) };
    // The status as read before, or (the run finished after that read) read now.
    const finished = status ?? (await getRunHead(db, runId))?.status;
    if (finished === undefined) throw new RunNotFoundError(runId);
    throw new RunStateError(`Run ${runId} has already finished (${finished}); it accepts no more events.`);
  }

  /** Cancels a run: aborts its steps, stops its children, runs the definition's cleanup. */
  async cancel(runId: string, reason = 'cancelled'): Promise<CancelResult> {
    // Stored as the run's error message: text Postgres takes, of a bounded size.
    checkText('The cancellation reason', reason, MAX_REASON_BYTES, true);
    // In call order with this engine's sends to the run: an event sent before the cancel is stored
    // before it (and a pending run is not cancelled in place ahead of it), one sent after comes after.
    return this.inCallOrder(runId, () => this.cancelNow(runId, reason));
  }

  /**
   * Who runs a cleanup this engine's `cancel` runs (pending-cancel.ts `CleanupRunner`): its lease is named
   * after this engine's worker's owner while one runs (`<owner>:cleanup:<8 hex>`, as the worker's sweep
   * names its own), so that a worker started again under its `--worker-id` takes it back at once once this
   * process is proven gone (previous-incarnations.ts). Named after the worker id alone, it was not
   * recognised as that owner's, and the restart waited out its lease.
   */
  private cleanupRunner(): CleanupRunner {
    return { worker: this.workerId, logger: this.settings.logger, leaseMs: this.settings.leaseMs, leaseOwner: this.worker?.owner };
  }

  private async cancelNow(runId: string, reason: string): Promise<CancelResult> {
    const db = await this.db();
    const run = await getRun(db, runId);
    if (!run) throw new RunNotFoundError(runId);
    const finished = (status: RunStatus): CancelResult => ({
      cancelled: false,
      status,
      message: `Run ${runId} had already finished (${status}); nothing to cancel.`,
    });
    // Only a run that ran (its snapshot stored) is ever marked: one that never ran has nothing to clean
    // up, whatever its message says (written by hand or another tool: test/h9-cancel-forged-marker.test.ts).
    if (isCleanupOwed(run)) {
      // Cancelled in place by a call that never learnt it (every answer lost) or died before the
      // cleanup: this call runs it, if this engine has the run's version — unless a worker's sweep
      // (owed-cleanups.ts) or another call is running it now, or ran it since the run was read.
      const outcome = await runCleanupIfOwed(db, run, (name, version) => this.definition(name, version), this.cleanupRunner());
      if (outcome === 'ran')
        return {
          cancelled: true,
          status: 'cancelled',
          message: `Run ${runId} was cancelled while queued; its cleanup, still owed, ran now.`,
        };
      if (outcome === 'busy')
        return {
          cancelled: true,
          status: 'cancelled',
          message:
            `Run ${runId} was cancelled while queued; its cleanup is being run by a worker or the call that cancelled it (or ` +
            `that call's process was cut off from the database): a worker that registers ${run.workflow}@${run.workflowVersion} ` +
            `runs it if it is still owed.`,
        };
      if (outcome === 'unregistered')
        return {
          cancelled: false,
          status: 'cancelled',
          message:
            `Run ${runId} was cancelled while queued and its cleanup is still owed, but this process does not register ` +
            `${run.workflow}@${run.workflowVersion}: a worker that registers that version runs it (it looks for owed cleanups ` +
            `every lease), as does a cancel from a process that registers it.`,
        };
    }
    if (isFinalStatus(run.status)) return finished(run.status);
    if (run.status === 'pending') {
      // Not running: cancelled in place if no worker took it meanwhile. One that never started has
      // nothing to clean up; a retried run waiting in its key's queue ran before (its snapshot), so its
      // definition's cleanup runs here, with that snapshot's context — a worker would have.
      const def = run.snapshot != null ? this.definition(run.workflow, run.workflowVersion) : undefined;
      const entries: HistoryEntry[] = [{ type: 'run.cancelled', data: { reason } }];
      const unknown = (err: unknown) =>
        this.settings.logger.warn({ err, runId }, `rmapp: the cancellation of run ${runId} got no answer; sent again (it applies once)`);
      // Its history row names this call, not only this engine's worker id: a resend recognises its own
      // landed cancellation by it, and every engine of one process has the same default worker id
      // (hostname:pid), so a cancellation another engine applied was taken for this one's
      // (test/adv11-cancel-shared-worker-id.test.ts).
      const writer = `${this.workerId}:${randomUUID().slice(0, 8)}`;
      // Marked owed with the cancellation, cleared once it ran: a call that throws (no answer came) or dies
      // before it leaves it to the next cancel of the run (pending-cancel.ts `runOwedCleanup`). Marked too
      // when this process does not register the run's version, which may have a cleanup: a worker of that
      // version runs it (or clears the mark, for a version without one: owed-cleanups.ts). Skipped here, it
      // never ran anywhere (test/h218-cancel-other-version-cleanup.test.ts).
      const cleanupOwed = run.snapshot != null && (def === undefined || def.cleanup !== undefined);
      // Held from before the mark is written until the cleanup ran: a cancel meanwhile leaves it to this
      // call. Not when this call cannot run it: a worker's sweep may, at once.
      const hold = cleanupOwed && def ? await holdCleanup(db, runId) : null;
      let cancelled: boolean;
      try {
        cancelled = await cancelPendingInPlace(db, run, cancelledError(reason), entries, writer, unknown, { cleanupOwed });
        // Run here only under the lock. Refused it, another call is cancelling the run (it took the lock
        // first and its statement is on its way): whichever statement lands, the mark is written with it,
        // and the holder runs the cleanup under the lock (below, when this call's landed first; a worker's
        // sweep or a cancel again if the holder died, owed-cleanups.ts). Run here too, it ran twice at
        // once: the holder let go, and a cancel made then took the lock and found the mark.
        if (cancelled && cleanupOwed && def && hold?.held)
          await runOwedCleanup(db, { runId, reason, context: snapshotContext(run), definition: def }, this.cleanupRunner());
        // Another call's cancellation landed first, and it left the cleanup to this call, which holds the
        // lock: run now rather than at a worker's next sweep (read again: a worker may have taken the run).
        if (!cancelled && hold?.held && def) {
          const now = await getRun(db, runId);
          const why = (now?.error as { message?: unknown } | null)?.message;
          if (now && isCleanupOwed(now))
            await runOwedCleanup(
              db,
              { runId, reason: typeof why === 'string' ? why : reason, context: snapshotContext(now), definition: def },
              this.cleanupRunner(),
            );
        }
      } finally {
        await hold?.release();
      }
      if (cancelled) {
        // An admitted run no worker had claimed yet held a slot of its key: the next queued run takes it.
        if (run.concurrencyKey && run.admitted) await this.admitNow(db, run.concurrencyKey);
        const message =
          run.snapshot != null
            ? `Run ${runId} cancelled while it waited for a slot of its concurrency key.` +
              (cleanupOwed && !def
                ? ` This process does not register ${run.workflow}@${run.workflowVersion}: its cleanup, if that version has one, ` +
                  `is owed to a worker that registers it (within a lease) or a cancel from a process that does.`
                : cleanupOwed && !hold?.held
                  ? ` Another call was cancelling it at the same time: its cleanup is left owed to a worker that registers ` +
                    `${run.workflow}@${run.workflowVersion} (within a lease) or a cancel called again.`
                  : '')
            : `Run ${runId} cancelled before it started.`;
        return { cancelled: true, status: 'cancelled', message };
      }
    }
    try {
      await this.enqueue(runId, { type: CANCEL_SIGNAL, reason }, CANCEL_SIGNAL, null);
    } catch (err) {
      // The run finished while this call looked at it (a worker took the pending run and ended it).
      const now = await getRun(db, runId);
      if (now && isFinalStatus(now.status)) return finished(now.status);
      throw err;
    }
    return { cancelled: true, status: run.status, message: `Cancellation of run ${runId} requested; its worker applies it.` };
  }

  /**
   * Admits the next queued runs of `key` into its free slots now (claims.ts `admitKey`) rather than at a
   * worker's pass over the queued keys. The call's own work is done (the run stored, retried or
   * cancelled): a failure here is logged, not thrown, and a worker's pass admits them later.
   */
  private async admitNow(db: Database, key: string): Promise<void> {
    try {
      await admitKey(db, key);
    } catch (err) {
      this.settings.logger.warn({ err, key }, `rmapp: admitting runs of concurrency key ${key} failed; a worker's next pass does it`);
    }
  }

  /**
   * Retries a failed run from the step that failed, keeping everything it had done: the run goes back
   * to its last snapshot — the one persisted before the failing step's error reached the machine —
   * with fresh attempts, and the failed execution runs again. With `dropSignal`, the signal the run
   * failed handling (a guard or an action that threw on it) is left out: see {@link RetryOptions}.
   *
   * Refused (a {@link RunStateError}) when the machine itself ended the run in
   * one of its `failureStates` — a test failure it decided on, or a step's error it handled by going
   * there: its persisted snapshot is that final state, no step is left to run again, and a retry
   * would fail again at once. Such a run is continued by a new run (the GitHub service's `@bot retry`
   * does that for the issue templates and the review workflows).
   *
   * @example
   * await engine.retry(id); // after deploying a fixed definition
   * await engine.retry(id, { dropSignal: true }); // without the event it failed on
   */
  async retry(runId: string, options?: RetryOptions): Promise<{ status: RunStatus; message: string }> {
    const checked = checkRetryOptions(options);
    const db = await this.db();
    const { status, message, concurrencyKey } = await retryFailedRun(db, this.retryHost, runId, checked);
    if (status === 'pending' && concurrencyKey) await this.admitNow(db, concurrencyKey);
    this.worker?.poke();
    return { status, message };
  }

  private readonly retryHost: RetryHost = {
    clockNow: () => this.settings.clock.now(),
    workerId: this.workerId,
    keyed: (workflow, version) => {
      const def = this.definition(workflow, version);
      return def ? !!def.concurrency : true;
    },
  };

  /**
   * Starts this process's worker. With `retry`, a start that fails on a transient error (the database
   * is down or restarting) is tried again with backoff (200 ms doubling to 5 s) until it works or
   * `retry.signal` aborts; any other error (a bad URL, a database newer than this code, a refused
   * login) is thrown at once. The CLI's `worker` and `serve` start this way.
   *
   * A call while a start is under way shares it. A call during a stop starts once the stop is done; a
   * stop that begins while it starts (or waits to retry) makes it throw ENGINE_STOPPED, and no worker
   * is left running.
   */
  startWorker(options: { retry?: StartRetry } = {}): Promise<void> {
    if (this.starting) return this.starting;
    const starting = this.startWorkerRetrying(options.retry).finally(() => {
      if (this.starting === starting) this.starting = null;
    });
    this.starting = starting;
    return starting;
  }

  private async startWorkerRetrying(retry?: StartRetry): Promise<void> {
    // Taken before anything is awaited: a stop called in the same tick aborts this start.
    const stopped = this.stopSignal.signal;
    // A start during a stop begins once the stop has closed what it closes.
    await this.stopping?.catch(() => {});
    if (stopped.aborted) throw stoppedWhileStarting();
    if (this.worker) return;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.startWorkerOnce(stopped);
      } catch (err) {
        // What a stop's close made fail (a migration cut off, say) is the stop, not a database fault.
        if (stopped.aborted) throw stoppedWhileStarting();
        if (!retry || retry.signal?.aborted || toErrorData(err).category !== 'transient') throw err;
        const delayMs = Math.min(5_000, 200 * 2 ** Math.min(attempt - 1, 5));
        retry.onRetry?.(err, attempt, delayMs);
        const wake = retry.signal ? AbortSignal.any([retry.signal, stopped]) : stopped;
        await sleep(delayMs, undefined, { signal: wake }).catch(() => {});
        if (stopped.aborted) throw stoppedWhileStarting();
        if (retry.signal?.aborted) throw err;
      }
    }
  }

  private async startWorkerOnce(stopped: AbortSignal): Promise<void> {
    const db = await this.db();
    if (stopped.aborted) throw stoppedWhileStarting();
    const suffix = randomUUID().slice(0, 8);
    const s = this.settings;
    this.worker = new Worker(db, this.registry, this.events, {
      workerId: s.workerId,
      explicitWorkerId: s.explicitWorkerId,
      owner: `${s.workerId}:${suffix}`,
      concurrency: s.concurrency,
      leaseMs: s.leaseMs,
      pollMs: s.pollMs,
      evictAfterMs: s.evictAfterMs,
      retryPolicies: s.retryPolicies,
      clock: s.clock,
      limits: s.limits,
      history: s.history,
      stepConcurrency: s.stepConcurrency,
      inspect: s.inspect,
      logger: s.logger,
    });
    const worker = this.worker;
    this.stopMetrics = instrumentMetrics(this.events, {
      activeRuns: () => worker.sessions.size,
      waitingRuns: () => countRuns(db, 'waiting'),
    });
    try {
      await this.worker.start();
    } catch (err) {
      // A worker that could not start holds nothing: close what it opened (its LISTEN connection would
      // keep the process alive, looking healthy while it does no work), then report.
      // (Not `stop()`: that would abort this start, which may be retried. A stop under way does it.)
      if (!stopped.aborted) await this.teardown(0).catch(() => {});
      throw err;
    }
    const retention = s.retention;
    if (retention) {
      this.retentionJob = startRetentionJob(db, {
        policy: { ...DEFAULT_RETENTION, ...retention.policy },
        intervalMs: retention.intervalMs,
        history: s.history,
        logger: s.logger,
      });
    }
  }

  /** A run held by this process's worker is awaited from its own commits (worker.ts `awaitFinish`). */
  protected override awaitLocalFinish(runId: string): Promise<RunRow | null> | null {
    return this.worker?.awaitFinish(runId) ?? null;
  }

  /** Lease owner id of this process's worker, or null when no worker runs. */
  get workerOwner(): string | null {
    return this.worker?.owner ?? null;
  }

  /**
   * Simulates a crash of this process's worker, for tests: it stops at once, writes and releases
   * nothing, and its runs stay leased until the lease expires (or a test expires it).
   */
  simulateCrash(): void {
    const worker = this.worker;
    this.worker = null;
    worker?.kill();
    this.stopMetrics?.();
    this.stopMetrics = null;
    void this.retentionJob?.stop();
    this.retentionJob = null;
  }

  /** Resolves once every change made so far by this process's runs is committed (for tests). */
  async settled(): Promise<void> {
    await this.worker?.committer.idle();
  }

  /** Runs held in memory by this process's worker (for tests and metrics). */
  get activeRuns(): number {
    return this.worker?.sessions.size ?? 0;
  }

  /**
   * Graceful stop: the worker claims nothing more, running steps get `graceMs` to finish, leases are
   * given back, and the database is closed if the engine opened it.
   */
  stop(options: { graceMs?: number } = {}): Promise<void> {
    // A start under way gives up: its retries stop, and a worker it made is stopped below. A start
    // called after this one is a new start (it waits for the stop).
    this.stopSignal.abort();
    this.stopSignal = stopController();
    // A start still opening the database (connecting to a server that does not answer, a migration
    // waiting for another's lock) holds nothing to finish: its opening is cut at once — the migration's
    // backend terminated, its one transaction rolled back — instead of being waited for up to the stop's
    // bound (15 s at the default lease: a SIGTERMed `rmapp worker` took that long to exit). PGlite's
    // opening (initdb, recovery) runs on this thread and cannot be cut: the stop waits for it (2–4 s).
    const abandonOpening = this.starting !== null && this.worker === null;
    this.starting = null;
    return this.teardown(options.graceMs ?? DEFAULT_ENGINE_OPTIONS.stopGraceMs, abandonOpening);
  }

  private teardown(graceMs: number, abandonOpening = false): Promise<void> {
    // A second call while the first runs waits for it (closing the database under the first one's last
    // writes would throw them away), then stops what was opened meanwhile: a read's opening of the
    // database queued behind the first close.
    const previous = this.stopping;
    const stopping = (async () => {
      await previous?.catch(() => {});
      await this.stopOnce(graceMs, abandonOpening);
    })().finally(() => {
      if (this.stopping === stopping) this.stopping = null;
    });
    this.stopping = stopping;
    return stopping;
  }

  /**
   * Bounded as the worker's stop is ({@link stopBoundMs}): when it gave runs up, or the retention pass
   * did not end in that time (a statement held on a lock, a database that stopped answering), the
   * database is closed by force, failing what is still in flight, so that the process can exit.
   */
  private async stopOnce(graceMs: number, abandonOpening: boolean): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    const leaseMs = this.settings.leaseMs;
    let force = (await worker?.stop(graceMs)) ?? false;
    this.stopMetrics?.();
    this.stopMetrics = null;
    const retention = this.retentionJob;
    this.retentionJob = null;
    if (retention) {
      let timer: NodeJS.Timeout | undefined;
      const ended = await Promise.race([
        retention.stop().then(() => true),
        new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), stopBoundMs(0, leaseMs)))),
      ]);
      clearTimeout(timer);
      force ||= !ended;
    }
    // Sends and cancels called before the stop are finished before the database closes, within the same
    // bound: 30 unawaited sends then `stop()` had some fail with DATABASE_CLOSED and the rest open the
    // database again after the stop (reopen-on-call), which nothing closed — an embedded store stayed
    // locked by the process (an adversarial pass).
    const appends = [...this.appending.values()];
    if (appends.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      const ended = await Promise.race([
        Promise.all(appends).then(() => true),
        new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), stopBoundMs(0, leaseMs)))),
      ]);
      clearTimeout(timer);
      force ||= !ended;
    }
    await this.closeDatabase({ force, forceAfterMs: stopBoundMs(0, leaseMs), abandonOpening });
  }
}

/** How {@link Engine.startWorker} retries a start that failed on a transient error. */
export interface StartRetry {
  /** Gives up (the last error is thrown) when aborted. */
  signal?: AbortSignal;
  /** Called before each wait, e.g. to say the database is not reachable yet. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

/** Creates an engine; nothing touches the database until the first call that needs it. */
export function createEngine(options: EngineOptions): Engine {
  return new Engine(options);
}

/**
 * `statement()`, made again (up to 5 times, 10–160 ms apart) while Postgres aborts it as a deadlock's
 * or a serialization conflict's victim, which wrote nothing: a send that met a migration swapping the
 * runs table got `deadlock detected` (CI, test/adv3-migrate-race.test.ts).
 */
async function againIfVictim<T>(statement: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await statement();
    } catch (err) {
      if (attempt >= 5 || !VICTIM_SQLSTATES.has(String((err as { code?: unknown } | null)?.code))) throw err;
      await sleep(10 * 2 ** (attempt - 1));
    }
  }
}

/** A start whose `parentRunId` names no run (never started, or pruned): refused, nothing stored. */
function noParent(parentRunId: string): ValidationError {
  return new ValidationError(`Invalid parentRunId: there is no run with id ${JSON.stringify(parentRunId)}; start the parent first.`, [
    { path: 'parentRunId', message: 'no such run' },
  ]);
}
