/**
 * The engine's run lifecycle on both stores: real Postgres (postgres.js) and PGlite.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createEngine, RunNotFoundError, UnknownWorkflowError, ValidationError, type Database, type Engine } from '../src/index.ts';
import { openTestStore } from './helpers/postgres.ts';
import { executions, failingWorkflow, sequenceWorkflow } from './helpers/workflows.ts';

const sequence = sequenceWorkflow(6);
const fails = failingWorkflow();

describe.each(['postgres', 'pglite'] as const)('engine core on %s', (kind) => {
  let store: { db: Database; close(): Promise<void> };
  let db: Database;
  let engine: Engine;

  beforeAll(async () => {
    store = await openTestStore(kind);
    db = store.db;
    engine = createEngine({ database: db, workflows: [sequence, fails], pollMs: 50, leaseMs: 2_000 });
    await engine.startWorker();
  });

  afterAll(async () => {
    await engine?.stop();
    await store?.close();
  });

  beforeEach(() => executions.clear());

  it('runs a workflow to succeeded with its output and a consistent history', async () => {
    const id = await engine.start('test.sequence', {});
    const run = await engine.waitFor(id, { timeoutMs: 20_000 });
    expect(run.status).toBe('succeeded');
    expect(run.output).toEqual({ sum: 21 });
    expect(run.state).toBe('done');
    expect(run.finishedAt).toBeInstanceOf(Date);
    for (let i = 1; i <= 6; i++) expect(executions.get(`step${i}`)).toBe(1);

    const history = await engine.history(id);
    const types = history.map((h) => h.type);
    expect(types[0]).toBe('run.started');
    expect(types.at(-1)).toBe('run.succeeded');
    expect(history.filter((h) => h.type === 'step.succeeded')).toHaveLength(6);
    const entered = history.filter((h) => h.type === 'state.entered' && h.path === '').map((h) => h.state);
    expect(entered).toEqual(['step1', 'step2', 'step3', 'step4', 'step5', 'step6', 'done']);
    // Every step started only after the state that invoked it had been entered.
    for (let i = 1; i <= 6; i++) {
      const enteredAt = history.findIndex((h) => h.type === 'state.entered' && h.state === `step${i}`);
      const startedAt = history.findIndex((h) => h.type === 'step.started' && h.step === 'add' && h.path === `0.sequence.step${i}`);
      expect(startedAt).toBeGreaterThan(enteredAt);
    }
    // First executions use the default key `<run>/<path>` and do not repeat it in history.
    const started = history.filter((h) => h.type === 'step.started');
    expect(started).toHaveLength(6);
    expect(
      started.filter((h) => h.data !== null),
      'first executions that recorded a key',
    ).toEqual([]);
  });

  it('returns the same run for the same idempotency key, and for the same run id', async () => {
    const a = await engine.start('test.sequence', {}, { idempotencyKey: `key-${kind}` });
    const b = await engine.start('test.sequence', {}, { idempotencyKey: `key-${kind}` });
    expect(b).toBe(a);
    const c = await engine.start('test.sequence', {}, { runId: `fixed-${kind}` });
    const d = await engine.start('test.sequence', {}, { runId: `fixed-${kind}` });
    expect(c).toBe(`fixed-${kind}`);
    expect(d).toBe(c);
    await engine.waitFor(a, { timeoutMs: 20_000 });
    await engine.waitFor(c, { timeoutMs: 20_000 });
    expect((await engine.list({ workflow: 'test.sequence', limit: 1000 })).filter((r) => r.id === a || r.id === c)).toHaveLength(2);
  });

  it('rejects invalid input with an error naming the field, and stores nothing', async () => {
    const before = await db.query<{ n: number }>('select count(*)::int as n from rmapp_runs');
    const err = await engine.start('test.sequence', { slowMs: 'soon' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).message).toMatch(/slowMs/);
    expect((err as ValidationError).issues[0]?.path).toBe('slowMs');
    const after = await db.query<{ n: number }>('select count(*)::int as n from rmapp_runs');
    expect(after[0]?.n).toBe(before[0]?.n);
  });

  it('names the registered workflows when the name is unknown', async () => {
    const err = await engine.start('test.nope', {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnknownWorkflowError);
    expect((err as Error).message).toContain('test.sequence');
  });

  it('answers unknown run ids with RunNotFoundError everywhere', async () => {
    await expect(engine.get('no-such-run')).rejects.toBeInstanceOf(RunNotFoundError);
    await expect(engine.history('no-such-run')).rejects.toBeInstanceOf(RunNotFoundError);
    await expect(engine.waitFor('no-such-run')).rejects.toBeInstanceOf(RunNotFoundError);
    await expect(engine.send('no-such-run', { type: 'x' })).rejects.toBeInstanceOf(RunNotFoundError);
    await expect(engine.cancel('no-such-run')).rejects.toBeInstanceOf(RunNotFoundError);
  });

  it('fails a run whose step throws a permanent error, with the category and no retry', async () => {
    const id = await engine.start('test.fails', {});
    const run = await engine.waitFor(id, { timeoutMs: 20_000 });
    expect(run.status).toBe('failed');
    expect(run.error).toMatchObject({ category: 'permanent', code: 'WIDGET_BROKEN', message: 'the widget is broken' });
    expect(executions.get('boom')).toBe(1);
    const history = await engine.history(id);
    expect(history.filter((h) => h.type === 'step.failed')).toHaveLength(1);
    expect(history.at(-1)?.type).toBe('run.failed');
    // The failed run keeps the snapshot from before the failing step, so it can be retried from there.
    expect(run.state).toBe('working');
  });

  it('fails a run whose snapshot is corrupted with a clear error, and other runs go on', async () => {
    const victim = await engine.start('test.sequence', {});
    await engine.waitFor(victim, { timeoutMs: 20_000 });
    // Corrupt it: a state that does not exist, made runnable again.
    await db.query(
      `update rmapp_runs set status = 'waiting', wake_at = now(), finished_at = null,
         snapshot = jsonb_set(snapshot, '{value}', '"noSuchState"'), state_value = '"noSuchState"' where id = $1`,
      [victim],
    );
    const bystander = await engine.start('test.sequence', {});
    const failed = await engine.waitFor(victim, { timeoutMs: 20_000 });
    expect(failed.status).toBe('failed');
    expect(failed.error?.code).toBe('SNAPSHOT_RESTORE_FAILED');
    expect(failed.error?.message).toMatch(/noSuchState/);
    expect((await engine.waitFor(bystander, { timeoutMs: 20_000 })).status).toBe('succeeded');

    // A snapshot that is not even an XState snapshot.
    await db.query(`update rmapp_runs set status = 'waiting', wake_at = now(), snapshot = '"garbage"' where id = $1`, [victim]);
    const again = await engine.waitFor(victim, { timeoutMs: 20_000 });
    expect(again.error?.code).toBe('SNAPSHOT_RESTORE_FAILED');
  });

  it('leaves a run of an unregistered definition version untouched, with a status message', async () => {
    await db.query(
      `insert into rmapp_runs (id, workflow, workflow_version, status, input, wake_at) values ($1, 'test.sequence', 'v-retired', 'pending', '{}', now())`,
      [`old-${kind}`],
    );
    // Read before any worker marked it, it says that it waits (it read as if the run were stuck).
    expect((await engine.get(`old-${kind}`)).statusMessage).toBe(
      'Definition test.sequence@v-retired is not registered in this process: the run waits untouched until a worker that registers this version claims it.',
    );
    // The worker marks such runs when it starts; a second engine shows how.
    const other = createEngine({ database: db, workflows: [sequence], pollMs: 50 });
    await other.startWorker();
    const done = await other.start('test.sequence', {});
    await other.waitFor(done, { timeoutMs: 20_000 });
    const run = await other.get(`old-${kind}`);
    await other.stop();
    expect(run.status).toBe('pending');
    expect(run.statusMessage).toMatch(/test\.sequence@v-retired is not registered/);
    const history = await engine.history(`old-${kind}`);
    expect(history).toHaveLength(0);
  });

  it('lists runs with filters and returns the finished run from waitFor', async () => {
    const id = await engine.start('test.sequence', {});
    await engine.waitFor(id, { timeoutMs: 20_000 });
    const succeeded = await engine.list({ status: 'succeeded', limit: 500 });
    expect(succeeded.map((r) => r.id)).toContain(id);
    expect(succeeded.filter((r) => r.status !== 'succeeded').map((r) => `${r.id}: ${r.status}`)).toEqual([]);
    const failedId = await engine.start('test.fails', {});
    expect((await engine.waitFor(failedId, { timeoutMs: 20_000 })).status).toBe('failed');
    const failed = await engine.list({ status: ['failed'], workflow: 'test.fails' });
    expect(failed.map((r) => r.id)).toContain(failedId);
    expect(
      failed.filter((r) => r.status !== 'failed' || r.workflow !== 'test.fails').map((r) => `${r.id}: ${r.workflow} ${r.status}`),
    ).toEqual([]);
  });
});
