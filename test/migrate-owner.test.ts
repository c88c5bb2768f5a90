/**
 * An operator upgrades rmapp's schema with another role's URL (a superuser's, say) while the workers
 * connect as the role that created and owns rmapp's tables. Migration 0014 rebuilds rmapp_runs (a new
 * table, a copy, a drop and a rename): the new table must keep the old one's owner, or the workers lose
 * every privilege on their own runs table (0014 copies the other roles' grants, not the owner's).
 */
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import postgres from 'postgres';
import { setup } from 'xstate';
import { z } from 'zod';
import { afterAll, expect, it } from 'vitest';
import { createEngine, defineWorkflow, migrate, openDatabase, step } from '../src/index.ts';
import { loadMigrations } from '../src/persistence/migrate.ts';
import { migrationsUpTo } from './helpers/migrations.ts';
import { ADMIN_URL, createTestDatabase } from './helpers/postgres.ts';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse())
    await Promise.resolve()
      .then(c)
      .catch(() => {});
});

const noop = step(async () => 'done');
const machine = setup({ actors: { noop } }).createMachine({
  id: 'owned',
  initial: 'working',
  states: { working: { invoke: { src: 'noop', onDone: 'done' } }, done: { type: 'final' } },
});
const owned = defineWorkflow({ name: 'test.owned', machine, input: z.object({}) });

it("keeps rmapp_runs the owning role's when a superuser runs migration 0014: that role's workers still run workflows", async () => {
  const role = `rmapp_owner_${randomUUID().replace(/-/g, '').slice(0, 8)}`;
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {}, fetch_types: false });
  const t = await createTestDatabase('rmapp_owner');
  // Dropped before the role (the database's objects are the role's), then the role.
  cleanups.push(async () => {
    await admin.unsafe(`drop role if exists ${role}`);
    await admin.end();
  });
  cleanups.push(() => t.drop());
  await admin.unsafe(`create role ${role} login`);
  const inDb = postgres(t.url, { max: 1, onnotice: () => {}, fetch_types: false });
  await inDb.unsafe(`grant all on schema public to ${role}`);
  await inDb.end();

  // The role creates rmapp's schema as it was at 0013 (it owns every table).
  const asRole = new URL(t.url);
  asRole.username = role;
  const dir = migrationsUpTo('0013_drop_created_index');
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const ownerDb = await openDatabase({ url: asRole.toString() });
  cleanups.push(() => ownerDb.close());
  await migrate(ownerDb, dir);

  // The operator upgrades with the superuser's URL.
  const superuser = await openDatabase({ url: t.url });
  cleanups.push(() => superuser.close());
  const later = loadMigrations()
    .map((m) => m.tag)
    .filter((tag) => tag >= '0014');
  expect((await migrate(superuser)).applied).toEqual(later);
  const [table] = await superuser.query<{ owner: string }>(
    `select pg_get_userbyid(relowner) as owner from pg_class where oid = 'rmapp_runs'::regclass`,
  );
  expect(table?.owner, 'the owner of rmapp_runs after 0014').toBe(role);

  // The role's worker starts, runs and finishes a workflow.
  const engine = createEngine({ database: ownerDb, workflows: [owned] });
  cleanups.push(() => engine.stop());
  await engine.startWorker();
  const done = await engine.waitFor(await engine.start('test.owned', {}), { timeoutMs: 20_000 });
  expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
});
