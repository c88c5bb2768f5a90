/**
 * Applies the drizzle-kit migrations in `migrations/` at start-up.
 *
 * drizzle's own `migrate()` fails when several processes start together on a fresh database (two of
 * three concurrent migrators died on CREATE TABLE, see XSTATE-FACTS), so every migration runs inside
 * one transaction holding `pg_advisory_xact_lock`: the second process waits, then finds nothing to
 * do. A database that has migrations this code does not know is refused, never "downgraded".
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Database } from './database.ts';

/** The folder drizzle-kit writes to (see `drizzle.config.ts`). */
export const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'migrations');

/** Arbitrary constant key for the advisory lock; "rmapp" in ASCII. */
const MIGRATION_LOCK_KEY = 0x726d617070;

/** Raised when the database was migrated by a newer rmapp than this one. */
export class DatabaseTooNewError extends Error {
  readonly code = 'DATABASE_TOO_NEW';
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
        statements: text.split('--> statement-breakpoint').map((s) => s.trim()).filter(Boolean),
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
 * @throws {DatabaseTooNewError} when the database has migrations this code lacks.
 */
export async function migrate(db: Database, dir = MIGRATIONS_DIR): Promise<MigrateResult> {
  const migrations = loadMigrations(dir);
  return db.transaction(async (tx) => {
    await tx.query('select pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
    await tx.query(`create table if not exists rmapp_migrations (
      tag text primary key, hash text not null, applied_at timestamptz not null default now())`);
    const done = await tx.query<{ tag: string }>('select tag from rmapp_migrations');
    const known = new Set(migrations.map((m) => m.tag));
    const unknown = done.map((r) => r.tag).filter((t) => !known.has(t));
    if (unknown.length > 0) throw new DatabaseTooNewError(unknown);
    const doneTags = new Set(done.map((r) => r.tag));
    const applied: string[] = [];
    for (const m of migrations) {
      if (doneTags.has(m.tag)) continue;
      for (const statement of m.statements) await tx.query(statement);
      await tx.query('insert into rmapp_migrations (tag, hash) values ($1, $2)', [m.tag, m.hash]);
      applied.push(m.tag);
    }
    return { applied };
  });
}
