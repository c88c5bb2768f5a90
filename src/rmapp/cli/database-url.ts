/**
 * The connection string the CLI was given — `--database-url`, or the `DATABASE_URL` it falls back to
 * (commander reads the variable for the flag) — with which of the two it came from, so that a message
 * about a wrong one names the place that holds it.
 */
import type { Command } from 'commander';

/** What the CLI's commands give the engine or `openDatabase` about the database; undefined without a URL (PGlite). */
export interface CliDatabase {
  url: string;
  urlSource: 'DATABASE_URL' | '--database-url';
}

/**
 * The database URL of the command line, and where it came from.
 *
 * @example
 * const db = await openDatabase({ ...cliDatabase(program), existingOnly: true });
 */
export function cliDatabase(program: Command): CliDatabase | undefined {
  const url = program.opts<{ databaseUrl?: string }>().databaseUrl;
  if (!url) return undefined;
  return { url, urlSource: program.getOptionValueSource('databaseUrl') === 'env' ? 'DATABASE_URL' : '--database-url' };
}
