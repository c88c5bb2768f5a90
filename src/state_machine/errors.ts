/**
 * Errors are data with a stable code and a category. Once an error has crossed the database it is a
 * plain object (XState persists `Error` as `{}`), so code matches on `code`/`category`, never on
 * `instanceof`.
 */

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
  constructor(message: string, readonly issues: { path: string; message: string }[] = []) {
    super(message, { code: 'VALIDATION', category: 'validation', details: { issues } });
  }
}

/** A workflow name no definition is registered under. */
export class UnknownWorkflowError extends WorkflowError {
  constructor(name: string, known: string[]) {
    super(
      `Unknown workflow "${name}". Registered workflows: ${known.length ? known.join(', ') : '(none)'}.`,
      { code: 'UNKNOWN_WORKFLOW', category: 'validation', details: { name, known } },
    );
  }
}

/** A run id that is not in the database. */
export class RunNotFoundError extends WorkflowError {
  constructor(runId: string) {
    super(`No run with id "${runId}". List runs with \`rmapp runs list\`.`, {
      code: 'RUN_NOT_FOUND',
      category: 'validation',
      details: { runId },
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
 * Postgres SQLSTATE classes that are worth retrying (serialization failure, deadlock, connection
 * loss, shutdown); constraint violations and syntax errors are not. Under Drizzle the code is on
 * `err.cause.code`.
 */
const RETRYABLE_SQLSTATES = new Set(['40001', '40P01', '55P03', '57P01', '57P02', '57P03', '53300', '08000', '08001', '08003', '08004', '08006']);
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'ENETUNREACH', 'EHOSTUNREACH', 'UND_ERR_SOCKET', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED']);
/** Programmer errors: retrying them only repeats the bug. */
const PROGRAMMER_ERRORS = new Set(['TypeError', 'ReferenceError', 'SyntaxError', 'RangeError']);

function isCategory(value: unknown): value is ErrorCategory {
  return typeof value === 'string' && (ERROR_CATEGORIES as readonly string[]).includes(value);
}

/**
 * Turns anything thrown into {@link ErrorData}, classifying what it can: errors that carry a category
 * keep it; Postgres errors go by SQLSTATE; network errors are transient; aborts are cancellations;
 * programmer errors are permanent; any other error is transient (retried, as Temporal does).
 */
export function toErrorData(err: unknown): ErrorData {
  if (err === null || typeof err !== 'object') {
    return { name: 'Error', message: String(err), code: 'THROWN_VALUE', category: 'permanent' };
  }
  const e = err as Record<string, unknown> & { cause?: Record<string, unknown> };
  const name = typeof e.name === 'string' ? e.name : 'Error';
  const message = typeof e.message === 'string' ? e.message : JSON.stringify(err);
  const stack = typeof e.stack === 'string' ? e.stack : undefined;
  const base = { name, message, stack };
  if (isCategory(e.category)) {
    return {
      ...base,
      code: typeof e.code === 'string' ? e.code : 'ERROR',
      category: e.category,
      retryAfterMs: typeof e.retryAfterMs === 'number' ? e.retryAfterMs : undefined,
      details: (e.details as Record<string, unknown> | undefined) ?? undefined,
    };
  }
  const code = typeof e.code === 'string' ? e.code : typeof e.cause?.code === 'string' ? (e.cause.code as string) : undefined;
  if (name === 'AbortError') return { ...base, code: 'ABORTED', category: 'cancelled' };
  if (name === 'TimeoutError') return { ...base, code: 'TIMEOUT', category: 'timeout' };
  if (code && /^[0-9A-Z]{5}$/.test(code) && /^[0-9]{2}/.test(code)) {
    return { ...base, code: `PG_${code}`, category: RETRYABLE_SQLSTATES.has(code) || code.startsWith('08') ? 'transient' : 'permanent' };
  }
  if (code && NETWORK_CODES.has(code)) return { ...base, code, category: 'transient' };
  if (PROGRAMMER_ERRORS.has(name)) return { ...base, code: code ?? name.toUpperCase(), category: 'permanent' };
  return { ...base, code: code ?? 'ERROR', category: 'transient' };
}

/** Rebuilds a throwable from persisted data, for callers that want an `Error` (e.g. `waitFor`). */
export function fromErrorData(data: ErrorData): WorkflowError {
  const err = new WorkflowError(data.message, data);
  err.name = data.name;
  if (data.stack) err.stack = data.stack;
  return err;
}
