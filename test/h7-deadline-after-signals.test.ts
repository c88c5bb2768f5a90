/**
 * A run whose deadline (`timeoutMs`) passes while no worker runs it (a deploy, a restart), with signals
 * sent to it before the deadline waiting in its inbox: the worker that takes it next delivers them before
 * the deadline ends the run, on Postgres as on PGlite. On Postgres the deadline's timer (due already) came
 * before the inbox read's answer: the run timed out without them — left unconsumed, answered `ignored`,
 * their dedupe keys held, no history entry — while on PGlite, whose read answers sooner, the same run
 * took them.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { assign, setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, silentLogger } from '../src/index.ts';
import { createTestDatabase } from './helpers/postgres.ts';

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => {});
});

const counter = defineWorkflow({
  name: 'h7.counter',
  input: z.object({}),
  machine: setup({ types: {} as { context: { n: number } } }).createMachine({
    id: 'counter',
    initial: 'idle',
    context: { n: 0 },
    states: { idle: { on: { add: { actions: assign({ n: ({ context }) => context.n + 1 }) } } } },
  }),
});

describe.each(['postgres', 'pglite'] as const)('signals waiting when a run past its deadline is taken (%s)', (kind) => {
  it('are delivered before the run times out', async () => {
    let database: string | { url: string; dataDir: string };
    if (kind === 'postgres') {
      const testDb = await createTestDatabase();
      closers.push(() => testDb.drop());
      database = testDb.url;
    } else database = { url: '', dataDir: join(mkdtempSync(join(tmpdir(), 'h7-deadline-')), 'store') };
    const first = createEngine({ workflows: [counter], database, logger: silentLogger, evictAfterMs: 0 });
    await first.startWorker();
    const id = await first.start(counter, {}, { timeoutMs: 2_500 });
    expect((await first.send(id, { type: 'add' }, { waitMs: 2_000 })).outcome).toBe('received');
    await first.stop();
    // No worker runs now: three events are sent, and the deadline passes.
    const sender = createEngine({ workflows: [counter], database, logger: silentLogger });
    const ids: number[] = [];
    for (const key of ['k1', 'k2', 'k3']) ids.push((await sender.send(id, { type: 'add' }, { dedupeKey: key })).id as number);
    await sender.stop();
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const next = createEngine({ workflows: [counter], database, logger: silentLogger });
    closers.push(() => next.stop());
    await next.startWorker();
    const run = await next.waitFor(id, { timeoutMs: 20_000 });
    expect(run.status).toBe('failed');
    expect(run.error?.code).toBe('RUN_TIMEOUT');
    const rows = await (
      await next.db()
    ).query<{ id: number; outcome: string | null }>('select id::float8 as id, outcome from rmapp_run_inbox where run_id = $1 order by id', [
      id,
    ]);
    const outcomes = Object.fromEntries(rows.map((r) => [Number(r.id), r.outcome]));
    for (const signal of ids) expect(outcomes[signal], `signal ${signal} sent before the deadline`).toBe('received');
    const snapshot = (await next.db()).query<{ n: number }>("select (snapshot->'context'->>'n')::int as n from rmapp_runs where id = $1", [
      id,
    ]);
    expect((await snapshot)[0]?.n, 'the count in the state the run timed out in').toBe(4);
  });
});
