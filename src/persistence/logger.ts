/**
 * The logger the engine reports through: what went wrong in the background (a commit retried, a lease
 * lost, a listener that threw), where no caller is waiting to be told. It lives in the lowest layer so
 * that persistence (the retention job) and the engine share one type.
 *
 * The call shape is pino's (`logger.error(obj, msg)`, `logger.warn(msg)`), so a pino logger — the
 * service's (`src/rmapp/logger.ts`) — is passed as it is. The library is silent by default
 * ({@link silentLogger}): an embedding application chooses where its logs go.
 */

/** One level of a {@link Logger}: structured fields first, then the message (pino's order). */
export interface LogFn {
  (fields: object, message?: string): void;
  (message: string): void;
}

/**
 * What the engine logs through: `error` for a failure nothing else reports (a run that could not be
 * stopped, a listener that threw), `warn` for one it recovers from (a commit sent again, a lost lease).
 * Errors go in the `err` field, which pino serializes with their message and stack.
 *
 * @example
 * import { pino } from 'pino';
 * const engine = createEngine({ workflows, logger: pino() });
 */
export interface Logger {
  error: LogFn;
  warn: LogFn;
}

/**
 * Writes each entry as one line on stderr: `prefix` and the message (the fields as JSON when there is
 * none). For library code whose failures must stay visible when no logger was passed (a progress
 * comment GitHub refused, a warning of the GitHub client), where the engine's silence would hide them.
 *
 * @example
 * const log = options.log ?? stderrLogger('rmapp: ');
 * log.error({ err }, 'progress comment of run r-1: Bad credentials'); // "rmapp: progress comment of run r-1: Bad credentials"
 */
export function stderrLogger(prefix = ''): Logger {
  const line = (fields: object | string, message?: string): void => {
    const text = typeof fields === 'string' ? fields : (message ?? JSON.stringify(fields));
    process.stderr.write(`${prefix}${text}\n`);
  };
  return Object.freeze({ error: line, warn: line });
}

/** Logs nothing: the library's default (see {@link Logger}). */
export const silentLogger: Logger = Object.freeze({
  error: () => {},
  warn: () => {},
});
