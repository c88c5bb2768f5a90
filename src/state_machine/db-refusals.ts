/**
 * Database errors that are the deployment's, not an outage's: the role lacks a privilege, rmapp's
 * tables or functions are missing (a database not migrated, a wrong `search_path`), the login or the
 * database itself is refused. Sending the same statement again cannot succeed until an operator changes
 * something, so the worker says so at error level, with what to do, instead of warning "retrying" as
 * it does for a lost connection. It still retries (with backoff): once the grant is made or the
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
export function deploymentProblem(err: unknown): string | null {
  const code = sqlState(err);
  if (code === null) return null;
  if (code === '42501') {
    return (
      "the role rmapp connects as lacks a privilege: grant it SELECT, INSERT, UPDATE, DELETE on rmapp's tables, " +
      'USAGE/UPDATE on its sequences and EXECUTE on its functions, or run `rmapp migrate` as a role that may grant them ' +
      '(README "Postgres and several workers")'
    );
  }
  if (code.startsWith('42')) {
    return "rmapp's tables or functions are not where this connection looks: run `rmapp migrate` on this database and check the URL's database and search_path";
  }
  if (code.startsWith('28')) return "the database refuses rmapp's login: check the user and password in DATABASE_URL";
  if (code.startsWith('3D') || code.startsWith('3F'))
    return 'the database or schema in DATABASE_URL does not exist: create it or fix the URL';
  return null;
}

/**
 * The message for a background failure (`what`: "could not commit 3 runs"), at the level it deserves:
 * `error` with the fix for a deployment problem, `warn` otherwise (retried: an outage passes).
 */
export function describeFailure(what: string, err: unknown): { level: 'error' | 'warn'; message: string } {
  const reason = err instanceof Error ? err.message : String(err);
  const fix = deploymentProblem(err);
  if (fix) return { level: 'error', message: `rmapp: ${what}: ${reason} (SQLSTATE ${sqlState(err)}); ${fix}. Retrying until it is fixed.` };
  return { level: 'warn', message: `rmapp: ${what}: ${reason}; retrying` };
}
