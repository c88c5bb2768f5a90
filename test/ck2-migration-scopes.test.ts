/**
 * Migration 0023 on the keys of a workflow named `g`: its old keys (`g:<key>`, the workflow's name and
 * `:`) begin like the scoped form of a global key, and were left as they were — every keyed run of the
 * workflow then counted under the global key `<key>`, not beside the new runs of its own key.
 */
import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, openDatabase, type Database } from '../src/index.ts';
import { migrate } from '../src/persistence/migrate.ts';
import { migrationsBefore } from './helpers/migrations.ts';

const machine = setup({}).createMachine({ initial: 'idle', states: { idle: {} } });
const keyed = (name: string) =>
  defineWorkflow({ name, machine, input: z.object({ k: z.string() }), concurrency: { limit: 1, key: (i) => i.k } });

let db: Database | undefined;
let dir: string | undefined;
afterEach(async () => {
  await db?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  db = dir = undefined;
});

describe('migration 0023 and a workflow named g', () => {
  it('rewrites the old keys of workflow g into its own scope, where its new runs of the key queue behind them', async () => {
    dir = migrationsBefore('0023_concurrency_key_scopes');
    db = await openDatabase({ dataDir: 'memory://' });
    await migrate(db, dir);
    const g = keyed('g');
    const old = createEngine({ database: db, workflows: [g], migrate: false });
    const id = await old.start(g, { k: 'prod' });
    // As the version before 0023 stored it: the workflow's name, ':', the key.
    await db.query(`update rmapp_runs set concurrency_key = 'g:prod' where id = $1`, [id]);
    await old.stop();

    await migrate(db);
    const [row] = await db.query<{ concurrency_key: string }>(`select concurrency_key from rmapp_runs where id = $1`, [id]);
    expect(row?.concurrency_key, `run ${id} of workflow g, old key g:prod`).toBe('w:g:prod');

    const engine = createEngine({ database: db, workflows: [g] });
    const next = await engine.start(g, { k: 'prod' });
    const info = await engine.get(next);
    expect(info.queue, `a second run of workflow g's key prod (${next}), beside run ${id} holding its one slot`).toMatchObject({
      key: 'g:prod',
      scope: 'workflow',
      position: 1,
    });
    await engine.stop();
  });
});
