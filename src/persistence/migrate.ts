/**
 * Applies the drizzle-kit migrations in `migrations/` at start-up.
 *
 * drizzle's own `migrate()` fails when several processes start together on a fresh database (two of
 * three concurrent migrators died on CREATE TABLE, docs/facts.md), so migrations run in one
 * transaction holding `pg_advisory_xact_lock`: the second process waits, then finds nothing to do. A database that has migrations this code does not know is refused, never "downgraded".
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sqlLiteral, type Database } from './database.ts';

/** The folder drizzle-kit writes to (see `drizzle.config.ts`). */
export const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'migrations');

/** Arbitrary constant key for the advisory lock; "rmapp" in ASCII. */
const MIGRATION_LOCK_KEY = 0x726d617070;

/** Raised when the database was migrated by a newer rmapp than this one. */
export class DatabaseTooNewError extends Error {
  readonly code = 'DATABASE_TOO_NEW';
  /** Waiting does not fix it: a worker retrying its start on connection errors gives up at once. */
  readonly category = 'permanent';
  constructor(readonly unknownMigrations: string[]) {
    super(
      `The database has migrations this version of rmapp does not know (${unknownMigrations.join(', ')}): ` +
        'it was upgraded by a newer rmapp. Run that newer version, or point DATABASE_URL at another database.',
    );
    this.name = 'DatabaseTooNewError';
  }
}

interface Migration {
  tag: string;
  hash: string;
  statements: string[];
}

/** Reads `meta/_journal.json` and the SQL files it lists, in order. */
export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const journal = JSON.parse(readFileSync(join(dir, 'meta', '_journal.json'), 'utf8')) as {
    entries: { idx: number; tag: string }[];
  };
  return [...journal.entries]
    .sort((a, b) => a.idx - b.idx)
    .map(({ tag }) => {
      const text = readFileSync(join(dir, `${tag}.sql`), 'utf8');
      return {
        tag,
        hash: createHash('sha256').update(text).digest('hex'),
        statements: text
          .split('--> statement-breakpoint')
          .map((s) => s.trim())
          .filter(Boolean),
      };
    });
}

/** Outcome of {@link migrate}: which migrations this call applied. */
export interface MigrateResult {
  applied: string[];
}

/**
 * Brings the schema up to date; safe to call from any number of processes at once.
 *
 * Two scripts (see {@link Database.script}), each one transaction behind the advisory lock: the first
 * creates the bookkeeping table and reads what is applied; the second records the pending migrations
 * first and then runs them. If another process applied them in between, the second script fails on
 * the bookkeeping table's primary key, changes nothing, and the loop reads again.
 *
 * @throws {DatabaseTooNewError} when the database has migrations this code lacks.
 */
export async function migrate(db: Database, dir = MIGRATIONS_DIR): Promise<MigrateResult> {
  const migrations = loadMigrations(dir);
  const lock = `select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;
  for (;;) {
    const done = await db.script<{ tag: string }>([
      lock,
      `create table if not exists rmapp_migrations (tag text primary key, hash text not null, applied_at timestamptz not null default now())`,
      'select tag from rmapp_migrations',
    ]);
    const known = new Set(migrations.map((m) => m.tag));
    const unknown = done.map((r) => r.tag).filter((t) => !known.has(t));
    if (unknown.length > 0) throw new DatabaseTooNewError(unknown);
    const doneTags = new Set(done.map((r) => r.tag));
    const pending = migrations.filter((m) => !doneTags.has(m.tag));
    if (pending.length === 0) return { applied: [] };
    try {
      await db.script([
        lock,
        `insert into rmapp_migrations (tag, hash) values ${pending.map((m) => `(${sqlLiteral(m.tag)}, ${sqlLiteral(m.hash)})`).join(', ')}`,
        ...pending.flatMap((m) => m.statements),
      ]);
      return { applied: pending.map((m) => m.tag) };
    } catch (err) {
      // Only a concurrent migrator's record is retried; any other failure of a migration is reported.
      const e = err as { code?: unknown; constraint_name?: unknown; constraint?: unknown };
      if (e.code !== '23505' || (e.constraint_name ?? e.constraint) !== 'rmapp_migrations_pkey') throw err;
    }
  }
}
