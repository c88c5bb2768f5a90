/**
 * Adversarial: migration 0014 rebuilds rmapp_runs (copy, drop, rename) on a database an engine used at
 * 0013, with runs in every state: pending, queued behind a concurrency key, running under a lease a
 * dead worker holds, waiting on a signal that arrived while no worker ran, waiting on a timer,
 * succeeded (one with a jsonb `null` error as 0013 stored it), failed, cancelled, a child with its
 * parent, an idempotency key, an artifact, history. After 0014 and 0015: the catalog of rmapp_runs is
 * what it was (indexes, constraints, triggers, fill factor, columns), every row is intact, and the
 * runs resume and finish; the live-stream trigger still announces.
 */
import { rmSync } from 'node:fs';
import { setup } from 'xstate';
import { z } from 'zod';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, defineWorkflow, openDatabase, step, type Database, type Engine } from '../src/index.ts';
import { loadMigrations, migrate } from '../src/persistence/migrate.ts';
import { createTestDatabase } from './helpers/postgres.ts';
import { durabilityWorkflows } from './helpers/durability-workflows.ts';
import { migrationsUpTo } from './helpers/migrations.ts';

/** The migrations a 0013 database gets: 0014 and every later one. */
const FROM_0014 = loadMigrations()
  .map((m) => m.tag)
  .filter((tag) => tag >= '0014');

const gateMachine = setup({ types: {} as { events: { type: 'go' } } }).createMachine({
  id: 'gate',
  initial: 'held',
  states: { held: { on: { go: 'done' } }, done: { type: 'final' } },
});
const gated = defineWorkflow({ name: 'adv3.gated', machine: gateMachine, input: z.object({}), concurrency: { limit: 1, key: () => 'q' } });

const saves = step(async ({ saveArtifact }: { saveArtifact: (n: string, v: unknown) => Promise<void> }) => {
  await saveArtifact('report', { lines: ['a', 'b'] });
  return 'saved';
});
const artifactMachine = setup({ actors: { saves } }).createMachine({
  id: 'artifact',
  initial: 'saving',
  states: { saving: { invoke: { src: 'saves', onDone: 'done' } }, done: { type: 'final' } },
});
const withArtifact = defineWorkflow({ name: 'adv3.artifact', machine: artifactMachine, input: z.object({}) });

const workflows = [...durabilityWorkflows(), gated, withArtifact];

interface Catalog {
  columns: string[];
  indexes: string[];
  constraints: string[];
  triggers: string[];
  reloptions: string[] | null;
  referencing: string[];
  replident: string;
}

async function catalogOf(db: Database): Promise<Catalog> {
  const q = async <T>(sql: string) => db.query<T>(sql);
  const columns = (
    await q<{ c: string }>(
      `select attname || ' ' || format_type(atttypid, atttypmod) || case when attnotnull then ' not null' else '' end
         || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '') as c
       from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
       where a.attrelid = 'rmapp_runs'::regclass and a.attnum > 0 and not a.attisdropped order by attname`,
    )
  ).map((r) => r.c);
  const indexes = (await q<{ d: string }>(`select indexdef as d from pg_indexes where tablename = 'rmapp_runs' order by indexname`)).map(
    (r) => r.d,
  );
  const constraints = (
    await q<{ d: string }>(
      // Postgres 18 (PGlite) also lists NOT NULL as named constraints: 0014 leaves them named after
      // rmapp_runs_reordered (reported, not fixed); the columns' NOT NULL is compared above.
      `select conname || ': ' || pg_get_constraintdef(oid) as d from pg_constraint where conrelid = 'rmapp_runs'::regclass and contype <> 'n' order by conname`,
    )
  ).map((r) => r.d);
  const triggers = (
    await q<{ d: string }>(
      `select pg_get_triggerdef(oid) || ' enabled=' || tgenabled::text as d from pg_trigger where tgrelid = 'rmapp_runs'::regclass and not tgisinternal order by tgname`,
    )
  ).map((r) => r.d);
  const [rel] = await q<{ reloptions: string[] | null; replident: string }>(
    `select reloptions, relreplident::text as replident from pg_class where oid = 'rmapp_runs'::regclass`,
  );
  const referencing = (
    await q<{ d: string }>(
      `select conrelid::regclass::text || ' ' || conname as d from pg_constraint where confrelid = 'rmapp_runs'::regclass order by 1`,
    )
  ).map((r) => r.d);
  return { columns, indexes, constraints, triggers, reloptions: rel!.reloptions, referencing, replident: rel!.replident };
}

/** Every run row, with columns by name, output/error as 0014 normalizes them (jsonb null → SQL null). */
async function rowsOf(db: Database): Promise<Record<string, unknown>[]> {
  return db.query(
    // Without 0020's steps_done: 0014's table lacks it until 0020 adds it again (null in every run here, checked).
    `select id, to_jsonb(r) - 'output' - 'error' - 'steps_done' as row, nullif(output, 'null'::jsonb) as output, nullif(error, 'null'::jsonb) as error
     from rmapp_runs r order by id`,
  );
}

async function settle<T>(read: () => Promise<T>, ok: (v: T) => boolean, what: string, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > until) throw new Error(`timed out: ${what} (last: ${JSON.stringify(v)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

for (const kind of ['postgres', 'pglite'] as const) {
  describe(`migration 0014 on a 0013 database with runs in every state (${kind})`, () => {
    const cleanups: (() => Promise<void> | void)[] = [];
    afterAll(async () => {
      for (const c of cleanups.reverse()) await c();
    });

    it('keeps the catalog, the rows, and lets every run resume and finish', async () => {
      const dir = migrationsUpTo('0013_drop_created_index');
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      let db: Database;
      if (kind === 'pglite') db = await openDatabase({ url: '', dataDir: 'memory://' });
      else {
        const t = await createTestDatabase({ prefix: 'advtest', empty: true });
        cleanups.push(() => t.drop());
        db = await openDatabase({ url: t.url });
      }
      cleanups.push(() => db.close());
      await migrate(db, dir);
      // The engine of today commits batches through 0015's function (0020's since), marks kept signals in
      // 0019's column and reads 0020's; give the 0013 database just those (each may be applied again).
      for (const tag of ['0015_commit_in_id_order', '0019_inbox_reported', '0020_steps_done']) {
        await db.script(loadMigrations().find((m) => m.tag === tag)!.statements);
      }

      let engine: Engine = createEngine({ database: db, workflows, pollMs: 50, leaseMs: 1_500, migrate: false, concurrency: 10 });
      await engine.startWorker();
      const ids: Record<string, string> = {};
      ids.succeeded = await engine.start('test.flaky', {}, { idempotencyKey: 'adv3-key' });
      ids.failed = await engine.start('test.flaky', { failTimes: 9, failCategory: 'permanent' });
      ids.signalled = await engine.start('test.approval', { timeoutMs: 3_600_000 });
      ids.waitingSignal = await engine.start('test.approval', { timeoutMs: 3_600_000 });
      ids.timer = await engine.start('test.timer', { delayMs: 4_000 });
      ids.cancelled = await engine.start('test.hanging', {});
      ids.leased = await engine.start('test.hanging', {});
      ids.parent = await engine.start('test.parent', {});
      ids.child = await engine.start('test.flaky', {}, { parentRunId: ids.waitingSignal });
      ids.gateA = await engine.start('adv3.gated', {});
      ids.artifact = await engine.start('adv3.artifact', {});
      const st = async (id: string) => (await engine.get(id)).status;
      await settle(
        () => st(ids.succeeded!),
        (s) => s === 'succeeded',
        'succeeded',
      );
      await settle(
        () => st(ids.failed!),
        (s) => s === 'failed',
        'failed',
      );
      await settle(
        () => st(ids.parent!),
        (s) => s === 'succeeded',
        'parent',
      );
      await settle(
        () => st(ids.child!),
        (s) => s === 'succeeded',
        'child',
      );
      await settle(
        () => st(ids.artifact!),
        (s) => s === 'succeeded',
        'artifact',
      );
      await settle(
        async () => (await engine.get(ids.signalled!)).state,
        (s) => s === 'awaitingApproval',
        'signalled waits',
      );
      await settle(
        async () => (await engine.get(ids.waitingSignal!)).state,
        (s) => s === 'awaitingApproval',
        'waits',
      );
      await settle(
        () => st(ids.timer!),
        (s) => s === 'waiting',
        'timer waits',
      );
      await settle(
        () => st(ids.gateA!),
        (s) => s === 'waiting',
        'gate A admitted and waiting',
      );
      await settle(
        () => st(ids.cancelled!),
        (s) => s === 'running',
        'hanging',
      );
      await settle(
        () => st(ids.leased!),
        (s) => s === 'running',
        'hanging',
      );
      await engine.cancel(ids.cancelled!);
      await settle(
        () => st(ids.cancelled!),
        (s) => s === 'cancelled',
        'cancelled',
      );
      await engine.stop();
      // While no worker runs: a signal arrives, a queued run and a pending run are started, a dead
      // worker holds a lease, and 0013's jsonb null is in a succeeded run's error.
      engine = createEngine({ database: db, workflows, pollMs: 50, leaseMs: 1_500, migrate: false });
      await engine.send(ids.signalled!, { type: 'approve', by: 'before-0014' });
      ids.gateB = await engine.start('adv3.gated', {});
      ids.pending = await engine.start('test.flaky', {});
      await db.query(
        `update rmapp_runs set status = 'running', lease_owner = 'dead-worker', lease_epoch = lease_epoch + 1,
           lease_expires_at = now() + interval '2 seconds', wake_at = now() + interval '2 seconds' where id = $1`,
        [ids.leased],
      );
      await db.query(`update rmapp_runs set error = 'null'::jsonb where id = $1`, [ids.succeeded]);
      const before = await catalogOf(db);
      const rowsBefore = await rowsOf(db);
      const inboxBefore = await db.query(`select * from rmapp_run_inbox order by id`);
      const historyBefore = await db.query(`select run_id, count(*)::int as n from rmapp_run_history group by run_id order by run_id`);
      const artifactsBefore = await db.query(`select run_id, name from rmapp_artifacts order by 1, 2`).catch(() => null);
      expect(await db.query(`select id from rmapp_runs where steps_done is not null`), 'runs with counts in steps_done').toEqual([]);
      const statuses = Object.fromEntries(rowsBefore.map((r) => [r.id, (r.row as { status: string }).status]));
      expect(new Set(Object.values(statuses)), JSON.stringify(statuses)).toEqual(
        new Set(['pending', 'running', 'waiting', 'succeeded', 'failed', 'cancelled']),
      );

      // 0014 and 0015 first: the catalog they leave is 0013's but for the fill factor (0016 then
      // changes the triggers' condition on purpose: test/migrate-watch-sequence.test.ts).
      const upTo0015 = migrationsUpTo('0015_commit_in_id_order');
      cleanups.push(() => rmSync(upTo0015, { recursive: true, force: true }));
      const { applied } = await migrate(db, upTo0015);
      expect(applied).toEqual(FROM_0014.filter((tag) => tag <= '0015_commit_in_id_order'));

      const after = await catalogOf(db);
      // The one intended change: the fill factor, 70 → 50 (migration 0014's comment says why).
      expect(before.reloptions, 'the fill factor migration 0001 set').toEqual(['fillfactor=70']);
      // 0020's column, given to the 0013 table above for today's engine, is not one 0014's table has:
      // the rest of the migrations add it again (it is null in every run of this test).
      expect(after, 'rmapp_runs catalog after 0014 (indexes, constraints, triggers, fill factor 50)').toEqual({
        ...before,
        columns: before.columns.filter((c) => !c.startsWith('steps_done ')),
        reloptions: ['fillfactor=50'],
      });
      expect(await rowsOf(db)).toEqual(rowsBefore);
      const [nulls] = await db.query<{ n: number }>(
        `select count(*)::int as n from rmapp_runs where output = 'null'::jsonb or error = 'null'::jsonb`,
      );
      expect(nulls!.n, 'jsonb null left in output/error').toBe(0);
      expect(await db.query(`select * from rmapp_run_inbox order by id`)).toEqual(inboxBefore);
      expect(await db.query(`select run_id, count(*)::int as n from rmapp_run_history group by run_id order by run_id`)).toEqual(
        historyBefore,
      );
      if (artifactsBefore) expect(await db.query(`select run_id, name from rmapp_artifacts order by 1, 2`)).toEqual(artifactsBefore);
      const [leftover] = await db.query<{ n: number }>(
        `select count(*)::int as n from pg_class where relname like 'rmapp_runs_reordered%'`,
      );
      expect(leftover!.n).toBe(0);

      // The live stream's trigger announces again.
      const announced: string[] = [];
      const unlisten = await db.listen('rmapp_run_changed', (p) => announced.push(p));
      expect((await migrate(db)).applied, 'the migrations after 0015').toEqual(FROM_0014.filter((tag) => tag > '0015_commit_in_id_order'));
      await db.query(`select setval('rmapp_run_change_watch_until', floor(extract(epoch from now()))::bigint + 3600)`);

      engine = createEngine({ database: db, workflows, pollMs: 50, leaseMs: 1_500 });
      await engine.startWorker();
      // Duplicate start by key returns the first run; the unique index holds.
      expect(await engine.start('test.flaky', {}, { idempotencyKey: 'adv3-key' })).toBe(ids.succeeded);
      await expect(
        db.query(`insert into rmapp_runs (id, workflow, workflow_version, idempotency_key) values ('dup', 'x', 'v', 'adv3-key')`),
      ).rejects.toThrow(/duplicate key|unique/);
      await expect(db.query(`update rmapp_runs set status = 'bogus' where id = $1`, [ids.succeeded])).rejects.toThrow(/check constraint/);
      expect((await engine.get(ids.succeeded!)).error).toBeNull();
      expect(await engine.getArtifact(ids.artifact!, 'report')).toEqual({ lines: ['a', 'b'] });
      expect((await engine.get(ids.child!)).parentRunId).toBe(ids.waitingSignal);

      await settle(
        () => st(ids.signalled!),
        (s) => s === 'succeeded',
        'signal sent before 0014 consumed',
      );
      expect((await engine.get(ids.signalled!)).output).toEqual({ approvals: 1, approvedBy: 'before-0014' });
      await settle(
        () => st(ids.pending!),
        (s) => s === 'succeeded',
        'pending run',
      );
      await settle(
        () => st(ids.timer!),
        (s) => s === 'succeeded',
        'timer run',
      );
      await settle(
        async () => (await engine.get(ids.leased!)).leaseOwner,
        (o) => o !== null && o !== 'dead-worker',
        'lease taken over',
      );
      await engine.cancel(ids.leased!);
      await settle(
        () => st(ids.leased!),
        (s) => s === 'cancelled',
        'taken over, then cancelled',
      );
      expect((await engine.get(ids.gateB!)).status).toBe('pending');
      await engine.send(ids.gateA!, { type: 'go' });
      await settle(
        () => st(ids.gateA!),
        (s) => s === 'succeeded',
        'gate A',
      );
      await settle(
        () => st(ids.gateB!),
        (s) => s === 'waiting',
        'gate B admitted once A finished',
      );
      await engine.send(ids.gateB!, { type: 'go' });
      await engine.send(ids.waitingSignal!, { type: 'approve', by: 'after-0014' });
      await settle(
        () => st(ids.gateB!),
        (s) => s === 'succeeded',
        'gate B',
      );
      await settle(
        () => st(ids.waitingSignal!),
        (s) => s === 'succeeded',
        'approval after 0014',
      );
      const signalled = await engine.history(ids.signalled!);
      expect(signalled.filter((e) => e.type === 'signal.received').length, 'the signal sent before 0014 taken once').toBeLessThanOrEqual(1);
      await settle(
        async () => announced,
        (a) => a.includes(ids.gateB!) && a.includes(ids.waitingSignal!),
        'live-stream announcements',
      );
      await unlisten();
      await engine.stop();
    }, 120_000);
  });
}
