/**
 * A database whose rmapp schema a role of its own created (it owns every table, function and
 * sequence), for tests of what a migration run by another role (the superuser) leaves that role.
 */
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import postgres from 'postgres';
import { migrate, openDatabase, type Database } from '../../src/index.ts';
import { migrationsUpTo } from './migrations.ts';
import { ADMIN_URL, createTestDatabase } from './postgres.ts';

export interface OwnedDatabase {
  /** The role that migrated up to `upTo` and owns the schema. */
  role: string;
  /** A second login role with no privilege in the database. */
  reader: string;
  readerUrl: string;
  /** Connected as `role`. */
  ownerDb: Database;
  /** Connected as the superuser. */
  superuser: Database;
  upTo: string;
}

/**
 * A new database migrated up to `upTo` by a new role, with `before` run as the superuser first (after
 * the role is given the schema). Everything it creates is removed through `cleanups`, run in reverse.
 */
export async function ownedDatabase(
  cleanups: (() => Promise<unknown> | unknown)[],
  upTo: string,
  before: string[] = [],
): Promise<OwnedDatabase> {
  const tag = randomUUID().replace(/-/g, '').slice(0, 8);
  const role = `rmapp_owner_${tag}`;
  const reader = `rmapp_reader_${tag}`;
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {}, fetch_types: false });
  const t = await createTestDatabase({ prefix: 'rmapp_owner', empty: true });
  // Dropped before the roles (the database's objects are theirs), then the roles.
  cleanups.push(async () => {
    await admin.unsafe(`drop role if exists ${role}`);
    await admin.unsafe(`drop role if exists ${reader}`);
    await admin.end();
  });
  cleanups.push(() => t.dropNow());
  await admin.unsafe(`create role ${role} login`);
  await admin.unsafe(`create role ${reader} login`);
  const inDb = postgres(t.url, { max: 1, onnotice: () => {}, fetch_types: false });
  await inDb.unsafe(`grant all on schema public to ${role}`);
  for (const statement of before) await inDb.unsafe(statement);
  await inDb.end();
  const asRole = new URL(t.url);
  asRole.username = role;
  const dir = migrationsUpTo(upTo);
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const ownerDb = await openDatabase({ url: asRole.toString() });
  cleanups.push(() => ownerDb.close());
  await migrate(ownerDb, dir);
  const superuser = await openDatabase({ url: t.url });
  cleanups.push(() => superuser.close());
  const readerUrl = new URL(t.url);
  readerUrl.username = reader;
  return { role, reader, readerUrl: readerUrl.toString(), ownerDb, superuser, upTo };
}
