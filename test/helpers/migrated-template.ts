/**
 * A Postgres database already migrated to this tree's migrations, which test databases are copied from
 * (`create database … template …`, test/helpers/postgres.ts): a new database then skips the ~20
 * migrations every test used to apply (200–870 ms per database on the loaded 2-core machine, against a
 * 6–25 ms check that finds them applied; scratch measurements of 2026-12-06).
 *
 * Made once per `vitest run` by the global set-up and named by a hash of the migrations, so runs of
 * trees with different migrations never share one, and a run of the same tree reuses it. It is built
 * under a temporary name and renamed when complete: a run killed half-way leaves no half-migrated
 * template that a later run would copy. Nobody connects to it after that (Postgres refuses to copy a
 * database that has sessions).
 */
import { createHash } from 'node:crypto';
import postgres from 'postgres';
import { openDatabase } from '../../src/index.ts';
import { loadMigrations, migrate } from '../../src/persistence/migrate.ts';
import { ADMIN_URL } from './postgres.ts';

/** Arbitrary advisory-lock key: two runs starting together build the template once. */
const LOCK_KEY = 0x726d7470; // "rmtp"

/** Creates the migrated template if it does not exist yet; returns its name. */
export async function ensureMigratedTemplate(): Promise<string> {
  const hash = createHash('sha256');
  for (const m of loadMigrations()) hash.update(`${m.tag}\0${m.hash}\0`);
  const name = `rmapp_tpl_${hash.digest('hex').slice(0, 16)}`;
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {}, fetch_types: false });
  try {
    await admin`select pg_advisory_lock(${LOCK_KEY})`;
    const found = await admin`select 1 from pg_database where datname = ${name}`;
    if (found.length > 0) return name;
    const building = `${name}_building`;
    await admin.unsafe(`drop database if exists ${building} with (force)`);
    await admin.unsafe(`create database ${building}`);
    const url = new URL(ADMIN_URL);
    url.pathname = `/${building}`;
    const db = await openDatabase({ url: url.toString() });
    try {
      await migrate(db);
    } finally {
      await db.close();
    }
    await admin.unsafe(`alter database ${building} rename to ${name}`);
    return name;
  } finally {
    await admin.end();
  }
}
