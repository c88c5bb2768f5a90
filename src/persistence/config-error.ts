/**
 * A mistake in the database's set-up, not an outage (code `DATABASE_CONFIG`, category `validation`):
 * retrying cannot fix it, so the engine's start does not retry it and the CLI shows its message, which
 * names what to change.
 */
export function configError(message: string, cause?: unknown): Error {
  return Object.assign(new Error(message, cause === undefined ? undefined : { cause }), {
    code: 'DATABASE_CONFIG',
    category: 'validation',
  });
}
