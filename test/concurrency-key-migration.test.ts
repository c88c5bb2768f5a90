/**
 * Migration 0023 rewrites the concurrency keys of runs stored in the form before it (`<workflow>:<key>`,
 * `<workflow>`, a global key as it was) into the scoped form (src/state_machine/concurrency-key.ts), so a
 * run that held or waited for a slot before the upgrade is still counted by its key after it: a new run
 * of that key queues behind it, in order, and a run the old form confused with another scope does not.
 * Failed runs (a retry puts them back in their key's queue) are rewritten too; finished ones are not.
 */
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, openDatabase, type Database, type Engine } from '../src/index.ts';
import { migrate } from '../src/persistence/migrate.ts';
import { createTestDatabase } from './helpers/postgres.ts';
import { migrationsUpTo } from './helpers/migrations.ts';
import { deploy, shared, sharedToo, whole } from './helpers/concurrency-key-workflows.ts';

const workflows = [deploy, whole, shared, sharedToo];

describe.each(['pglite', 'postgres'] as const)('migration 0023 keeps old concurrency keys counted (%s)', (kind) => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('a run stored with a key in the old form still holds its slot and its place after migrating', async () => {
    const dir = migrationsUpTo('0022_cleanup_owed_index');
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    let db: Database;
    if (kind === 'pglite') db = await openDatabase({ url: '', dataDir: 'memory://' });
    else {
      const t = await createTestDatabase({ empty: true });
      cleanups.push(() => t.drop());
      db = await openDatabase({ url: t.url });
    }
    cleanups.push(() => db.close());
    await migrate(db, dir);
    // No worker: an admitted run holds its key's slot (pending, admitted) until it ends.
    const engine: Engine = createEngine({ database: db, workflows, migrate: false });
    cleanups.push(() => engine.stop());
    const old = {
      globalHolder: await engine.start(shared, { key: 'issue:o/r#1' }),
      globalQueued: await engine.start(sharedToo, { key: 'issue:o/r#1' }),
      deployHolder: await engine.start(deploy, { key: 'prod' }),
      wholeHolder: await engine.start(whole, { key: 'x' }),
      // A global key that reads as workflow ck.deploy's key `stage` in the old form; its run is ck.shared's.
      globalLikeDeploy: await engine.start(shared, { key: 'ck.deploy:stage' }),
      failed: await engine.start(deploy, { key: 'qa' }),
      succeeded: await engine.start(shared, { key: 'done' }),
      // Stored by an engine of this version before the migration (migrate: false): left as they are.
      newGlobal: await engine.start(sharedToo, { key: 'kept' }),
      newDeploy: await engine.start(deploy, { key: 'kept' }),
    };
    // The keys as the code before 0023 stored them.
    const oldKeys: Partial<Record<keyof typeof old, string>> = {
      globalHolder: 'issue:o/r#1',
      globalQueued: 'issue:o/r#1',
      deployHolder: 'ck.deploy:prod',
      wholeHolder: 'ck.whole',
      globalLikeDeploy: 'ck.deploy:stage',
      failed: 'ck.deploy:qa',
      succeeded: 'done',
    };
    for (const [name, key] of Object.entries(oldKeys)) {
      await db.query(`update rmapp_runs set concurrency_key = $2 where id = $1`, [old[name as keyof typeof old], key]);
    }
    await db.query(`update rmapp_runs set status = 'failed', admitted = false where id = $1`, [old.failed]);
    await db.query(`update rmapp_runs set status = 'succeeded', admitted = false where id = $1`, [old.succeeded]);

    await migrate(db);

    const stored = new Map(
      (await db.query<{ id: string; concurrency_key: string }>(`select id, concurrency_key from rmapp_runs`)).map((r) => [
        r.id,
        r.concurrency_key,
      ]),
    );
    expect(Object.fromEntries(Object.entries(old).map(([name, id]) => [name, stored.get(id)]))).toEqual({
      globalHolder: 'g:issue:o/r#1',
      globalQueued: 'g:issue:o/r#1',
      deployHolder: 'w:ck.deploy:prod',
      wholeHolder: 'w:ck.whole',
      globalLikeDeploy: 'g:ck.deploy:stage',
      failed: 'w:ck.deploy:qa',
      succeeded: 'done',
      newGlobal: 'g:kept',
      newDeploy: 'w:ck.deploy:kept',
    });

    const queued = async (id: string) => (await engine.get(id)).queue;
    const after = {
      global: await engine.start(shared, { key: 'issue:o/r#1' }),
      deploy: await engine.start(deploy, { key: 'prod' }),
      whole: await engine.start(whole, { key: 'y' }),
      globalLikeDeploy: await engine.start(sharedToo, { key: 'ck.deploy:stage' }),
      deployStage: await engine.start(deploy, { key: 'stage' }),
    };
    expect(await queued(after.global), `new run ${after.global} of global key issue:o/r#1 (old holder ${old.globalHolder})`).toEqual({
      key: 'issue:o/r#1',
      scope: 'global',
      position: 2,
    });
    expect(await queued(after.deploy), `new ck.deploy run ${after.deploy} of key prod (old holder ${old.deployHolder})`).toEqual({
      key: 'ck.deploy:prod',
      scope: 'workflow',
      position: 1,
    });
    expect(await queued(after.whole), `new ck.whole run ${after.whole} (old holder ${old.wholeHolder})`).toEqual({
      key: 'ck.whole',
      scope: 'workflow',
      position: 1,
    });
    expect(
      await queued(after.globalLikeDeploy),
      `new run ${after.globalLikeDeploy} of global key ck.deploy:stage (old holder ${old.globalLikeDeploy})`,
    ).toEqual({ key: 'ck.deploy:stage', scope: 'global', position: 1 });
    expect(
      await queued(after.deployStage),
      `ck.deploy run ${after.deployStage} of its key stage queued behind the global key ck.deploy:stage`,
    ).toBeUndefined();
    expect(await queued(old.globalQueued), `run ${old.globalQueued}, queued before the upgrade`).toEqual({
      key: 'issue:o/r#1',
      scope: 'global',
      position: 1,
    });
  });
});
