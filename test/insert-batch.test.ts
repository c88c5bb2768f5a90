/**
 * Local starts that arrive while an insert is in flight are inserted together, in one statement
 * (src/state_machine/insert-batcher.ts, src/persistence/run-inserts.ts). A batched run must get the
 * row a lone insert gives it, every start must get its own answer — the existing run for a taken
 * idempotency key, its own error for a value Postgres refuses — and no start may be lost or doubled.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, step, type Database, type Engine } from '../src/index.ts';
import { claimRuns } from '../src/persistence/claims.ts';
import { migrate } from '../src/persistence/migrate.ts';
import { insertClaimedRuns, type ClaimedNewRun } from '../src/persistence/run-inserts.ts';
import { insertRun } from '../src/persistence/runs.ts';
import { openTestStore } from './helpers/postgres.ts';

const noop = step(async ({ input }: { input: { n: number } }) => input.n);
const twoSteps = defineWorkflow({
  name: 'ib.two',
  machine: setup({ actors: { noop } }).createMachine({
    id: 'two',
    initial: 'a',
    states: {
      a: { invoke: { src: 'noop', input: { n: 1 }, onDone: 'b' } },
      b: { invoke: { src: 'noop', input: { n: 2 }, onDone: 'done' } },
      done: { type: 'final' },
    },
  }),
  input: z.object({ tag: z.string() }),
});

/** A batch insert is the statement that inserts runs from a JSON payload. */
const isBatchInsert = (text: string) => /jsonb_to_recordset/.test(text) && /insert into rmapp_runs/.test(text);

describe.each(['postgres', 'pglite'] as const)('%s', (kind) => {
  let db: Database;
  let close: () => Promise<void>;
  let engine: Engine;
  const batchSizes: number[] = [];
  beforeAll(async () => {
    ({ db, close } = await openTestStore(kind));
    await migrate(db);
    const counted: Database = {
      ...db,
      kind: db.kind,
      description: db.description,
      query: (text, params) => {
        if (isBatchInsert(text)) batchSizes.push((JSON.parse(String(params?.[0])) as unknown[]).length);
        return db.query(text, params);
      },
      script: (list) => db.script(list),
      listen: (channel, fn) => db.listen(channel, fn),
      close: () => db.close(),
    };
    engine = createEngine({ database: counted, workflows: [twoSteps], concurrency: 100, pollMs: 50 });
    await engine.startWorker();
  });
  const expectBatched = () =>
    expect(
      batchSizes.some((n) => n > 1),
      `starts made while an insert was in flight went in one statement (batch sizes: ${JSON.stringify(batchSizes)})`,
    ).toBe(true);
  afterAll(async () => {
    await engine.stop();
    await close();
  });

  it('starts made together are inserted in batches, and every run finishes once', async () => {
    batchSizes.length = 0;
    const ids = await Promise.all(Array.from({ length: 40 }, (_, i) => engine.start('ib.two', { tag: `t${i}` })));
    expect(new Set(ids).size, 'each start its own run').toBe(40);
    // PGlite runs a statement inside this process before the next start gets to its insert: nothing to group.
    if (kind === 'postgres') expectBatched();
    const rows = await Promise.all(ids.map((id) => engine.waitFor(id, { timeoutMs: 30_000 })));
    expect(rows.map((r) => r.status)).toEqual(ids.map(() => 'succeeded'));
    for (const id of ids) {
      const history = await engine.history(id);
      const starts = history.filter((e) => e.type === 'run.started').length;
      expect(starts, `run ${id} started once`).toBe(1);
    }
  });

  it('a taken idempotency key in a batch: those starts get the existing run, the others are created', async () => {
    const first = await engine.start('ib.two', { tag: 'k' }, { idempotencyKey: 'ib-key' });
    batchSizes.length = 0;
    const starts = await Promise.all([
      ...Array.from({ length: 8 }, (_, i) => engine.start('ib.two', { tag: `x${i}` })),
      engine.start('ib.two', { tag: 'k' }, { idempotencyKey: 'ib-key' }),
      engine.start('ib.two', { tag: 'k2' }, { idempotencyKey: 'ib-key-2' }),
      engine.start('ib.two', { tag: 'k2' }, { idempotencyKey: 'ib-key-2' }),
    ]);
    if (kind === 'postgres') expectBatched();
    expect(starts[8], 'a start with a taken key returns the existing run').toBe(first);
    expect(starts[9], 'two starts with one new key in one batch are one run').toBe(starts[10]);
    expect(new Set(starts.slice(0, 8)).size, 'the other starts are runs of their own').toBe(8);
    for (const id of new Set(starts)) expect((await engine.waitFor(id, { timeoutMs: 30_000 })).status).toBe('succeeded');
  });

  it('a start refused for its input (a NUL, which jsonb cannot hold) fails alone; the starts made with it succeed', async () => {
    batchSizes.length = 0;
    const results = await Promise.allSettled([
      ...Array.from({ length: 6 }, (_, i) => engine.start('ib.two', { tag: `ok${i}` })),
      engine.start('ib.two', { tag: 'bad\u0000nul' }),
    ]);
    if (kind === 'postgres') expectBatched();
    const refused = results.filter((r) => r.status === 'rejected');
    expect(refused.length, 'only the start whose input holds a NUL fails').toBe(1);
    expect(String((refused[0] as PromiseRejectedResult).reason)).toMatch(/\\u0000|NUL|null character|0x00/i);
    for (const r of results)
      if (r.status === 'fulfilled') expect((await engine.waitFor(r.value, { timeoutMs: 30_000 })).status).toBe('succeeded');
  });

  it('a batch writes the row a lone insert writes', async () => {
    const claimFor = (release: boolean): ClaimedNewRun['claimFor'] => ({
      owner: 'ib:owner',
      leaseMs: 60_000,
      deadlineAt: new Date('2031-01-01T00:00:00.000Z'),
      status: release ? 'succeeded' : 'running',
      snapshotJson: JSON.stringify({ value: 'a', context: { n: 1 } }),
      stateValue: 'a',
      output: release ? { done: true } : null,
      error: null,
      timers: [],
      steps: { a: { attempt: 1 } },
      release,
      wakeAt: null,
      history: [{ type: 'run.started' }, { type: 'state.entered', path: 'two', state: 'a' }],
    });
    const run = (id: string, release: boolean, input: unknown = { tag: id }): ClaimedNewRun => ({
      id,
      workflow: 'ib.rows',
      workflowVersion: 'v',
      input,
      idempotencyKey: `key-${id}`,
      parentRunId: null,
      traceContext: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      claimFor: claimFor(release),
    });
    for (const release of [false, true]) {
      const tag = release ? 'final' : 'held';
      await insertRun(db, run(`ib-lone-${tag}`, release));
      await insertClaimedRuns(db, [run(`ib-batch-${tag}`, release), run(`ib-batch2-${tag}`, release)]);
      const rowOf = async (id: string) => {
        const [row] = await db.query<Record<string, unknown>>(
          `select status, snapshot, state_value, input, output, output is null as output_sql_null, error is null as error_sql_null,
             timers, steps, version, history_rows, lease_owner, lease_expires_at is not null as leased, wake_at is not null as wakes,
             finished_at is not null as finished, lease_epoch, deadline_at, trace_context, idempotency_key is not null as keyed,
             (select count(*)::int from rmapp_run_history h where h.run_id = r.id) as history,
             (select log::text from rmapp_run_history h where h.run_id = r.id) as log
           from rmapp_runs r where id = $1`,
          [id],
        );
        return { ...row, input: undefined };
      };
      expect(await rowOf(`ib-batch-${tag}`), `${tag}: a batched run's row against a lone insert's`).toEqual(await rowOf(`ib-lone-${tag}`));
    }
    // Held runs are claimable by nobody else while leased; finished ones by nobody at all.
    expect(await claimRuns(db, { owner: 'other', leaseMs: 1000, limit: 10, definitions: [['ib.rows', 'v']] })).toEqual([]);
  });
});
