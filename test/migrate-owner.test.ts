/**
 * An operator upgrades rmapp's schema with another role's URL (a superuser's, say) while the workers
 * connect as the role that created and owns rmapp's tables. Whatever the upgrade creates or rebuilds,
 * the workers' role must still run workflows: migration 0014 rebuilds rmapp_runs (the new table keeps
 * the old one's owner, its column grants, storage options and comments), 0016's sequence and 0015's
 * function are created by the migrating role (0017 grants the owner what it lacks) — also when the
 * upgrade starts before 0011, and when the database revokes EXECUTE on new functions from PUBLIC.
 */
import { rmSync } from 'node:fs';
import { setup } from 'xstate';
import { z } from 'zod';
import { expect, it } from 'vitest';
import { createEngine, defineWorkflow, migrate, openDatabase, step, type Database } from '../src/index.ts';
import { watchRunChanges } from '../src/persistence/run-changes.ts';
import { loadMigrations } from '../src/persistence/migrate.ts';
import { migrationsUpTo } from './helpers/migrations.ts';
import { cleanupsAfterAll } from './helpers/cleanups.ts';
import { ownedDatabase, type OwnedDatabase } from './helpers/owned-database.ts';

const cleanups = cleanupsAfterAll();

const noop = step(async () => 'done');
const machine = setup({ actors: { noop } }).createMachine({
  id: 'owned',
  initial: 'working',
  states: { working: { invoke: { src: 'noop', onDone: 'done' } }, done: { type: 'final' } },
});
const owned = defineWorkflow({ name: 'test.owned', machine, input: z.object({}) });

/** The superuser applies every later migration; then the role's worker runs a workflow to its end. */
async function upgradeAndRun(d: OwnedDatabase): Promise<void> {
  const later = loadMigrations()
    .map((m) => m.tag)
    .filter((tag) => tag > d.upTo);
  expect((await migrate(d.superuser)).applied).toEqual(later);
  // Under an id of the operator's: the worker records its process (0021's table, the superuser's).
  const engine = createEngine({ database: d.ownerDb, workflows: [owned], workerId: 'owned' });
  cleanups.push(() => engine.stop());
  await engine.startWorker();
  // Twenty at once: their commits go together through rmapp_commit_runs (a lone run's do not).
  const ids = await Promise.all(Array.from({ length: 20 }, () => engine.start('test.owned', {})));
  for (const id of ids) {
    const done = await engine.waitFor(id, { timeoutMs: 20_000 });
    expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
  }
  // The dashboard's watch (a sequence since 0016) renews as the role too.
  await watchRunChanges(d.ownerDb);
  await engine.stop();
}

const ownerOf = async (db: Database, name: string) =>
  (await db.query<{ owner: string }>(`select pg_get_userbyid(relowner) as owner from pg_class where oid = $1::regclass`, [name]))[0]?.owner;

it("keeps rmapp_runs the owning role's, with its column grants, options and comments, when a superuser runs migration 0014", async () => {
  const d = await ownedDatabase(cleanups, '0013_drop_created_index');
  await d.ownerDb.script([
    `grant select (id, status) on rmapp_runs to ${d.reader}`,
    `alter table rmapp_runs set (autovacuum_vacuum_scale_factor = 0.01)`,
    `comment on table rmapp_runs is 'the runs'`,
    `comment on column rmapp_runs.status is 'where it is'`,
  ]);
  await upgradeAndRun(d);
  expect(await ownerOf(d.superuser, 'rmapp_runs'), 'the owner of rmapp_runs after 0014').toBe(d.role);
  const [table] = await d.superuser.query<{ options: string[]; comment: string; column: string }>(
    `select reloptions as options, obj_description('rmapp_runs'::regclass, 'pg_class') as comment,
       col_description('rmapp_runs'::regclass, (select attnum from pg_attribute where attrelid = 'rmapp_runs'::regclass and attname = 'status')) as column
     from pg_class where oid = 'rmapp_runs'::regclass`,
  );
  expect(table).toEqual({ options: ['fillfactor=50', 'autovacuum_vacuum_scale_factor=0.01'], comment: 'the runs', column: 'where it is' });
  const reader = await openDatabase({ url: d.readerUrl });
  cleanups.push(() => reader.close());
  expect(await reader.query(`select id, status from rmapp_runs`), "the reader's column grant after 0014").toHaveLength(20);
});

it("lets the owning role write runs after a superuser upgrade that also ran 0011 (the watch table was the superuser's)", async () => {
  await upgradeAndRun(await ownedDatabase(cleanups, '0010_run_changes'));
});

it('lets the owning role commit runs when the database revokes EXECUTE on new functions from PUBLIC', async () => {
  await upgradeAndRun(
    await ownedDatabase(cleanups, '0013_drop_created_index', [
      'alter default privileges for role postgres revoke execute on functions from public',
    ]),
  );
});

it('fails 0017, naming what the owner lacks, when the migrating role holds privileges it cannot grant (Postgres only warns then)', async () => {
  const d = await ownedDatabase(cleanups, '0002_trace_context');
  // A superuser takes the schema to 0016: the artifacts table (0003) and the watch sequence are its own.
  const to0016 = migrationsUpTo('0016_run_change_watch_sequence');
  cleanups.push(() => rmSync(to0016, { recursive: true, force: true }));
  await migrate(d.superuser, to0016);
  // A deploy role with every privilege on the tables and sequences, none of them with grant option.
  const deployer = `${d.reader}_deploy`;
  cleanups.push(() => d.superuser.query(`drop owned by ${deployer}`).then(() => d.superuser.query(`drop role ${deployer}`)));
  await d.superuser.script([
    `create role ${deployer} login`,
    `grant create on schema public to ${deployer}`,
    `grant select, insert, update, delete on all tables in schema public to ${deployer}`,
    `grant usage, select, update on all sequences in schema public to ${deployer}`,
  ]);
  const url = new URL(d.readerUrl);
  url.username = deployer;
  const deploy = await openDatabase({ url: url.toString() });
  cleanups.push(() => deploy.close());
  await expect(migrate(deploy)).rejects.toThrow(
    new RegExp(
      `rmapp migration 0017: the owner of rmapp_runs \\(${d.role}\\) lacks SELECT on table rmapp_run_artifacts, INSERT on table rmapp_run_artifacts, .*, which ${deployer} cannot grant`,
    ),
  );
  // Nothing of it was recorded: the superuser's next migrate applies it.
  expect((await migrate(d.superuser)).applied).toEqual([
    '0017_owner_privileges',
    '0018_run_removed',
    '0019_inbox_reported',
    '0020_steps_done',
    '0021_worker_processes',
    '0022_cleanup_owed_index',
    '0023_concurrency_key_scopes',
  ]);
});
