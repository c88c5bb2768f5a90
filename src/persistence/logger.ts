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

/** Logs nothing: the library's default (see {@link Logger}). */
export const silentLogger: Logger = Object.freeze({
  error: () => {},
  warn: () => {},
});
