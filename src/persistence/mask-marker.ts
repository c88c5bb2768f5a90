/**
 * The one marker that stands where a secret was taken out of text: the service's masker
 * (src/rmapp/masking.ts, which re-exports it) writes it in comments, the API, logs and the CLI, and
 * the store's own redaction of a connection string (connection-string.ts `redactUrl`) in its errors. In the
 * lowest layer so that both can use it (the store imports nothing above it). The store wrote `***`:
 * one error read `postgres://app:***@db` from the library and `postgres://app:[REDACTED]@db` through
 * the CLI, and a search of the logs for the marker missed half of the masked passwords.
 *
 * @example
 * import { MASK } from 'rmapp';
 * if (line.includes(MASK)) console.log('a secret was masked here');
 */
export const MASK = '[REDACTED]';
