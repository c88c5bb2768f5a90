/**
 * Migration 0014 rewrites rmapp_runs with its columns in a new order (the ones a commit changes last,
 * for Postgres's prefix/suffix compression of updates). A database migrated up to 0013 with runs in it
 * keeps every run, every value, its indexes, constraints and triggers; its fill factor becomes 50.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTableConfig } from 'drizzle-orm/pg-core';
import type { Database } from '../src/persistence/database.ts';
import { loadMigrations, migrate } from '../src/persistence/migrate.ts';
import { runs } from '../src/persistence/schema.ts';
import { openTestStore } from './helpers/postgres.ts';
import { migrationsBefore } from './helpers/migrations.ts';

const RUNS = `select to_jsonb(r) - 'output' - 'error' as row, output, error from rmapp_runs r order by id`;

describe.each(['postgres', 'pglite'] as const)('migration 0014 (rmapp_runs column order) on %s', (kind) => {
  let db: Database;
  let close: () => Promise<void>;
  let dir: string;
  beforeAll(async () => {
    ({ db, close } = await openTestStore(kind, { empty: true }));
    dir = migrationsBefore('0014_runs_column_order');
  });
  afterAll(async () => {
    await close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps every run and value, the indexes, constraints, fill factor and triggers', async () => {
    await migrate(db, dir);
    // A run with every column set, one with jsonb null output/error (as inserts wrote them), one pending.
    await db.query(`insert into rmapp_runs (id, workflow, workflow_version, status, status_message, snapshot, state_value, input,
        output, error, timers, steps, signal_seq, history_rows, version, lease_owner, lease_expires_at, lease_epoch, wake_at,
        deadline_at, parent_run_id, trace_context, idempotency_key, concurrency_key, concurrency_limit, admitted, created_at,
        updated_at, finished_at)
      values ('run-a', 'w', 'v1', 'failed', 'broke', '{"value":"s"}', '"s"', '{"n":1}', '{"o":2}', '{"message":"e"}',
        '[{"at":1}]', '{"0.w.s":1}', 3, 4, 5, 'owner-a', '2026-01-01T00:00:01Z', 6, '2026-01-01T00:00:02Z', '2026-01-01T00:00:03Z',
        'parent', '00-abc-def-01', 'key-a', 'ck', 2, true, '2026-01-01T00:00:00Z', '2026-01-01T00:00:04Z', '2026-01-01T00:00:05Z'),
      ('run-b', 'w', 'v1', 'running', null, '{"value":"t"}', '"t"', '{}', 'null', 'null', '[]', '{}', 0, 1, 2, 'owner-b',
        now(), 1, now(), null, null, null, null, null, null, false, now(), now(), null)`);
    await db.query(`insert into rmapp_runs (id, workflow, workflow_version) values ('run-c', 'w', 'v1')`);
    const before = await db.query<{ row: Record<string, unknown>; output: unknown; error: unknown }>(RUNS);

    const tags = loadMigrations().map((m) => m.tag);
    expect((await migrate(db)).applied, 'from 0014 on').toEqual(tags.slice(tags.indexOf('0014_runs_column_order')));

    const after = await db.query<{ row: Record<string, unknown>; output: unknown; error: unknown }>(RUNS);
    // Migration 0020 adds one column, null in every row; 0023 stores the failed run's concurrency key `ck`
    // (not its workflow's) as the global key it was (src/state_machine/concurrency-key.ts).
    expect(after.map((r) => r.row)).toEqual(
      before.map((r) => ({ ...r.row, steps_done: null, ...(r.row.id === 'run-a' ? { concurrency_key: 'g:ck' } : {}) })),
    );
    expect(after.map((r) => [r.output, r.error])).toEqual([
      [{ o: 2 }, { message: 'e' }],
      [null, null],
      [null, null],
    ]);
    const nulls = await db.query<{ id: string }>(`select id from rmapp_runs where output is null and error is null order by id`);
    expect(
      nulls.map((r) => r.id),
      'jsonb null output/error stored as SQL null',
    ).toEqual(['run-b', 'run-c']);

    const columns = await db.query<{ attname: string }>(
      `select attname from pg_attribute where attrelid = 'rmapp_runs'::regclass and attnum > 0 and not attisdropped order by attnum`,
    );
    expect(
      columns.map((c) => c.attname),
      'the table columns in the order of schema.ts',
    ).toEqual(getTableConfig(runs).columns.map((c) => c.name));

    const indexes = await db.query<{ name: string }>(`select indexname as name from pg_indexes where tablename = 'rmapp_runs' order by 1`);
    expect(indexes.map((i) => i.name)).toEqual([
      'rmapp_runs_cleanup_owed_idx',
      'rmapp_runs_due_pending_idx',
      'rmapp_runs_due_resumed_idx',
      'rmapp_runs_idempotency_key_uq',
      'rmapp_runs_parent_idx',
      'rmapp_runs_pkey',
      'rmapp_runs_queue_idx',
      'rmapp_runs_slots_idx',
      'rmapp_runs_status_idx',
    ]);
    const triggers = await db.query<{ name: string }>(
      `select tgname as name from pg_trigger where tgrelid = 'rmapp_runs'::regclass and not tgisinternal order by 1`,
    );
    expect(triggers.map((t) => t.name)).toEqual(['rmapp_run_deleted', 'rmapp_run_inserted', 'rmapp_run_updated']);
    const options = await db.query<{ reloptions: string[] | null }>(`select reloptions from pg_class where relname = 'rmapp_runs'`);
    expect(options[0]?.reloptions, 'the fill factor 0014 sets (was 70)').toEqual(['fillfactor=50']);

    await expect(
      db.query(`insert into rmapp_runs (id, workflow, workflow_version, status) values ('run-d', 'w', 'v1', 'bogus')`),
      'the status check constraint',
    ).rejects.toThrow(/rmapp_runs_status_ck/);
    await expect(
      db.query(`insert into rmapp_runs (id, workflow, workflow_version, idempotency_key) values ('run-e', 'w', 'v1', 'key-a')`),
      'the idempotency key stays unique',
    ).rejects.toThrow(/rmapp_runs_idempotency_key_uq/);
    await expect(
      db.query(`insert into rmapp_runs (id, workflow, workflow_version) values ('run-a', 'w', 'v1')`),
      'the primary key',
    ).rejects.toThrow(/rmapp_runs_pkey/);
  });
});

describe('migration 0014 and what an operator added to rmapp_runs (Postgres)', () => {
  let db: Database;
  let close: () => Promise<void>;
  let dir: string;
  const role = `rmapp_reader_${Math.random().toString(36).slice(2, 10)}`;
  beforeAll(async () => {
    ({ db, close } = await openTestStore('postgres', { empty: true }));
    dir = migrationsBefore('0014_runs_column_order');
    await migrate(db, dir);
    await db.query(`create role ${role}`);
  });
  afterAll(async () => {
    // The role is the cluster's: dropped before the store closes (after, the statement failed unseen
    // and every run left one behind).
    await db.query(`drop owned by ${role}`).catch(() => {});
    await db.query(`drop role if exists ${role}`);
    await close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a view over the table stops the migration with its name and the fix; nothing changes', async () => {
    await db.query(`create view rmapp_report as select id, status from rmapp_runs`);
    await expect(migrate(db), 'the migration names the view').rejects.toThrow(/views depend on it: rmapp_report/);
    const leftover = await db.query<{ name: string | null }>(`select to_regclass('rmapp_runs_reordered')::text as name`);
    expect(leftover[0]?.name, 'no half-made copy is left').toBeNull();
    const columns = await db.query<{ attname: string }>(
      `select attname from pg_attribute where attrelid = 'rmapp_runs'::regclass and attnum = 1`,
    );
    expect(columns[0]?.attname, "the table is still 0013's").toBe('id');
    await db.query(`drop view rmapp_report`);
  });

  it("another role's privileges on the table are kept", async () => {
    await db.query(`grant select, update on rmapp_runs to ${role}`);
    await migrate(db);
    const privileges = await db.query<{ privilege_type: string }>(
      `select privilege_type from information_schema.role_table_grants where table_name = 'rmapp_runs' and grantee = $1 order by 1`,
      [role],
    );
    expect(privileges.map((p) => p.privilege_type)).toEqual(['SELECT', 'UPDATE']);
  });
});
