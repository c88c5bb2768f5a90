/**
 * Adversarial: migration 0016 moved the "someone watches run changes" flag into the sequence
 * `rmapp_run_change_watch_until`, which the run triggers' WHEN reads on every insert and update of
 * rmapp_runs. What that condition computes from the sequence's value runs inside every run write, so
 * no value an operator can set, and no state a 0015 database can be in, may make it fail; and while
 * someone watches, every change of a field the live stream shows is announced (README "Dashboard").
 */
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { migrate, openDatabase, type Database } from '../src/index.ts';
import { watchRunChanges } from '../src/persistence/run-changes.ts';
import { markUnregisteredVersions } from '../src/persistence/runs.ts';
import { migrationsUpTo } from './helpers/migrations.ts';
import { createTestDatabase, openTestStore } from './helpers/postgres.ts';
import { cleanupsAfterAll } from './helpers/cleanups.ts';
import { ownedDatabase } from './helpers/owned-database.ts';

const CHANNEL = 'rmapp_run_changed';

const cleanups = cleanupsAfterAll();

const insertRun = (db: Database, id: string, workflow = 'w') =>
  db.query(`insert into rmapp_runs (id, workflow, workflow_version, status) values ($1, $2, 'v1', 'pending')`, [id, workflow]);

/**
 * The run ids announced while `act` runs. A sentinel run inserted after `act` is announced after
 * everything `act` committed (notifications arrive in commit order), so waiting for it needs no clock.
 */
async function announcedDuring(db: Database, act: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  const sentinel = `sentinel-${randomUUID()}`;
  let arrived!: () => void;
  const sentinelSeen = new Promise<void>((resolve) => (arrived = resolve));
  const stop = await db.listen(CHANNEL, (id) => {
    if (id === sentinel) arrived();
    else seen.push(id);
  });
  try {
    await act();
    await insertRun(db, sentinel);
    await sentinelSeen;
  } finally {
    await stop();
  }
  return seen;
}

describe.each(['postgres', 'pglite'] as const)('run-change watch sequence (%s)', (kind) => {
  it('no value an operator can setval makes run writes fail (0016 WHEN: to_timestamp of the value)', async () => {
    const store = await openTestStore(kind, { empty: true });
    cleanups.push(() => store.close());
    const { db } = store;
    await migrate(db);
    // Past the last second a timestamptz holds: refused at the setval, not in every run write after it.
    for (const value of ['9223372036854775807', '9224318016000'])
      await expect(db.query(`select setval('rmapp_run_change_watch_until', $1::bigint)`, [value])).rejects.toThrow(/out of bounds/);
    // The last second a timestamptz holds: a watch, and the run writes are announced.
    const last = '9224318015999';
    await db.query(`select setval('rmapp_run_change_watch_until', $1::bigint)`, [last]);
    const id = 'far-watch';
    const announced = await announcedDuring(db, async () => {
      await insertRun(db, id);
      await db.query(`update rmapp_runs set status = 'running', version = version + 1 where id = $1`, [id]);
    });
    expect(announced).toEqual([id, id]);
    // A renewal keeps the later value.
    await watchRunChanges(db);
    const [row] = await db.query<{ v: string }>(`select pg_sequence_last_value('rmapp_run_change_watch_until')::text as v`);
    expect(row?.v).toBe(last);
  });

  it('a status message set by markUnregisteredVersions is announced while watched (the stream shows it)', async () => {
    const store = await openTestStore(kind, { empty: true });
    cleanups.push(() => store.close());
    const { db } = store;
    await migrate(db);
    await insertRun(db, 'unregistered-1', 'nobody-runs-this');
    await watchRunChanges(db);
    const announced = await announcedDuring(db, async () => {
      expect((await markUnregisteredVersions(db, [['other', 'v1']], 'worker-1')).length).toBe(1);
    });
    const [run] = await db.query<{ status_message: string | null }>(`select status_message from rmapp_runs where id = 'unregistered-1'`);
    expect(run?.status_message).toMatch(/not registered on worker worker-1/);
    expect(announced).toEqual(['unregistered-1']);
  });
});

describe('migration 0016 from a 0015 database (postgres)', () => {
  async function database0015(url?: string): Promise<{ url: string; name: string }> {
    const dir = migrationsUpTo('0015_commit_in_id_order');
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const t = await createTestDatabase({ prefix: 'adv4', empty: true });
    cleanups.push(() => t.drop());
    const db = await openDatabase({ url: url ?? t.url });
    await migrate(db, dir).finally(() => db.close());
    return t;
  }

  it.each(['infinity', '294276-12-31 23:59:59.5+00'])(
    'a watch lasting until %s migrates, and run writes go on being announced',
    async (until) => {
      const t = await database0015();
      const db = await openDatabase({ url: t.url });
      cleanups.push(() => db.close());
      await db.query(`update rmapp_run_change_watch set until = $1::timestamptz`, [until]);
      expect((await migrate(db)).applied).toEqual([
        '0016_run_change_watch_sequence',
        '0017_owner_privileges',
        '0018_run_removed',
        '0019_inbox_reported',
        '0020_steps_done',
        '0021_worker_processes',
        '0022_cleanup_owed_index',
        '0023_concurrency_key_scopes',
      ]);
      expect(await announcedDuring(db, () => insertRun(db, 'after-0016'))).toEqual(['after-0016']);
    },
  );

  it('the role owning the run tables still writes runs and renews the watch after another role (a superuser) ran 0016', async () => {
    // The role migrates to 0015: its tables, functions and the watch table are its own.
    const { ownerDb: owner, superuser } = await ownedDatabase(cleanups, '0015_commit_in_id_order');

    // An operator upgrades with the superuser's URL.
    expect((await migrate(superuser)).applied).toEqual([
      '0016_run_change_watch_sequence',
      '0017_owner_privileges',
      '0018_run_removed',
      '0019_inbox_reported',
      '0020_steps_done',
      '0021_worker_processes',
      '0022_cleanup_owed_index',
      '0023_concurrency_key_scopes',
    ]);

    // Workers connect as the owner: their run writes and the dashboard's renewals still work.
    await insertRun(owner, 'by-owner');
    await owner.query(`update rmapp_runs set status = 'running', version = version + 1 where id = 'by-owner'`);
    await watchRunChanges(owner);
    expect(await announcedDuring(owner, () => insertRun(owner, 'by-owner-watched'))).toEqual(['by-owner-watched']);
  });
});
