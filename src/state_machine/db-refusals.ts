/**
 * Database errors that are the deployment's, not an outage's: the role lacks a privilege, rmapp's
 * tables or functions are missing (a database not migrated, a wrong `search_path`), the login or the
 * database itself is refused. Sending the same statement again cannot succeed until an operator changes
 * something, so the worker says so at error level, with what to do, instead of warning "retrying" as
 * it does for a lost connection. Other errors of those classes (a syntax error, say) are rmapp's own
 * and stay warnings. It still retries (with backoff): once the grant is made or the
 * database migrated, the runs continue from their last durable state and nothing is lost.
 */

/** SQLSTATE (`err.code`, or under Drizzle `err.cause.code`) of a Postgres error, if it is one. */
function sqlState(err: unknown): string | null {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null;
  const code = typeof e?.code === 'string' ? e.code : typeof e?.cause?.code === 'string' ? e.cause.code : null;
  return code !== null && /^[0-9A-Z]{5}$/.test(code) ? code : null;
}

/**
 * What an operator must fix when `err` is a deployment problem (see the module comment), or null for
 * anything else (an outage, a conflict, a data error), which the caller handles as before.
 *
 * @example
 * const fix = deploymentProblem(err); // 'grant the role rmapp connects as …' for SQLSTATE 42501
 */
function deploymentProblem(err: unknown): string | null {
  const code = sqlState(err);
  if (code === null) return null;
  if (code === '42501') {
    return (
      'the role rmapp connects as lacks the privilege the message names: it needs CONNECT on the database, USAGE on ' +
      "the schema, SELECT, INSERT, UPDATE, DELETE on rmapp's tables, USAGE, SELECT, UPDATE on its sequences and " +
      'EXECUTE on its functions; grant what is missing, or run `rmapp migrate` as a role that may grant it (README ' +
      '"Postgres and several workers")'
    );
  }
  if (UNDEFINED_OBJECT.has(code)) {
    return "rmapp's tables or functions are not where this connection looks: run `rmapp migrate` on this database, and check the URL's database and search_path";
  }
  if (code === '42P05' || code === '26000') {
    return 'rmapp prepares named statements, which a PgBouncer in transaction pooling mode breaks: use session pooling (docs/database-driver.md)';
  }
  // The connection string is not named: it may come from DATABASE_URL, a flag or an option (a connect's
  // own error names which, persistence/connection-string.ts `connectionError`).
  if (code.startsWith('28')) return "the database refuses rmapp's login: check the user and password of the connection string";
  if (code === '3D000') return 'the database the connection string names does not exist: create it or fix the URL';
  return null;
}

/** Undefined table, column, function or schema: a database not migrated, or another database or search_path. */
const UNDEFINED_OBJECT = new Set(['42P01', '42703', '42883', '3F000']);

/**
 * The message for a background failure (`what`: "could not commit 3 runs"), at the level it deserves:
 * `error` with the fix for a deployment problem, `warn` otherwise (retried: an outage passes).
 */
export function describeFailure(what: string, err: unknown): { level: 'error' | 'warn'; message: string } {
  const reason = err instanceof Error ? err.message : String(err);
  const fix = deploymentProblem(err);
  if (fix) return { level: 'error', message: `rmapp: ${what}: ${reason} (SQLSTATE ${sqlState(err)}); ${fix}. Retrying until it is fixed.` };
  return { level: 'warn', message: `rmapp: ${what}: ${reason.replace(/\.$/, '')}; retrying` };
}
