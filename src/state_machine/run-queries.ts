/**
 * The engine's read side: the registered definitions, the database (opened and migrated on first use),
 * and the queries an operator or a caller makes of runs — one run, a list, its history, its artifacts,
 * waiting for its end. {@link Engine} (engine.ts) adds starting, signalling and executing runs.
 */
import { setMaxListeners } from 'node:events';
import type { Database, Queryable } from '../persistence/database.ts';
import { openDatabase, withStatementTimeout } from '../persistence/database.ts';
import { migrate } from '../persistence/migrate.ts';
import { getHistory, getRun, getRunHead, listRuns, queuePosition, type ListRunsFilter } from '../persistence/runs.ts';
import { isFinalStatus, RUN_STATUSES, type HistoryEvent, type RunStatus } from '../persistence/run-status.ts';
import { listArtifacts, loadArtifact } from '../persistence/artifacts.ts';
import { queuedSignals, type QueuedSignal } from '../persistence/inbox.ts';
import { definitionProblem, type WorkflowDefinition } from './definition.ts';
import type { RunId, WorkflowOutput } from './typed-runs.ts';
import { RunNotFoundError, toErrorData, ValidationError, WaitStoppedError, WaitTimeoutError } from './errors.ts';
import { describeFailure } from './db-refusals.ts';
import { EngineEvents, type EngineEventName, type EngineListener } from './events.ts';
import { toRunInfo, type RunInfo } from './run-info.ts';
import type { RunRow } from '../persistence/row-types.ts';
import { resolveEngineOptions, type EngineOptions, type ResolvedEngineOptions } from './engine-options.ts';
import { refuseUnknownCallOptions, refuseUnknownOptions } from './option-names.ts';
import type { Limits } from './limits.ts';
import { systemClock } from './clock.ts';
import { StatusReads, untilNextBeat } from './status-reads.ts';
import { checkText, MAX_KEY_BYTES } from './request-checks.ts';
import { findUnstorableText } from './durable-check.ts';
import { shownConcurrencyKey } from './concurrency-key.ts';

/**
 * Definitions, database and run queries of an engine: the half of {@link Engine} (the class to use)
 * that reads. Not created on its own.
 *
 * @example
 * const run = await engine.get(id);           // one run with its children
 * const failed = await engine.list({ status: 'failed' });
 */
export abstract class RunQueries {
  readonly events: EngineEvents;
  readonly workerId: string;
  readonly limits: Limits;
  /** Every option with its default applied (engine-options.ts). */
  protected readonly settings: ResolvedEngineOptions;
  /** Every registered definition by `name@version`, previous versions included. */
  protected readonly registry = new Map<string, WorkflowDefinition>();
  /** The version of each name that new runs start on. */
  protected readonly latest = new Map<string, WorkflowDefinition>();
  /** The current opening of the database; null before the first use and after a close. */
  private opening: Opening | null = null;
  /** A close under way: an opening after it waits for it (two PGlite instances on one directory corrupt it). */
  private closing: Promise<void> | null = null;
  /**
   * Aborted (and replaced) when a stop begins (engine.ts `stop`): a start under way then gives up, and a
   * `waitFor` under way ends, with ENGINE_STOPPED.
   */
  protected stopSignal = stopController();
  /** `waitFor`'s reads of runs that are not executing here, one statement per turn of the event loop. */
  private readonly statusReads = new StatusReads(() => this.db(), readTimeout);

  constructor(protected readonly options: EngineOptions) {
    // From plain JavaScript: `createEngine()` or `workflows: { order }` failed as a TypeError of this file.
    if (typeof options !== 'object' || options === null || Array.isArray(options))
      throw new ValidationError(
        `createEngine takes one options object, e.g. createEngine({ workflows: [order] }); it was given ${options === undefined ? 'nothing' : describeValue(options)}.`,
      );
    for (const [list, defs] of [
      ['workflows', options.workflows],
      ['previousVersions', options.previousVersions ?? []],
    ] as const) {
      if (!Array.isArray(defs))
        throw new ValidationError(
          `createEngine: ${list} must be an array of defineWorkflow(...) results, e.g. { ${list}: [order] }; it is ${describeValue(defs)}.`,
        );
      // Every index, not `forEach`: it skips a hole (`[, order]`, `new Array(2)`), which the loops below
      // then read as undefined — a TypeError of this file again.
      for (let i = 0; i < defs.length; i++) {
        const problem = definitionProblem(defs[i]);
        if (problem) throw new ValidationError(`createEngine: ${list}[${i}] is not a defineWorkflow(...) result: ${problem}.`);
      }
    }
    for (const def of options.workflows) {
      const key = `${def.name}@${def.version}`;
      if (this.registry.has(key)) throw new ValidationError(`Workflow ${key} is registered twice.`);
      this.registry.set(key, def);
      // The last registered version of a name is the one new runs start on.
      this.latest.set(def.name, def);
    }
    for (const def of options.previousVersions ?? []) {
      const key = `${def.name}@${def.version}`;
      if (this.registry.has(key))
        throw new ValidationError(`Workflow ${key} is registered twice (previousVersions holds only versions that are not current).`);
      this.registry.set(key, def);
    }
    refuseUnknownOptions(options);
    this.settings = resolveEngineOptions(options);
    this.workerId = this.settings.workerId;
    this.limits = this.settings.limits;
    this.events = new EngineEvents(this.settings.logger);
  }

  /**
   * A registered definition: the exact `version` when given (a run's), else the one new runs start
   * on. Undefined when not registered (a run of a version this deploy no longer has).
   */
  definition(name: string, version?: string): WorkflowDefinition | undefined {
    return version ? this.registry.get(`${name}@${version}`) : this.latest.get(name);
  }

  /** The definitions new runs start on, one per name. */
  definitions(): WorkflowDefinition[] {
    return [...this.latest.values()];
  }

  /** The database, opened and migrated on first use; a failed opening is tried again on the next call. */
  db(): Promise<Database> {
    if (this.opening) return this.opening.promise;
    const closing = this.closing;
    const opening: Opening = { promise: Promise.resolve(null as never), db: null };
    opening.promise = (async () => {
      await closing;
      const d = this.options.database;
      // Every statement of the engine and its worker is bounded (engine-options.ts `statementTimeoutMs`).
      const bounded = (db: Database) => withStatementTimeout(db, this.settings.statementTimeoutMs);
      if (d && typeof d === 'object' && 'query' in d) {
        if (this.settings.migrate) await migrate(d);
        return bounded(d);
      }
      // A wrong connection string is named as the option it was given in (DATABASE_URL was named for it).
      const db = await openDatabase(
        typeof d === 'string'
          ? { url: d, urlSource: "createEngine's database option" }
          : d?.url !== undefined
            ? { urlSource: "createEngine's database.url option", ...d }
            : d,
      );
      // Known from the moment it is open, migrated or not: a close under way closes this one.
      opening.db = db;
      try {
        if (this.settings.migrate) await migrate(db);
      } catch (err) {
        await db.close().catch(() => {});
        throw err;
      }
      return bounded(db);
    })();
    this.opening = opening;
    // Not cached when it failed (the database was down, say): the next call opens it again.
    opening.promise.catch(() => {
      if (this.opening === opening) this.opening = null;
    });
    return opening.promise;
  }

  /** Subscribes to progress events of runs executed by this process. Returns an unsubscribe function. */
  on<K extends EngineEventName>(name: K, listener: EngineListener<K>): () => void {
    return this.events.on(name, listener);
  }

  /** One run with its children. Throws {@link RunNotFoundError} for an unknown id. */
  async get(runId: string): Promise<RunInfo> {
    return this.readRun(await this.db(), runId);
  }

  /** {@link get} through `db`: `waitFor` reads with a statement timeout. */
  private async readRun(db: Queryable, runId: string): Promise<RunInfo> {
    const row = await getRun(db, runId);
    if (!row) throw new RunNotFoundError(runId);
    const info = toRunInfo(row, this.registry);
    if (row.status === 'pending' && row.concurrencyKey && !row.admitted) {
      const { key, scope } = shownConcurrencyKey(row.concurrencyKey);
      info.queue = { key, scope, position: (await queuePosition(db, row)) ?? 1 };
      // A key holding a line break is quoted: as it is, `rmapp runs show` printed the rest of it as a line of its own.
      const shown = /[\n\r\t\u2028\u2029]/.test(key) ? JSON.stringify(key) : key;
      info.statusMessage ??= `Queued: position ${info.queue.position} for ${scope === 'global' ? 'global ' : ''}concurrency key ${shown}.`;
    }
    return info;
  }

  /** Runs, newest first. */
  async list(filter: ListRunsFilter = {}): Promise<RunInfo[]> {
    checkListFilter(filter);
    const rows = await listRuns(await this.db(), filter);
    return rows.map((r) => toRunInfo(r, this.registry));
  }

  /** The run's history, oldest first. */
  async history(runId: string): Promise<HistoryEvent[]> {
    const db = await this.db();
    if (!(await getRun(db, runId))) throw new RunNotFoundError(runId);
    return getHistory(db, runId);
  }

  /**
   * The final row of a run this process is executing, once its final write is durable (null if it
   * leaves this process unfinished); null when this process does not execute it. See engine.ts.
   */
  protected awaitLocalFinish(_runId: string): Promise<RunRow | null> | null {
    return null;
  }

  /**
   * Waits until the run has finished and returns it (with its output or error). A run this process
   * executes is awaited from its own final commit, without reading the database; any other run (or one
   * that leaves this process, to wait or to another worker) is read every `pollMs` (default 200), on
   * the clock's multiples of `pollMs`, and at once when this process finishes it. Those reads take only
   * the run's status, and every wait's read in one turn of the event loop shares one statement
   * (status-reads.ts): many callers waiting at once cost a statement per poll, not one each. An
   * `engine.stop()` while it waits ends the wait with {@link WaitStoppedError} (ENGINE_STOPPED), unless the run finished during the stop; the run goes on.
   * A read that fails on an outage (a lost connection, a restarting or unreachable server) is logged as
   * a warning and made again, backing off up to 5 s, until the deadline; a read that hangs ends at the
   * deadline too. Other errors (a closed database, a refused login) end the wait with that error.
   */
  async waitFor<TWorkflow = unknown>(
    runId: RunId<TWorkflow>,
    options: { timeoutMs?: number; pollMs?: number } = {},
  ): Promise<RunInfo<WorkflowOutput<TWorkflow>>> {
    refuseUnknownCallOptions('waitFor', options);
    checkWaitOptions(options);
    const deadline = Date.now() + (options.timeoutMs ?? Number.POSITIVE_INFINITY);
    // Taken now: a stop that begins after this call ends it (a waitFor called after a stop is a new wait).
    const stopped = this.stopSignal.signal;
    // Settles when a stop begins: a read of the run is raced against it (and against its own deadline).
    let giveUp: () => void = () => {};
    const stoppedWhileReading = new Promise<'stopped'>((resolve) => (giveUp = () => resolve('stopped')));
    let wake: (() => void) | null = null;
    // Finished here while this waited between reads: its session (still held while the event is
    // emitted) hands over the final row, so neither a status read nor a read of the run is made.
    let finishedHere: Promise<RunRow | null> | null = null;
    const off = this.events.on('run.finished', (e) => {
      if (e.runId !== runId) return;
      finishedHere ??= this.awaitLocalFinish(runId);
      wake?.();
    });
    const onStop = () => {
      wake?.();
      giveUp();
    };
    stopped.addEventListener('abort', onStop);
    let status = 'unknown';
    let failures = 0;
    try {
      for (;;) {
        const local = finishedHere ?? this.awaitLocalFinish(runId);
        finishedHere = null;
        if (local) {
          // A stop ends the session (finished within the grace, or handed over): this settles then.
          const row = await beforeDeadline(local, deadline);
          if (row === TIMED_OUT) throw new WaitTimeoutError(runId, options.timeoutMs ?? 0, 'running');
          if (row) return toRunInfo(row, this.registry) as RunInfo<WorkflowOutput<TWorkflow>>;
          status = 'running';
          continue;
        }
        if (stopped.aborted) throw new WaitStoppedError(runId, status);
        let run: RunInfo | { status: RunStatus } | null = null;
        // A read that hangs (a server that stopped answering) ends at the deadline or the stop all the same;
        // one under way at the deadline gets a second to answer (`timeoutMs: 0` reads the run once).
        const readUntil = Math.max(deadline, Date.now() + READ_GRACE_MS);
        // Its statements time out too: the connection of one left hanging is closed, not kept in the pool.
        const read = this.readForWait(runId, readUntil, stopped).then(
          (info) => ({ info }),
          (err: unknown) => ({ err }),
        );
        const got = await Promise.race([beforeDeadline(read, readUntil), stoppedWhileReading]);
        if (got === TIMED_OUT) throw new WaitTimeoutError(runId, options.timeoutMs ?? 0, status);
        if (got === 'stopped') throw new WaitStoppedError(runId, status);
        if ('info' in got) {
          run = got.info;
          failures = 0;
        } else {
          const err = got.err;
          // The stop closed the database under the read.
          if (stopped.aborted && (err as { code?: unknown }).code === 'DATABASE_CLOSED') throw new WaitStoppedError(runId, status);
          if (!readAgainAfter(err)) throw err;
          // An outage (a restart, a lost connection): the run goes on without us; read it again later.
          failures += 1;
          const { message } = describeFailure(`waiting for run ${runId} could not read it (attempt ${failures})`, err);
          this.settings.logger.warn({ err, runId, attempt: failures }, message);
        }
        if (run && isFinalStatus(run.status)) return run as RunInfo<WorkflowOutput<TWorkflow>>;
        if (run) status = run.status;
        const left = deadline - Date.now();
        if (left <= 0) throw new WaitTimeoutError(runId, options.timeoutMs ?? 0, status);
        if (stopped.aborted) throw new WaitStoppedError(runId, status);
        // Finished here while the read was under way (the read saw it before its end): no pause.
        if (finishedHere) continue;
        const pollMs = options.pollMs ?? 200;
        const waitMs = failures > 0 ? Math.min(READ_RETRY_MAX_MS, Math.max(pollMs, 100) * 2 ** (failures - 1)) : untilNextBeat(pollMs);
        await new Promise<void>((resolve) => {
          const timer = systemClock.setTimeout(resolve, Math.min(left, waitMs));
          wake = () => {
            systemClock.clearTimeout(timer);
            resolve();
          };
        });
        wake = null;
      }
    } finally {
      off();
      stopped.removeEventListener('abort', onStop);
    }
  }

  /**
   * One read of `waitFor`: the run's status, read with every other wait's in one statement
   * (status-reads.ts); the whole run once it has finished.
   */
  private async readForWait(runId: string, until: number, stopped: AbortSignal): Promise<RunInfo | { status: RunStatus }> {
    const status = await this.statusReads.read(runId, until, stopped);
    if (status === null) throw new RunNotFoundError(runId);
    if (!isFinalStatus(status)) return { status };
    // The wait has ended with the stop: reading the run now would open the database again.
    if (stopped.aborted) throw new WaitStoppedError(runId, status);
    return this.timedRead(runId, until);
  }

  /** {@link get}, each statement answering by `until` (epoch ms), and within 30 s whatever `until`. */
  private async timedRead(runId: string, until: number): Promise<RunInfo> {
    const db = await this.db();
    const timed: Queryable = { query: (text, params) => db.query(text, params, { timeoutMs: readTimeout(until) }) };
    return this.readRun(timed, runId);
  }

  /**
   * The signals still in a run's inbox, oldest first — at most `limit` (default 20, at most 1,000), with
   * `more` when there are others: for a failed run, what a retry would deliver, and the ids
   * `engine.retry(id, { dropSignal: n })` can leave out. None for a run that succeeded, was cancelled, timed
   * out, or failed in a way no retry resumes (a failure state, a passed deadline): nothing will take what
   * it left in its inbox (persistence/inbox.ts `queuedSignals`).
   */
  async queuedSignals(runId: string, limit = 20): Promise<{ signals: QueuedSignal[]; more: boolean }> {
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) {
      throw new ValidationError(`queuedSignals' limit must be an integer from 1 to 1000 (got ${String(limit).slice(0, 40)}).`, [
        { path: 'limit', message: 'out of range' },
      ]);
    }
    const db = await this.db();
    if (!(await getRunHead(db, runId))) throw new RunNotFoundError(runId);
    return queuedSignals(db, runId, limit);
  }

  /** An artifact of a run (a step's `saveArtifact`, or an offloaded step output's `$artifact`). */
  async getArtifact<T = unknown>(runId: string, name: string): Promise<T | undefined> {
    checkText('The artifact name', name, MAX_KEY_BYTES);
    const db = await this.db();
    if (!(await getRun(db, runId))) throw new RunNotFoundError(runId);
    return (await loadArtifact(db, runId, name)) as T | undefined;
  }

  /** Names and sizes of a run's artifacts. */
  async artifacts(runId: string): Promise<{ name: string; bytes: number; createdAt: Date }[]> {
    const db = await this.db();
    if (!(await getRun(db, runId))) throw new RunNotFoundError(runId);
    return listArtifacts(db, runId);
  }

  /**
   * Closes the database if this engine opened it; the next call that needs it opens it again. With
   * `force`, or once `forceAfterMs` has passed, its connections are destroyed (statements in flight fail).
   * With `abandonOpening`, an opening still under way is cut at once, whatever `forceAfterMs`.
   */
  protected async closeDatabase(options: { force?: boolean; forceAfterMs?: number; abandonOpening?: boolean } = {}): Promise<void> {
    const opening = this.opening;
    this.opening = null;
    const d = this.options.database;
    // The caller's own database: theirs to close (and not waited for).
    if ((d && typeof d === 'object' && 'query' in d) || !opening) return;
    const forceAfterMs = options.force ? 0 : (options.forceAfterMs ?? Infinity);
    const closing = closeOpening(opening, forceAfterMs, options.abandonOpening ? 0 : forceAfterMs);
    this.closing = closing;
    try {
      await closing;
    } finally {
      if (this.closing === closing) this.closing = null;
    }
  }
}

/** One opening of the engine's database: `db` is set once it is open, before it is migrated. */
interface Opening {
  promise: Promise<Database>;
  db: Database | null;
}

/**
 * Closes what `opening` opened. It may still be under way (a migration waiting on a server that does
 * not answer): past `openingForceAfterMs` its connections are destroyed, and past `forceAfterMs` (0: at
 * once) those of the open database, failing what is in flight.
 */
async function closeOpening(opening: Opening, forceAfterMs: number, openingForceAfterMs: number): Promise<void> {
  const settled = opening.promise.then(
    () => true,
    () => true,
  );
  if (!(await settlesWithin(settled, openingForceAfterMs))) await opening.db?.close({ force: true });
  await settled;
  const db = opening.db;
  if (!db) return;
  // An owed cleanup still running (a cancel's, a sweep's cut off by the stop's bound) goes on in this
  // process after the close: the embedded store's close keeps its lease (persistence/running-cleanups.ts).
  if (forceAfterMs === 0) return db.close({ force: true });
  if (!(await settlesWithin(db.close(), forceAfterMs))) await db.close({ force: true });
}

/**
 * The controller of {@link RunQueries.stopSignal}: every `waitFor` under way listens to its signal, so it
 * has no listener limit (Node warns of a leak past 10, and 50 concurrent waits are normal).
 */
export function stopController(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}

const TIMED_OUT = Symbol('timed out');

/** Refuses a `timeoutMs` or `pollMs` that would make `waitFor` expire at once or poll without pause. */
function checkWaitOptions(options: { timeoutMs?: number; pollMs?: number }): void {
  const { timeoutMs, pollMs } = options;
  if (timeoutMs !== undefined && !(typeof timeoutMs === 'number' && timeoutMs >= 0 && !Number.isNaN(timeoutMs))) {
    throw new ValidationError(
      `waitFor: timeoutMs must be a number of milliseconds ≥ 0 (got ${String(timeoutMs)}); leave it out to wait without limit.`,
    );
  }
  if (pollMs !== undefined && !(typeof pollMs === 'number' && pollMs > 0 && Number.isFinite(pollMs))) {
    throw new ValidationError(`waitFor: pollMs must be a positive number of milliseconds (got ${String(pollMs)}); the default is 200.`);
  }
}

/** The longest pause between two reads of a run while the database fails (`waitFor`). */
const READ_RETRY_MAX_MS = 5_000;

/** How long past its deadline a read under way may still answer (`waitFor`). */
const READ_GRACE_MS = 1_000;

/** A read's statement timeout is this much past the time `waitFor` gives it: the wait ends first. */
const READ_TIMEOUT_SLACK_MS = 100;

/** The statement timeout of a read of `waitFor` that must answer by `until` (epoch ms). */
function readTimeout(until: number): number {
  return Math.min(READ_STATEMENT_MAX_MS, Math.max(1, until - Date.now())) + READ_TIMEOUT_SLACK_MS;
}

/**
 * The longest one read of `waitFor` waits for an answer, however long the wait: a read whose server
 * stopped answering then fails (and is made again on a new connection) instead of hanging for as long
 * as TCP takes to notice. 30 s: a read of one run takes milliseconds; the pool's connect timeout is 30 s too.
 */
const READ_STATEMENT_MAX_MS = 30_000;

/**
 * Whether `waitFor` reads the run again after `err`: an outage's errors (a lost connection, a restart,
 * a server that refuses connections for now) pass, as they do for the worker; a closed database, a
 * set-up mistake, a run that does not exist or a refusal by the database (a missing privilege, a
 * refused login: permanent SQLSTATEs) do not.
 */
function readAgainAfter(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'DATABASE_CLOSED') return false;
  // A read cancelled (pg_cancel_backend, a statement_timeout of the role): the run goes on; read it again.
  if (code === '57014') return true;
  return toErrorData(err).category === 'transient';
}

/** Whether `promise` settles within `ms` (`Infinity`: waits for it). */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return (await beforeDeadline(promise, Date.now() + ms)) !== TIMED_OUT;
}

/**
 * Calls `fn` once `deadline` (epoch ms; `Infinity`: never) passes, on the wall clock, which keeps a
 * delay longer than a Node timer holds (a `timeoutMs` of a month must not expire at once). Returns the
 * cancel function.
 */
function atDeadline(deadline: number, fn: () => void): () => void {
  if (deadline === Number.POSITIVE_INFINITY) return () => {};
  const timer = systemClock.setTimeout(fn, Math.max(0, deadline - Date.now()));
  return () => systemClock.clearTimeout(timer);
}

/** `promise`'s value, or {@link TIMED_OUT} once `deadline` (epoch ms) passes. */
async function beforeDeadline<T>(promise: Promise<T>, deadline: number): Promise<T | typeof TIMED_OUT> {
  if (deadline === Number.POSITIVE_INFINITY) return promise;
  let cancel = () => {};
  const expired = new Promise<typeof TIMED_OUT>((resolve) => {
    cancel = atDeadline(deadline, () => resolve(TIMED_OUT));
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    cancel();
  }
}

/** The largest page `engine.list` returns. */
const MAX_LIST_LIMIT = 10_000;

/** Refuses a list filter the database would refuse with a message that names neither (a NUL, a limit of -1 or 1e20). */
function checkListFilter(filter: ListRunsFilter): void {
  refuseUnknownCallOptions('list', filter);
  const statuses: unknown[] =
    filter.status === undefined ? [] : Array.isArray(filter.status) ? [...(filter.status as unknown[])] : [filter.status];
  for (const status of statuses) {
    if (!(RUN_STATUSES as readonly unknown[]).includes(status)) {
      throw new ValidationError(
        `list: status must be one of ${RUN_STATUSES.join(', ')} (got ${JSON.stringify(String(status).slice(0, 40))}).`,
      );
    }
  }
  const limit = filter.limit;
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1 && limit <= MAX_LIST_LIMIT)) {
    throw new ValidationError(`list: limit must be an integer from 1 to ${MAX_LIST_LIMIT} (got ${String(limit)}).`);
  }
  if (filter.createdAfter !== undefined && !(filter.createdAfter instanceof Date && !Number.isNaN(filter.createdAfter.getTime())))
    throw new ValidationError('list: createdAfter must be a valid Date.');
  // The instant goes to Postgres as its ISO string, which it reads for years 1 to 9999 only: it has no
  // year 0, and refused `+275760-09-13…` and `-000001-…` as a database error.
  const year = filter.createdAfter?.getUTCFullYear();
  if (year !== undefined && (year < 1 || year > 9999))
    throw new ValidationError(
      `list: createdAfter must be a Date from year 1 to 9999 (got ${(filter.createdAfter as Date).toISOString()}).`,
    );
  if (filter.inputContains !== undefined) {
    const json = (() => {
      try {
        return JSON.stringify(filter.inputContains);
      } catch {
        return undefined;
      }
    })();
    if (!json?.startsWith('{') || Array.isArray(filter.inputContains))
      throw new ValidationError('list: inputContains must be a plain object that JSON can carry.');
    checkText('list: inputContains', json, MAX_KEY_BYTES, true);
    // Its strings, not only its JSON text, where a NUL or a lone surrogate is escaped (`\u0000`): jsonb
    // refused the escape as a database error.
    const bad = findUnstorableText(filter.inputContains, 'list: inputContains');
    if (bad) throw new ValidationError(`${bad.path} ${bad.problem}.`, [{ path: bad.path, message: bad.problem }]);
  }
  for (const [field, value] of [
    ['workflow', filter.workflow],
    ['idPrefix', filter.idPrefix],
    ['parentRunId', filter.parentRunId],
  ] as const) {
    if (value !== undefined) checkText(`list: ${field}`, value, MAX_KEY_BYTES, true);
  }
}

/** A value as an error message names it: its kind, and an object's keys (`an object with keys order, review`). */
function describeValue(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'object') {
    const keys = Object.keys(value).slice(0, 5);
    return keys.length ? `an object with keys ${keys.join(', ')}` : 'an empty object';
  }
  return `a ${typeof value}`;
}
