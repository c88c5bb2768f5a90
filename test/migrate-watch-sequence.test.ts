/**
 * Migration 0016 moves the run-change watch from a table to a sequence the row triggers read in their
 * WHEN (no trigger function call per commit while nobody watches). A watch that was live in the table
 * stays live, the roles that could read or renew it can read or renew the sequence, and both triggers
 * test it; whether changes are then announced is test/run-changes.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import type { Database } from '../src/persistence/database.ts';
import { migrate } from '../src/persistence/migrate.ts';
import { migrationsBefore } from './helpers/migrations.ts';
import { openTestStore } from './helpers/postgres.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function storeAt0015(kind: 'postgres' | 'pglite'): Promise<Database> {
  const store = await openTestStore(kind, { empty: true });
  cleanups.push(() => store.close());
  const dir = migrationsBefore('0016_run_change_watch_sequence');
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  await migrate(store.db, dir);
  return store.db;
}

describe.each(['postgres', 'pglite'] as const)('migration 0016 (run-change watch as a sequence) on %s', (kind) => {
  it('keeps a live watch, and every trigger on the runs tests the sequence', async () => {
    const db = await storeAt0015(kind);
    await db.query(`update rmapp_run_change_watch set until = now() + interval '1 hour'`);
    await migrate(db);

    const [watch] = await db.query<{ left_s: number }>(
      `select extract(epoch from to_timestamp(pg_sequence_last_value('rmapp_run_change_watch_until')) - now())::float8 as left_s`,
    );
    expect(watch?.left_s, 'seconds the carried-over watch has left').toBeGreaterThan(3590);
    expect(watch?.left_s).toBeLessThanOrEqual(3601);
    const tables = await db.query(`select 1 from pg_tables where tablename = 'rmapp_run_change_watch'`);
    expect(tables, 'the watch table is dropped').toEqual([]);
    const triggers = await db.query<{ tgname: string; def: string }>(
      `select tgname, pg_get_triggerdef(oid) as def from pg_trigger where tgrelid = 'rmapp_runs'::regclass and not tgisinternal order by tgname`,
    );
    expect(triggers.map((t) => t.tgname)).toEqual(['rmapp_run_deleted', 'rmapp_run_inserted', 'rmapp_run_updated']);
    for (const t of triggers) expect(t.def, `${t.tgname} reads the watch in its WHEN`).toMatch(/WHEN \(.*rmapp_run_change_watch_until/);
  });

  it('while watched, announces inserts and the updates the stream shows, not lease renewals', async () => {
    const db = await storeAt0015(kind);
    await migrate(db);
    await db.query(`select setval('rmapp_run_change_watch_until', floor(extract(epoch from now()))::bigint + 3600)`);
    const heard: string[] = [];
    let markerHeard: () => void = () => {};
    const marker = new Promise<void>((resolve) => (markerHeard = resolve));
    const stop = await db.listen('rmapp_run_changed', (p) => (p === 'marker' ? markerHeard() : heard.push(p)));
    cleanups.push(stop);
    await db.query(`insert into rmapp_runs (id, workflow, workflow_version) values ('inserted', 'w', 'v1'), ('renewed', 'w', 'v1')`);
    await db.query(`update rmapp_runs set lease_expires_at = now() + interval '1 minute' where id = 'renewed'`);
    await db.query(`update rmapp_runs set version = version + 1 where id = 'inserted'`);
    await db.query(`update rmapp_runs set status = 'waiting', wake_at = now() where id = 'renewed'`);
    await db.query(`update rmapp_runs set wake_at = now() + interval '1 hour' where id = 'renewed'`);
    await db.query(`update rmapp_runs set wake_at = now() + interval '1 hour' where id = 'inserted'`);
    await db.query(`select pg_notify('rmapp_run_changed', 'marker')`);
    await marker;
    expect(
      heard,
      "two inserts, a new version, a new status, a waiting run's new wake-up; no lease renewal, no pending run's wake-up",
    ).toEqual(['inserted', 'renewed', 'inserted', 'renewed', 'renewed']);
  });

  it('leaves a lapsed watch unset: nothing is announced', async () => {
    const db = await storeAt0015(kind);
    await migrate(db);
    const [watch] = await db.query<{ v: string | null }>(`select pg_sequence_last_value('rmapp_run_change_watch_until') as v`);
    expect(watch?.v, 'the default watch (-infinity) is not carried over').toBeNull();
  });
});

describe('migration 0016 on postgres, with another role', () => {
  it('gives the roles that could read or renew the watch the same rights on the sequence, and no more', async () => {
    const db = await storeAt0015('postgres');
    const role = `rmapp_watch_${randomBytes(4).toString('hex')}`;
    await db.query(`create role ${role}`);
    // Before the database goes (cleanups run in reverse): its grants, then the role, which is the cluster's.
    cleanups.push(async () => {
      await db.query(`drop owned by ${role}`);
      await db.query(`drop role ${role}`);
    });
    await db.query(`grant select, update, insert on rmapp_run_change_watch to ${role}`);
    await migrate(db);
    const [rights] = await db.query<{ sel: boolean; upd: boolean; usage: boolean }>(
      `select has_sequence_privilege($1, 'rmapp_run_change_watch_until', 'SELECT') as sel,
              has_sequence_privilege($1, 'rmapp_run_change_watch_until', 'UPDATE') as upd,
              has_sequence_privilege($1, 'rmapp_run_change_watch_until', 'USAGE') as usage`,
      [role],
    );
    expect(rights).toEqual({ sel: true, upd: true, usage: false });
  });
});
