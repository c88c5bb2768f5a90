/**
 * The API answers without the stacks of the errors they carry. A run's error, and each failed or
 * retried step in its history, is stored with the stack of the error a step threw; a stack names the
 * server's files (`/srv/app/node_modules/…`, the workflows' own source), which the API is no place to
 * show — to whoever holds the dashboard token, or anyone when the dashboard has none. The error keeps
 * its name, code, category, message and details; the stack stays in the store, for `rmapp runs show
 * --json` and the engine's `get` on the server, and a failure of the server itself is answered with a
 * 500 that names none (http-server.ts) and logged with its stack.
 */

/** Deeper nesting is answered as it is: the store keeps nothing this deep (durable-check.ts allows 256). */
const MAX_DEPTH = 300;

/** An error as the engine stores it (`ErrorData`, state_machine/errors.ts): a name, a message, a code and a category. */
function isStoredError(value: Record<string, unknown>): boolean {
  return (
    typeof value.name === 'string' &&
    typeof value.message === 'string' &&
    typeof value.code === 'string' &&
    typeof value.category === 'string'
  );
}

/**
 * `value` with the `stack` of every stored error in it left out, wherever it is (a run's error, a
 * history entry's `data.error` or `data.previousError`, an error a step returned in its output). A new
 * value: what the engine returned is not changed. Dates and other objects that are not plain data are
 * kept as they are (JSON writes them).
 *
 * @example
 * withoutErrorStacks({ error: { name: 'Error', message: 'm', code: 'E', category: 'permanent', stack: 'Error: m\n    at /srv/x.js:1:1' } });
 * // → { error: { name: 'Error', message: 'm', code: 'E', category: 'permanent' } }
 */
export function withoutErrorStacks<T>(value: T, depth = 0): T {
  if (depth > MAX_DEPTH || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item: unknown) => withoutErrorStacks(item, depth + 1)) as T;
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return value;
  const record = value as Record<string, unknown>;
  const dropStack = 'stack' in record && isStoredError(record);
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(record)) {
    if (dropStack && key === 'stack') continue;
    // Defined, not assigned: a key named `__proto__` (stored as any other in a run's input or an event)
    // assigned would set the copy's prototype and vanish from the answer.
    Object.defineProperty(out, key, { value: withoutErrorStacks(item, depth + 1), enumerable: true, writable: true, configurable: true });
  }
  return out as T;
}
