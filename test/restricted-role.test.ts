/**
 * A deployment where an administrator migrates the schema and the workers connect as a role with only
 * the privileges README "Postgres and several workers" lists (no CREATE on the schema): the workers
 * start and run workflows on an up-to-date database, and a database with pending migrations is refused
 * at once with which migrations and who can apply them — not retried as an outage.
 */
import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { setup } from 'xstate';
import { z } from 'zod';
import { expect, it } from 'vitest';
import { createEngine, defineWorkflow, migrate, openDatabase, step } from '../src/index.ts';
import { loadMigrations } from '../src/persistence/migrate.ts';
import { cleanupsAfterAll } from './helpers/cleanups.ts';
import { ADMIN_URL, createTestDatabase } from './helpers/postgres.ts';

const cleanups = cleanupsAfterAll();

const noop = step(async () => 'done');
const machine = setup({ actors: { noop } }).createMachine({
  id: 'restricted',
  initial: 'working',
  states: { working: { invoke: { src: 'noop', onDone: 'waiting' } }, waiting: { on: { go: 'done' } }, done: { type: 'final' } },
});
const restricted = defineWorkflow({ name: 'test.restricted', machine, input: z.object({}) });

/** A database migrated by the superuser, and the URL of a new role with DML privileges only. */
async function migratedWithWorkerRole(): Promise<{ url: string; workerUrl: string; role: string }> {
  const role = `rmapp_dml_${randomUUID().replace(/-/g, '').slice(0, 8)}`;
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {}, fetch_types: false });
  const t = await createTestDatabase({ prefix: 'rmapp_restricted', empty: true });
  cleanups.push(async () => {
    await admin.unsafe(`drop role if exists ${role}`);
    await admin.end();
  });
  cleanups.push(() => t.dropNow()); // before the role above, which holds privileges in it
  await admin.unsafe(`create role ${role} login`);
  const superuser = await openDatabase({ url: t.url });
  await migrate(superuser);
  await superuser.script([
    // Postgres 15 gives PUBLIC no CREATE on `public`; said again for older servers.
    'revoke create on schema public from public',
    `grant usage on schema public to ${role}`,
    `grant select, insert, update, delete on all tables in schema public to ${role}`,
    `grant usage, select, update on all sequences in schema public to ${role}`,
    `grant execute on all functions in schema public to ${role}`,
  ]);
  await superuser.close();
  const workerUrl = new URL(t.url);
  workerUrl.username = role;
  return { url: t.url, workerUrl: workerUrl.toString(), role };
}

/** A worker start as that role, with retries allowed: the error it ends with (an Error "started" if it did) and the retries made. */
async function refusedStart(workerUrl: string): Promise<{ err: Error & { code?: string; pending?: string[] }; retries: number }> {
  const engine = createEngine({ database: workerUrl, workflows: [restricted] });
  cleanups.push(() => engine.stop());
  let retries = 0;
  const err = (await engine
    .startWorker({ retry: { onRetry: () => (retries += 1) } })
    .then(() => new Error('started'))
    .catch((e: unknown) => e)) as Error & { code?: string; pending?: string[] };
  return { err, retries };
}

it('a worker whose role may not CREATE in the schema starts on an up-to-date database and runs workflows', async () => {
  const { workerUrl, role } = await migratedWithWorkerRole();
  const asRole = await openDatabase({ url: workerUrl });
  cleanups.push(() => asRole.close());
  const [can] = await asRole.query<{ create: boolean }>(`select has_schema_privilege(current_user, 'public', 'CREATE') as create`);
  expect(can?.create, `${role} may CREATE in public: the test would prove nothing`).toBe(false);
  const engine = createEngine({ database: workerUrl, workflows: [restricted] });
  cleanups.push(() => engine.stop());
  await engine.startWorker();
  const ids = await Promise.all(Array.from({ length: 5 }, () => engine.start(restricted, {})));
  for (const id of ids) {
    await expect.poll(async () => (await engine.get(id)).status, { timeout: 20_000 }).toBe('waiting');
    await engine.send(id, { type: 'go' });
    const done = await engine.waitFor(id, { timeoutMs: 20_000 });
    expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
  }
  const cancelled = await engine.start(restricted, {});
  await engine.cancel(cancelled);
  expect((await engine.waitFor(cancelled, { timeoutMs: 20_000 })).status).toBe('cancelled');
  await engine.stop();
});

it('pending migrations the role may not apply fail the start at once, naming them and the fix', async () => {
  const { url, workerUrl } = await migratedWithWorkerRole();
  const last = loadMigrations().at(-1)!.tag;
  // As if this rmapp were newer than the one that migrated the database: its last migration is pending.
  const superuser = await openDatabase({ url });
  await superuser.query(`delete from rmapp_migrations where tag = $1`, [last]);
  await superuser.close();
  const { err, retries } = await refusedStart(workerUrl);
  expect(err.code, err.message).toBe('MIGRATION_PRIVILEGE');
  expect(err.pending).toEqual([last]);
  expect(err.message).toContain(`needs 1 migration (${last}) that the role rmapp connects as may not apply: permission denied`);
  expect(err.message).toMatch(/Run `rmapp migrate` once as a role that may/);
  expect(retries, 'a start retried on a privilege it will never have').toBe(0);
});

it('a role with a schema of its own first on its search_path never gets a second rmapp there when a migration is pending', async () => {
  const { url, workerUrl, role } = await migratedWithWorkerRole();
  const superuser = await openDatabase({ url });
  cleanups.push(() => superuser.close());
  // "$user", public: the role's own schema comes first, and it may create in it.
  await superuser.script([`create schema ${role} authorization ${role}`]);
  await superuser.query(`delete from rmapp_migrations where tag = $1`, [loadMigrations().at(-1)!.tag]);
  const { err } = await refusedStart(workerUrl);
  // The pending migration is for the tables in public, which this role may not change: said so.
  expect(err.code, err.message).toBe('MIGRATION_PRIVILEGE');
  const [forked] = await superuser.query<{ n: number }>(`select count(*)::int as n from pg_tables where schemaname = $1`, [role]);
  expect(forked?.n, `rmapp tables created in the role's own schema ${role}`).toBe(0);
});

it('a role that may not even read rmapp_migrations is told what to grant, at once', async () => {
  const { url, workerUrl } = await migratedWithWorkerRole();
  const superuser = await openDatabase({ url });
  cleanups.push(() => superuser.close());
  await superuser.script([`revoke select on rmapp_migrations from ${new URL(workerUrl).username}`]);
  const { err, retries } = await refusedStart(workerUrl);
  expect(err.code, err.message).toBe('MIGRATION_PRIVILEGE');
  expect(err.message).toMatch(/may not read rmapp_migrations \(permission denied for table rmapp_migrations\): grant it SELECT/);
  expect(retries).toBe(0);
});
