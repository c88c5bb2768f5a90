/**
 * Errors are data with a stable code and a category. Once an error has crossed the database it is a
 * plain object (XState persists `Error` as `{}`), so code matches on `code`/`category`, never on
 * `instanceof`.
 */
import { BIDI_CONTROL_CLASS } from '../persistence/bidi-controls.ts';
import { holdsRefusedEscape } from '../persistence/history-codec.ts';
import { clipMiddle } from './clipped-text.ts';
import { didYouMean } from './did-you-mean.ts';

/**
 * What JSON leaves as it is and a terminal or a page must not obey: DEL, the C1 controls (U+009B starts
 * a terminal sequence) and the bidirectional controls (persistence/bidi-controls.ts).
 */
const DISPLAY_CONTROLS = new RegExp(`[\\u007f-\\u009f${BIDI_CONTROL_CLASS}]`, 'g');

/** How much of a caller's value an error quotes: a 10 kB id or a 1 MiB name is not echoed whole. */
const MAX_SHOWN = 200;

/** `value` cut at {@link MAX_SHOWN} characters. */
function clipShown(value: string): string {
  return value.length > MAX_SHOWN ? `${value.slice(0, MAX_SHOWN)}…` : value;
}

/**
 * A caller's value as an error quotes it: cut short, and quoted as JSON with the controls JSON leaves as
 * they are escaped too, so that a value typed at a terminal (or sent to the API) cannot rewrite the line
 * it is shown on, and a trailing CR or a look-alike's difference is visible.
 */
function shownValue(value: string): string {
  return JSON.stringify(clipShown(value)).replace(DISPLAY_CONTROLS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** What kind of failure it is; the category decides retry or fail and appears everywhere an error does. */
export const ERROR_CATEGORIES = [
  'transient',
  'rate_limited',
  'timeout',
  'permanent',
  'validation',
  'cancelled',
  'agent',
  'test_failure',
] as const;
export type ErrorCategory = (typeof ERROR_CATEGORIES)[number];

/** The persisted form of any error: JSON-safe, no class identity. */
export interface ErrorData {
  name: string;
  message: string;
  code: string;
  category: ErrorCategory;
  /** For `rate_limited`: how long the other side asked us to wait. */
  retryAfterMs?: number | undefined;
  stack?: string | undefined;
  details?: Record<string, unknown> | undefined;
  /**
   * The signal (inbox event) the run's machine was handling when it threw: `engine.retry(id, {
   * dropSignal: true })` retries the run without it, as Temporal's reset can leave a signal out.
   */
  signal?: { id: number; type: string } | undefined;
}

/**
 * Base class for errors rmapp raises or steps throw on purpose. `toJSON` makes it survive
 * `getPersistedSnapshot()` and the jsonb column intact.
 *
 * @example
 * throw new WorkflowError('GitHub is down', { code: 'GITHUB_5XX', category: 'transient' });
 */
export class WorkflowError extends Error {
  readonly code: string;
  readonly category: ErrorCategory;
  readonly retryAfterMs: number | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    message: string,
    options: {
      code: string;
      category: ErrorCategory;
      retryAfterMs?: number | undefined;
      details?: Record<string, unknown> | undefined;
      cause?: unknown;
    },
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code;
    this.category = options.category;
    this.retryAfterMs = options.retryAfterMs;
    this.details = options.details;
  }

  /** Plain data, the only form that crosses the database. */
  toJSON(): ErrorData {
    return toErrorData(this);
  }
}

/** Bad input from a caller: names the field and what is wrong. Never retried. */
export class ValidationError extends WorkflowError {
  constructor(
    message: string,
    readonly issues: { path: string; message: string }[] = [],
  ) {
    super(message, { code: 'VALIDATION', category: 'validation', details: { issues } });
  }
}

/**
 * A request that is well-formed but does not fit the run's state now: an event for a run that has
 * finished, a retry of a run that did not fail (or cannot run again). A `ValidationError` (never
 * retried, code `VALIDATION`), told apart so that the HTTP API answers 409 Conflict, as it does for any
 * request the resource's state refuses, and 400 only for a malformed request.
 */
export class RunStateError extends ValidationError {}

/** The coding agent failed or produced nothing usable. */
export class AgentError extends WorkflowError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(message, { code: 'AGENT_FAILED', category: 'agent', details });
  }
}

/** The repository's tests failed; `details` carries the output. */
export class TestFailureError extends WorkflowError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(message, { code: 'TESTS_FAILED', category: 'test_failure', details });
  }
}

/** A workflow name no definition is registered under. */
export class UnknownWorkflowError extends WorkflowError {
  constructor(name: string, known: string[]) {
    const given = String(name as unknown);
    // A name typed with a look-alike letter or a typo gets the registered one it is nearest to (only for
    // a name of a sane length: the distance is quadratic, and a caller's 1 MiB name is not a typo).
    const near = given.length <= MAX_SHOWN ? didYouMean(given, known) : undefined;
    super(
      `Unknown workflow ${shownValue(given)}${near ? ` (did you mean ${JSON.stringify(near)}?)` : ''}. Registered workflows: ${known.length ? known.join(', ') : '(none)'}.`,
      { code: 'UNKNOWN_WORKFLOW', category: 'validation', details: { name: clipShown(given), known } },
    );
  }
}

/**
 * A workflow's `concurrency.key` function threw at `engine.start`: a start of that workflow cannot say
 * which limit holds its run, and no run was stored. Its `cause` is what the function threw; the message
 * quotes that error's message, cut and escaped as a caller's value is (a key function reads the input).
 * Category `validation`: starting again with the same input throws again.
 *
 * @example
 * // concurrency: { limit: 1, key: (input) => input.repo.toLowerCase() }, started with no repo:
 * // ConcurrencyKeyError: The concurrency key function of workflow "Deploy" threw: "Cannot read properties of undefined …"
 */
export class ConcurrencyKeyError extends WorkflowError {
  constructor(workflow: string, cause: unknown) {
    const thrown = toErrorData(cause).message;
    super(
      `The concurrency key function of workflow ${shownValue(workflow)} threw: ${shownValue(thrown)}. No run was started: fix its concurrency.key (defineWorkflow) or the input it reads.`,
      {
        code: 'CONCURRENCY_KEY_THREW',
        category: 'validation',
        details: { workflow: clipShown(workflow), thrown: clipShown(thrown) },
        cause,
      },
    );
  }
}

/** A run id that is not in the database. */
export class RunNotFoundError extends WorkflowError {
  constructor(runId: string) {
    // String(): a caller's id of another type (a Symbol, which a template cannot print) is named too.
    const id = String(runId as unknown);
    super(`No run with id ${shownValue(id)}. List runs with \`rmapp runs list\`.`, {
      code: 'RUN_NOT_FOUND',
      category: 'validation',
      details: { runId: typeof runId === 'string' ? runId : id },
    });
  }
}

/** `waitFor` gave up before the run finished; the run itself goes on. */
export class WaitTimeoutError extends WorkflowError {
  constructor(runId: string, timeoutMs: number, status: string) {
    super(`Run ${runId} did not finish within ${timeoutMs} ms (status: ${status}).`, {
      code: 'WAIT_TIMEOUT',
      category: 'timeout',
      details: { runId, timeoutMs, status },
    });
  }
}

/**
 * `engine.stop()` was called while `waitFor` waited: the wait ends (it would otherwise read the run again
 * and again, reopening the database the stop closed, for as long as the run lasts); the run goes on.
 */
export class WaitStoppedError extends WorkflowError {
  constructor(runId: string, status: string) {
    super(
      `The engine was stopped while waiting for run ${runId} (status: ${status}); the run goes on. Wait for it again from an engine that runs.`,
      { code: 'ENGINE_STOPPED', category: 'cancelled', details: { runId, status } },
    );
  }
}

/**
 * SQLSTATEs of a statement Postgres aborted to break a serialization conflict or a deadlock: it wrote
 * nothing, so even a statement that is not idempotent can be made again (engine.ts `send`).
 */
export const VICTIM_SQLSTATES: ReadonlySet<string> = new Set(['40001', '40P01']);

/**
 * Postgres SQLSTATE classes that are worth retrying (serialization failure, deadlock, connection
 * loss, shutdown); constraint violations and syntax errors are not. Under Drizzle the code is on
 * `err.cause.code`.
 */
const RETRYABLE_SQLSTATES = new Set([
  ...VICTIM_SQLSTATES,
  '55P03',
  '57P01',
  '57P02',
  '57P03',
  '53300',
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
]);
const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
]);
/**
 * Whether `err` says the database could not be reached or gave up the connection just then — a network
 * error, a connection lost or refused (SQLSTATE class 08), a server shutting down or full (57P01–57P03,
 * 53300), a statement over the store's deadline (57014) or a connection dropped as silent
 * (`SILENT_CONNECTION`), or a pending cancel that never learned its outcome (`CANCEL_OUTCOME_UNKNOWN`) — as opposed to
 * an error of the request or a bug. The HTTP API answers these 503 (rmapp/server/http-server.ts):
 * another error classed transient for a step's retries (any unknown error is) is no outage.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null;
  const code = typeof e?.code === 'string' ? e.code : typeof e?.cause?.code === 'string' ? e.cause.code : undefined;
  if (!code) return false;
  if (code === 'CANCEL_OUTCOME_UNKNOWN' || code === 'SILENT_CONNECTION' || NETWORK_CODES.has(code)) return true;
  return isSqlState(code) && (code.startsWith('08') || ['57P01', '57P02', '57P03', '53300', '57014'].includes(code));
}

/** Programmer errors: retrying them only repeats the bug. */
const PROGRAMMER_ERRORS = new Set(['TypeError', 'ReferenceError', 'SyntaxError', 'RangeError']);

function isCategory(value: unknown): value is ErrorCategory {
  return typeof value === 'string' && (ERROR_CATEGORIES as readonly string[]).includes(value);
}

/**
 * Text Postgres can store: a NUL or a lone UTF-16 surrogate becomes U+FFFD. An error's message is text
 * from outside (a tool's stderr, a decoded buffer); with either in it, the write that records the
 * failure was refused, the worker gave the run up, and the step was reported as never finished
 * (test/adv2-history-text.test.ts) instead of failing with its message.
 */
export function storableText(text: string): string {
  return text.replace(UNSTORABLE, '\uFFFD');
}

/**
 * How much of an error's text is kept, in characters: its message and its stack each
 * ({@link MAX_ERROR_TEXT}), its name and code ({@link MAX_ERROR_WORD}), and its `details` as JSON
 * ({@link MAX_ERROR_DETAILS}; each string in them {@link MAX_DETAILS_STRING} once they are over) — the
 * head and the tail, with the number of characters left out between them (clipped-text.ts).
 *
 * An error is written at every attempt, three times (the attempt's history row, the step record, the
 * run's row when it fails) and goes into spans and every answer about the run; its size was the
 * thrower's. A step failing with a 5 MB message (an HTTP error quoting its response, a command's whole
 * output) wrote 10 MB (message and stack) per place per attempt — history is bounded in rows, not bytes
 * — and one of 140 MB failed the run with `WRITE_REJECTED` ("cannot be written as JSON: Invalid string
 * length") in place of its own error (an adversarial pass). 32 KiB keeps any message a person reads and
 * a stack of hundreds of frames.
 */
export const MAX_ERROR_TEXT = 32 * 1024;
/** See {@link MAX_ERROR_TEXT}. */
const MAX_ERROR_WORD = 1_000;
/** See {@link MAX_ERROR_TEXT}. */
export const MAX_ERROR_DETAILS = 64 * 1024;
/** See {@link MAX_ERROR_TEXT}. */
const MAX_DETAILS_STRING = 4 * 1024;

/** Error text as it is kept: at most `max` characters ({@link MAX_ERROR_TEXT}), storable. */
const errorText = (text: string, max = MAX_ERROR_TEXT): string => storableText(clipMiddle(text, max));
// eslint-disable-next-line no-control-regex -- NUL is what Postgres refuses: matching it is the point
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * An error's `details` as data JSON can always write and Postgres can always store. Error data is
 * recorded in the run's history, its step record and its final row: details JSON cannot write (a BigInt,
 * a cycle) made every one of those writes fail, so the run could not even record its failure and stayed
 * `running` (test/error-details.test.ts). Details JSON writes but jsonb refuses (a NUL, a lone surrogate)
 * had the same effect, and details whose reading throws (a getter, a `toJSON`, a proxy) or that nest
 * deeper than JSON.stringify's stack made this function throw in place of the step's own error
 * (test/adv3-error-details.test.ts). Details JSON can write and Postgres can store are kept as JSON reads them back;
 * others are copied with such values as strings (`12n`, `[Circular]`, `[Unreadable: …]`, `[Too deep]`).
 */
function writableDetails(details: unknown): Record<string, unknown> | undefined {
  if (details === undefined || details === null) return undefined;
  let text: string | undefined;
  try {
    text = JSON.stringify(details);
  } catch {
    text = undefined;
  }
  // JSON.stringify writes a NUL and a lone surrogate as escapes; only then is the text refused. A copy,
  // not the details themselves: they are written later, and a step's details object that changed or
  // closed meanwhile (a toJSON that then throws) failed that write (test/adv3-progress-later.test.ts).
  if (text !== undefined && text.length <= MAX_ERROR_DETAILS && !holdsRefusedEscape(text))
    return JSON.parse(text) as Record<string, unknown>;
  // Over the bound (MAX_ERROR_DETAILS): each string kept to its head and tail; if that is not enough (many
  // of them, or many objects), fewer objects and shorter strings (the rest `[Truncated]`); if that is not
  // enough either (an object of many keys), the details are left out, saying how large they were.
  const large = text === undefined || text.length > MAX_ERROR_DETAILS;
  if (!large) return asDetails(storableCopy(details, [], 0));
  for (const [objects, chars] of [
    [MAX_COPIED_OBJECTS, MAX_DETAILS_STRING],
    [MAX_ERROR_DETAILS / 256, 100],
  ] as const) {
    const kept = asDetails(storableCopy(details, [], 0, { left: objects }, chars));
    if ((JSON.stringify(kept)?.length ?? 0) <= MAX_ERROR_DETAILS) return kept;
  }
  const size = text === undefined ? 'details' : `${text.length} characters of details`;
  return { leftOut: `${size} left out: over the ${MAX_ERROR_DETAILS} characters an error keeps` };
}

/** A copy of details as an object (a value that is not one is kept under `value`). */
function asDetails(copy: unknown): Record<string, unknown> {
  return typeof copy === 'object' && copy !== null && !Array.isArray(copy) ? (copy as Record<string, unknown>) : { value: copy };
}

/** Nesting kept by {@link storableCopy}: far below JSON.stringify's stack (~5,000 levels in Node) and jsonb's (~5,000–20,000 at max_stack_depth 2 MB). */
const MAX_DETAILS_DEPTH = 100;

/**
 * Objects and arrays copied by one {@link storableCopy}: an object reached by many paths is copied once
 * per path, as JSON writes it, so a graph of a few dozen objects sharing their parts (`x = {a: y, b: y}`,
 * nested) copied into millions and ran the worker out of memory (an adversarial pass). The rest is
 * `"[Truncated]"`.
 */
const MAX_COPIED_OBJECTS = 10_000;

/** A JSON-writable, Postgres-storable copy of `value`; reading it may throw at any property. */
function storableCopy(
  value: unknown,
  ancestors: object[],
  depth: number,
  budget = { left: MAX_COPIED_OBJECTS },
  maxString?: number,
): unknown {
  if (typeof value === 'string') return maxString === undefined ? storableText(value) : errorText(value, maxString);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value !== 'object' || value === null) return value;
  if (ancestors.includes(value)) return '[Circular]';
  if (depth >= MAX_DETAILS_DEPTH) return '[Too deep]';
  if (--budget.left < 0) return '[Truncated]';
  try {
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') {
      const json: unknown = toJSON.call(value);
      if (json !== value) return storableCopy(json, ancestors, depth + 1, budget, maxString);
    }
    ancestors.push(value);
    try {
      if (Array.isArray(value)) return value.map((v) => storableCopy(v, ancestors, depth + 1, budget, maxString));
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(value)) {
        let v: unknown;
        try {
          v = (value as Record<string, unknown>)[key];
        } catch (err) {
          v = unreadable(err);
        }
        out[errorText(key, maxString ?? Infinity)] = storableCopy(v, ancestors, depth + 1, budget, maxString);
      }
      return out;
    } finally {
      ancestors.pop();
    }
  } catch (err) {
    return unreadable(err);
  }
}

/**
 * The text of a thrown object without a string `message`: its JSON, or — for one JSON cannot write (a
 * cycle, a BigInt, a `toJSON` that throws: JSON.stringify threw here, in the actor's error handler,
 * and ended the worker's process with the run still held) — the JSON of a copy with those values as
 * strings (`[Circular]`, `12n`, `[Unreadable: …]`).
 */
function thrownText(err: object): string {
  try {
    const json = JSON.stringify(err);
    if (json !== undefined) return json;
  } catch {
    return JSON.stringify(storableCopy(err, [], 0)) ?? String(err);
  }
  return String(err);
}

/** A JSON-writable, Postgres-storable copy of any value: what JSON cannot write becomes text (`12n`, `[Circular]`, `[Unreadable: …]`). */
export function storableValue(value: unknown): unknown {
  return storableCopy(value, [], 0);
}

function unreadable(err: unknown): string {
  try {
    return `[Unreadable: ${storableText(String((err as { message?: unknown } | null)?.message ?? err))}]`;
  } catch {
    return '[Unreadable]';
  }
}

/**
 * Turns anything thrown into {@link ErrorData}, classifying what it can: errors that carry a category
 * keep it; Postgres errors go by SQLSTATE; network errors are transient; aborts are cancellations;
 * programmer errors are permanent; any other error is transient (retried, as Temporal does).
 */
export function toErrorData(err: unknown): ErrorData {
  try {
    const data = errorDataOf(err);
    // A code is the thrower's text too: one holding a NUL made every write carrying the error fail.
    return { ...data, code: errorText(data.code, MAX_ERROR_WORD) };
  } catch (failure) {
    // A thrown value whose reading throws (a getter, a proxy, a Symbol's String()): this function is
    // called where a step, an action or a commit failed, and must not throw in place of that failure.
    return { name: 'Error', message: errorText(unreadable(failure)), code: 'THROWN_VALUE', category: 'permanent' };
  }
}

function errorDataOf(err: unknown): ErrorData {
  if (err === null || typeof err !== 'object') {
    return { name: 'Error', message: errorText(String(err)), code: 'THROWN_VALUE', category: 'permanent' };
  }
  const e = err as Record<string, unknown> & { cause?: Record<string, unknown> };
  const name = errorText(typeof e.name === 'string' ? e.name : 'Error', MAX_ERROR_WORD);
  const message = errorText(typeof e.message === 'string' ? e.message : thrownText(err));
  const stack = typeof e.stack === 'string' ? errorText(e.stack) : undefined;
  const base = { name, message, stack };
  if (isCategory(e.category)) {
    return {
      ...base,
      code: typeof e.code === 'string' ? e.code : 'ERROR',
      category: e.category,
      retryAfterMs: typeof e.retryAfterMs === 'number' ? e.retryAfterMs : undefined,
      details: writableDetails(e.details),
    };
  }
  if (typeof e.status === 'number' && e.status >= 400) return classifyHttp(e, e.status, base);
  const code = typeof e.code === 'string' ? e.code : typeof e.cause?.code === 'string' ? (e.cause.code as string) : undefined;
  if (name === 'AbortError') return { ...base, code: 'ABORTED', category: 'cancelled' };
  if (name === 'TimeoutError') return { ...base, code: 'TIMEOUT', category: 'timeout' };
  if (code && isSqlState(code)) {
    return { ...base, code: `PG_${code}`, category: RETRYABLE_SQLSTATES.has(code) || code.startsWith('08') ? 'transient' : 'permanent' };
  }
  if (code && NETWORK_CODES.has(code)) return { ...base, code, category: 'transient' };
  if (PROGRAMMER_ERRORS.has(name)) return { ...base, code: code ?? name.toUpperCase(), category: 'permanent' };
  return { ...base, code: code ?? 'ERROR', category: 'transient' };
}

type Headers = Record<string, string | number | undefined>;

function header(headers: Headers | undefined, name: string): string | undefined {
  const v = headers?.[name] ?? headers?.[name.toLowerCase()];
  return v === undefined ? undefined : String(v);
}

/**
 * HTTP failures (Octokit's RequestError and anything with a numeric `status`): 401/403 auth,
 * 404 not found, 422 validation, 429 and GitHub's secondary rate limits (a 403 with `retry-after`
 * or an exhausted `x-ratelimit-remaining`) rate-limited with the wait they ask for, 408 timeout,
 * 5xx transient.
 */
function classifyHttp(
  e: Record<string, unknown>,
  status: number,
  base: { name: string; message: string; stack?: string | undefined },
): ErrorData {
  const headers = ((e.response as { headers?: Headers } | undefined)?.headers ?? (e.headers as Headers | undefined)) as Headers | undefined;
  const retryAfter = header(headers, 'retry-after');
  const remaining = header(headers, 'x-ratelimit-remaining');
  const reset = header(headers, 'x-ratelimit-reset');
  let retryAfterMs: number | undefined;
  if (retryAfter !== undefined && Number.isFinite(Number(retryAfter))) retryAfterMs = Number(retryAfter) * 1000;
  else if (retryAfter !== undefined && !Number.isNaN(Date.parse(retryAfter)))
    retryAfterMs = Math.max(0, Date.parse(retryAfter) - Date.now());
  else if (remaining === '0' && reset !== undefined) retryAfterMs = Math.max(0, Number(reset) * 1000 - Date.now());
  const code = `HTTP_${status}`;
  const rateLimited =
    status === 429 || (status === 403 && (retryAfterMs !== undefined || remaining === '0' || /rate limit/i.test(base.message)));
  if (rateLimited) return { ...base, code, category: 'rate_limited', retryAfterMs: retryAfterMs ?? 60_000, details: { status } };
  if (status === 408) return { ...base, code, category: 'timeout', details: { status } };
  if (status >= 500) return { ...base, code, category: 'transient', details: { status } };
  if (status === 422 || status === 400) return { ...base, code, category: 'validation', details: { status } };
  const reason = status === 401 || status === 403 ? 'auth' : status === 404 ? 'not_found' : 'client_error';
  return { ...base, code, category: 'permanent', details: { status, reason } };
}

/**
 * A Postgres SQLSTATE: five digits or capitals whose class (the first two) starts with a digit —
 * `3D000` (no such database), `0A000` — or is one of the classes that start with a letter (`F0`,
 * `HV`, `P0` a RAISE, `XX`). Node's errno codes (`EPIPE`, `E2BIG`) are not. Only two-digit classes counted once: `3D000`
 * was taken for a transient error, and `rmapp worker` waited for ever on a database that does not exist.
 */
function isSqlState(code: string): boolean {
  return /^(?:[0-9][0-9A-Z]|F0|HV|P0|XX)[0-9A-Z]{3}$/.test(code);
}

/** Rebuilds a throwable from persisted data, for callers that want an `Error` (e.g. `waitFor`). */
export function fromErrorData(data: ErrorData): WorkflowError {
  const err = new WorkflowError(data.message, data);
  err.name = data.name;
  if (data.stack) err.stack = data.stack;
  return err;
}

/**
 * `engine.stop()` was called while the worker was starting: the start gives up (category `cancelled`,
 * so `startWorker({ retry })` does not try again) and no worker is left running.
 */
export function stoppedWhileStarting(): WorkflowError {
  return new WorkflowError('The engine was stopped while its worker was starting; no worker runs.', {
    code: 'ENGINE_STOPPED',
    category: 'cancelled',
  });
}

/**
 * The failure a cancelled run ends with (`engine.cancel`, or the `rmapp.cancel` signal): one shape
 * whether the run was cancelled before it started or stopped by its worker.
 */
export function cancelledError(reason: string): ErrorData {
  return { name: 'CancelledError', message: reason, code: 'CANCELLED', category: 'cancelled' };
}
