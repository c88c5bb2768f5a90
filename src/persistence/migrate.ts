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
        'it was upgraded by a newer rmapp. Run that newer version, or use another database (DATABASE_URL; for the embedded store, RMAPP_DATA_DIR).',
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
 * First one read, without lock or DDL: on an up-to-date database that is all (and the role needs no
 * CREATE privilege). Otherwise two scripts (see {@link Database.script}), each one transaction behind the advisory lock: the first
 * creates the bookkeeping table and reads what is applied; the second records the pending migrations
 * first and then runs them. If another process applied them in between, the second script fails on
 * the bookkeeping table's primary key, changes nothing, and the loop reads again.
 *
 * @throws {DatabaseTooNewError} when the database has migrations this code lacks.
 * @throws {MigrationPrivilegeError} when migrations are pending and the role may not apply them.
 */
export async function migrate(db: Database, dir = MIGRATIONS_DIR): Promise<MigrateResult> {
  const migrations = loadMigrations(dir);
  // Up to date already (every start after the first): read without the lock or any DDL, so a worker
  // whose role may not CREATE in the schema starts on a database an administrator migrated.
  const found = await appliedTags(db);
  const applied = found?.tags ?? null;
  if (applied) {
    checkApplied(migrations, applied);
    if (migrations.every((m) => applied.includes(m.tag))) return { applied: [] };
  }
  const kept = await checkRecordKept(db, found);
  if (kept !== found && kept) {
    // Another process migrated between the two reads: its record is the one to go by.
    checkApplied(migrations, kept.tags);
    if (migrations.every((m) => kept.tags.includes(m.tag))) return { applied: [] };
  }
  try {
    return await migrateLocked(db, migrations, kept?.schema ?? null);
  } catch (err) {
    const pending = migrations.filter((m) => !applied?.includes(m.tag)).map((m) => m.tag);
    if ((err as { code?: unknown }).code !== '42501') throw err;
    throw new MigrationPrivilegeError(
      `The database needs ${pending.length} migration${pending.length === 1 ? '' : 's'} (${pending.join(', ')}) that the role rmapp connects as may not apply: ${(err as Error).message}. ` +
        'Run `rmapp migrate` once as a role that may (the schema owner, say), then start this one again; it needs no CREATE privilege on an up-to-date database.',
      pending,
      err,
    );
  }
}

/**
 * Refuses a database this code cannot run on: one with migrations it does not know (a newer rmapp's),
 * or one whose record misses a migration older than one it has — the table edited by hand, or a row
 * lost in a partial restore — where applying the missing one again failed on whatever it had created
 * ("trigger … already exists"), naming neither the table nor the fix.
 */
function checkApplied(migrations: Migration[], applied: string[]): void {
  const known = new Set(migrations.map((m) => m.tag));
  const unknown = applied.filter((t) => !known.has(t));
  if (unknown.length > 0) throw new DatabaseTooNewError(unknown);
  const has = new Set(applied);
  const last = migrations.reduce((at, m, i) => (has.has(m.tag) ? i : at), -1);
  const missing = last < 0 ? [] : migrations.slice(0, last).filter((m) => !has.has(m.tag));
  if (missing.length > 0) {
    throw new MigrationRecordError(
      `rmapp_migrations records ${migrations[last]?.tag} but not the earlier ${missing.map((m) => m.tag).join(', ')}: the table was changed by hand or restored in part, ` +
        'and applying those again would fail on what they already created.',
      missing.map((m) => m.tag),
    );
  }
}

/**
 * Checks, reading only, that this code can run on the database: {@link DatabaseTooNewError} or
 * {@link MigrationRecordError} as {@link migrate} throws them, nothing for a new database or one with
 * migrations pending. For commands that must not migrate (`rmapp versions check`).
 */
export async function checkSchema(db: Database, dir = MIGRATIONS_DIR): Promise<void> {
  const found = await appliedTags(db);
  if (found) checkApplied(loadMigrations(dir), found.tags);
  const kept = await checkRecordKept(db, found);
  if (kept !== found && kept) checkApplied(loadMigrations(dir), kept.tags);
}

/** What {@link appliedTags} reads: the recorded tags and their schema, or null for a new database. */
type AppliedRecord = { tags: string[]; schema: string } | null;

/**
 * Refuses a database whose rmapp tables exist while `rmapp_migrations` is gone or empty (dropped or
 * emptied by hand, or restored without it): applying every migration again failed on the first table
 * ("relation … already exists"), and `rmapp versions check` read it as a new database.
 *
 * @returns the record to go by: `found`, or the one a concurrent migrator committed since it was read.
 */
async function checkRecordKept(db: Database, found: AppliedRecord): Promise<AppliedRecord> {
  if (found && found.tags.length > 0) return found;
  const [row] = await db.query<{ runs: string | null }>(`select to_regclass('rmapp_runs')::text as runs`);
  if (!row?.runs) return found;
  // The record was read in an earlier statement than this one. A process
  // that migrated in between (workers started together on a new database) committed rmapp's tables
  // and their record in one transaction, so a second read sees its record: only a record still
  // missing or empty now is the one changed by hand. Without it, the second worker to start on a new
  // database exited with MIGRATION_RECORD (adv7-migrate-start-race).
  const again = await appliedTags(db);
  if (again && again.tags.length > 0) return again;
  throw new MigrationRecordError(
    `rmapp's tables are in the database but rmapp_migrations ${again ? 'is empty' : 'is missing'}: it was changed by hand or restored in part, and applying every migration again would fail on what they already created.`,
    [],
  );
}

/**
 * The record of applied migrations does not match the schema: it misses one older than one it has, is
 * empty or gone under rmapp's tables (`checkApplied`, `checkRecordKept`) — one fix for those — or is a
 * table of that name without rmapp's columns (`appliedTags`). `problem` says which.
 */
export class MigrationRecordError extends Error {
  readonly code = 'MIGRATION_RECORD';
  readonly category = 'permanent';
  constructor(
    problem: string,
    readonly missing: string[],
    fix = 'Restore the database from a backup, or put the missing rows back (tag and hash, as migrations/meta/_journal.json and the SQL files give them) for the migrations its schema has.',
  ) {
    super(`${problem} ${fix}`);
    this.name = 'MigrationRecordError';
  }
}

/**
 * Tags recorded in `rmapp_migrations` and the schema it is in (as this connection's search_path finds
 * it), or null when the table does not exist yet (a new database).
 */
async function appliedTags(db: Database): Promise<{ tags: string[]; schema: string } | null> {
  try {
    // Its kind and columns too: a table of that name that is not rmapp's record (another program's, a
    // view) was read as rmapp's — the first migration's insert then failed with a raw error ("column
    // "hash" does not exist", "cannot insert into view"), or its rows read as a newer rmapp's.
    const [row] = await db.query<{ tags: string[]; schema: string }>(
      `select coalesce(array_agg(tag::text), '{}') as tags,
              (select n.nspname from pg_class c join pg_namespace n on n.oid = c.relnamespace
                where c.oid = 'rmapp_migrations'::regclass) as schema
         from rmapp_migrations`,
    );
    if (!row) return null;
    // Apart, and skipped for a role the catalog refuses (a false refusal of a database rmapp made, a second pass).
    const shape = await db
      .query<{ kind: string; columns: string[] }>(
        `select c.relkind::text as kind,
                (select array_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) order by a.attnum) from pg_attribute a
                  where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped) as columns
           from pg_class c where c.oid = 'rmapp_migrations'::regclass`,
      )
      .then(([r]) => r ?? null)
      .catch((err: unknown) => {
        if ((err as { code?: unknown }).code === '42501') return null;
        throw err;
      });
    const columns = shape?.columns ?? [];
    const wrongShape = shape !== null && (shape.kind !== 'r' || !columns.includes('tag text') || !columns.includes('hash text'));
    if (wrongShape || row.tags.some((t) => !TAG_FORM.test(t))) {
      throw new MigrationRecordError(
        `rmapp_migrations is not rmapp's record of migrations (${shape ? `a ${RELATION_KINDS[shape.kind] ?? 'relation'} with ${columns.join(', ') || 'no columns'}` : 'a relation'}` +
          `${row.tags.some((t) => !TAG_FORM.test(t)) ? `, holding ${JSON.stringify(row.tags.find((t) => !TAG_FORM.test(t)))}` : ''}): ` +
          "it is another program's table of that name, or was changed by hand.",
        [],
        NOT_OURS_FIX,
      );
    }
    return { tags: row.tags, schema: row.schema };
  } catch (err) {
    // undefined_table: nothing migrated yet (a statement naming the table fails when it is parsed).
    if ((err as { code?: unknown }).code === '42P01') return null;
    // undefined_column: a table of that name that is not rmapp's record (another program's, or altered).
    if ((err as { code?: unknown }).code === '42703') {
      throw new MigrationRecordError(
        `rmapp_migrations has not the columns rmapp keeps its record in (tag, hash, applied_at): ${(err as Error).message}. It is another program's table of that name, or was changed by hand.`,
        [],
        NOT_OURS_FIX,
      );
    }
    if ((err as { code?: unknown }).code === '42501') {
      throw new MigrationPrivilegeError(
        `The role rmapp connects as may not read rmapp_migrations (${(err as Error).message}): grant it SELECT on rmapp's tables (with INSERT, UPDATE, DELETE), USAGE, SELECT, UPDATE on its sequences and EXECUTE on its functions — README "Postgres and several workers".`,
        [],
        err,
      );
    }
    throw err;
  }
}

/** A migration's tag as drizzle-kit names them (`0000_init`): a record holding anything else is not rmapp's. */
const TAG_FORM = /^\d{4}_[a-z0-9_]+$/;
const RELATION_KINDS: Record<string, string> = {
  r: 'table',
  v: 'view',
  m: 'materialized view',
  p: 'partitioned table',
  f: 'foreign table',
};
const NOT_OURS_FIX =
  "Give rmapp a database of its own (or a schema of its own, first in its role's search_path), or restore the table from a backup.";

/**
 * The role rmapp connects as may not check or apply the migrations: it cannot read `rmapp_migrations`,
 * or migrations are pending (`pending`) that it may not apply (no CREATE on the schema, not the owner of
 * a table a migration alters). The message says which, and who can.
 */
export class MigrationPrivilegeError extends Error {
  readonly code = 'MIGRATION_PRIVILEGE';
  /** Retrying as the same role cannot fix it; a worker retrying its start gives up at once. */
  readonly category = 'permanent';
  constructor(
    message: string,
    readonly pending: string[],
    cause: unknown,
  ) {
    super(message, { cause });
    this.name = 'MigrationPrivilegeError';
  }
}

/** Times a migration script that lost a deadlock to running workers' statements is sent in all. */
const MIGRATION_DEADLOCK_TRIES = 5;

/**
 * The migrating path: behind the advisory lock, creating the bookkeeping table if needed. In `schema`
 * when rmapp's tables were found there: a role whose search_path starts with a schema of its own
 * (`"$user", public`) would otherwise create a second, empty rmapp there at its first upgrade, and run
 * on it from then on.
 */
async function migrateLocked(db: Database, migrations: Migration[], schema: string | null): Promise<MigrateResult> {
  const inSchema = schema === null ? [] : [`select set_config('search_path', ${sqlLiteral(`"${schema.replace(/"/g, '""')}"`)}, true)`];
  const lock = [`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`, ...inSchema];
  for (let attempt = 1; ; attempt++) {
    const done = await db.script<{ tag: string }>([
      ...lock,
      `create table if not exists rmapp_migrations (tag text primary key, hash text not null, applied_at timestamptz not null default now())`,
      'select tag from rmapp_migrations',
    ]);
    checkApplied(
      migrations,
      done.map((r) => r.tag),
    );
    const doneTags = new Set(done.map((r) => r.tag));
    const pending = migrations.filter((m) => !doneTags.has(m.tag));
    if (pending.length === 0) return { applied: [] };
    try {
      await db.script([
        ...lock,
        `insert into rmapp_migrations (tag, hash) values ${pending.map((m) => `(${sqlLiteral(m.tag)}, ${sqlLiteral(m.hash)})`).join(', ')}`,
        ...pending.flatMap((m) => m.statements),
      ]);
      return { applied: pending.map((m) => m.tag) };
    } catch (err) {
      // A concurrent migrator's record is read again. A deadlock with the statements of workers still
      // running (for instance a migration that rewrites rmapp_runs, then alters the inbox while a send
      // holds the inbox and waits for the runs table) rolled the whole script back, so it is sent again,
      // a few times: `rmapp migrate` during a deploy failed on it (test/adv3-migrate-race.test.ts saw it once).
      // Any other failure of a migration is reported.
      const e = err as { code?: unknown; constraint_name?: unknown; constraint?: unknown };
      if (e.code === '40P01' && attempt < MIGRATION_DEADLOCK_TRIES) {
        await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
        continue;
      }
      if (e.code !== '23505' || (e.constraint_name ?? e.constraint) !== 'rmapp_migrations_pkey') throw err;
    }
  }
}
