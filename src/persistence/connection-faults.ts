/**
 * The errors a store's statements and listens fail with when their connection cannot serve them (closed,
 * timed out, gone silent), and the one way a pg connection is dropped at once; shared by
 * postgres-store.ts, listener.ts and pglite-store.ts.
 */
import type * as Pg from 'pg';

/** pg's error for a statement given to a connection already known dead: thrown before anything is sent. */
export const NOT_QUERYABLE = /^Client has encountered a connection error and is not queryable$/;

/** What a statement (or a listen) gets once its database's close() has begun. */
export function databaseClosed(description: string, how = ''): Error {
  return Object.assign(new Error(`The database ${description} was closed${how}; open it again to use it.`), {
    code: 'DATABASE_CLOSED',
  });
}

/**
 * Refuses a channel name Postgres would not keep as given: it truncates identifiers to 63 bytes, so a
 * longer channel was listened on under its first 63 bytes and its notifications (sent under the whole
 * name) never came, and two names alike in those bytes shared one channel. Empty and NUL are invalid.
 */
export function checkChannel(channel: string): void {
  const bytes = typeof channel === 'string' ? Buffer.byteLength(channel, 'utf8') : 0;
  if (bytes === 0 || bytes > 63 || channel.includes('\0'))
    throw Object.assign(
      new RangeError(
        `listen: the channel ${JSON.stringify(channel)} is not a usable Postgres channel name: it must be 1 to 63 bytes of UTF-8 (this one is ${bytes}) without NUL; use a shorter name.`,
      ),
      { code: 'INVALID_CHANNEL' },
    );
}

/**
 * A statement given `QueryOptions.timeoutMs` (database-types.ts) that did not answer in time (`stage`: it had a
 * connection and got no answer, or got no connection at all); its connection was closed.
 */
export function queryTimeout(description: string, ms: number, stage: 'no answer' | 'no connection'): Error {
  const what = stage === 'no answer' ? 'its connection was closed' : 'no connection to it could be made or freed in that time';
  return Object.assign(new Error(`Postgres at ${description} did not answer a statement within ${ms} ms; ${what}.`), {
    code: 'QUERY_TIMEOUT',
    category: 'transient',
  });
}

/**
 * The longest a statement waits for a connection (pg-pool counts a wait for a free one in the pool too,
 * and the LISTEN client its connect): a server that accepts TCP and never answers otherwise holds it,
 * and whatever waits for it, for ever (pg sets no limit by default). It fails as a transient error and
 * is tried again, as a refused connection is. 30 s: far beyond a healthy connect or pool wait here.
 */
export const CONNECT_TIMEOUT_MS = 30_000;

/**
 * Destroys a pg connection's socket now. `Client.end()` does this itself only when a statement is in
 * flight; an idle connection to a server that stopped answering would wait for its goodbye for ever.
 * Statements in flight fail ("Connection terminated", or `reason`), and the pool drops the client; a
 * connection still being made fails its connect with `reason`.
 */
export function destroyConnection(client: Pg.Client, reason?: Error): void {
  (client as unknown as { connection?: { stream?: { destroy(err?: Error): void } } }).connection?.stream?.destroy(reason);
}

/** The code of the error a connection dropped as silent (`openPostgres` (postgres-store.ts)'s `dropSilent`) fails with. */
export const SILENT_CONNECTION = 'SILENT_CONNECTION';

export function silentConnection(): Error {
  return Object.assign(new Error('The connection was dropped: it went silent with a statement that timed out.'), {
    code: SILENT_CONNECTION,
  });
}
