/**
 * Events sent to one run from one engine without awaiting each send apply in the order of the calls, as
 * `actor.send` in a loop does in plain XState. Each send took its own pooled connection, and on Postgres
 * the inbox's order was whichever got the run's row lock first: 30 sends came out shuffled.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { assign, setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, openDatabase, RunStateError } from '../src/index.ts';
import { engineDatabaseFor } from './helpers/postgres.ts';

const machine = setup({ types: {} as { context: { got: number[] }; events: { type: 'e'; n: number } | { type: 'end' } } }).createMachine({
  id: 'sendOrder',
  context: { got: [] },
  initial: 'open',
  states: { open: { on: { end: 'closed' } }, closed: { type: 'final' } },
  on: { e: { actions: assign({ got: ({ context, event }) => [...context.got, event.n] }) } },
  output: ({ context }) => context.got,
});
const workflow = defineWorkflow({ name: 'test.send-order', machine, input: z.object({}) });

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

it.each(['postgres', 'pglite'] as const)('30 sends in a loop, not awaited one by one, apply in call order (%s)', async (kind) => {
  const db = await openDatabase(await engineDatabaseFor(kind, cleanups));
  cleanups.push(() => db.close());
  const engine = createEngine({ database: db, workflows: [workflow] });
  cleanups.push(() => engine.stop());
  await engine.startWorker();
  const id = await engine.start(workflow, {});
  const sends = Array.from({ length: 30 }, (_, n) => engine.send(id, { type: 'e', n }));
  sends.push(engine.send(id, { type: 'end' }));
  await Promise.all(sends);
  const run = await engine.waitFor(id, { timeoutMs: 30_000 });
  expect(run.output, 'the events in the order they were applied').toEqual(Array.from({ length: 30 }, (_, n) => n));
  // A send the engine refuses (the run has finished) does not hold up the ones after it.
  const late = [engine.send(id, { type: 'e', n: 30 }), engine.send(id, { type: 'e', n: 31 })];
  for (const s of late) await expect(s).rejects.toBeInstanceOf(RunStateError);
});

it('a cancel keeps its place among the sends around it, for a waiting run and for one not started yet', async () => {
  const db = await openDatabase(await engineDatabaseFor('postgres', cleanups));
  cleanups.push(() => db.close());
  const engine = createEngine({ database: db, workflows: [workflow] });
  cleanups.push(() => engine.stop());
  const inbox = async (id: string) =>
    (await db.query<{ type: string }>(`select event->>'type' as type from rmapp_run_inbox where run_id = $1 order by id`, [id])).map(
      (r) => r.type,
    );
  // Not started yet (no worker): the send made before the cancel is stored, not refused as cancelled.
  const pending = await engine.start(workflow, {});
  const [sent, cancelled] = await Promise.all([engine.send(pending, { type: 'e', n: 1 }), engine.cancel(pending)]);
  expect(sent.outcome, 'the send made before the cancel of a pending run').toBe('queued');
  expect(cancelled.cancelled).toBe(true);
  // Waiting: the inbox holds the three in call order.
  await engine.startWorker();
  const waiting = await engine.start(workflow, {});
  await expect.poll(async () => (await engine.get(waiting)).status, { timeout: 20_000 }).toBe('waiting');
  await Promise.all([engine.send(waiting, { type: 'e', n: 1 }), engine.cancel(waiting), engine.send(waiting, { type: 'e', n: 2 })]);
  expect(await inbox(waiting)).toEqual(['e', 'rmapp.cancel', 'e']);
  expect((await engine.waitFor(waiting, { timeoutMs: 20_000 })).status).toBe('cancelled');
});

it('sends called before a stop finish before it closes the database, and leave it closed', async () => {
  // An adversarial pass: 30 unawaited sends then `stop()` had some fail with DATABASE_CLOSED and the
  // rest open the database again after the stop, which nothing closed — the embedded store stayed
  // locked by the process.
  const dataDir = join(mkdtempSync(join(tmpdir(), 'rmapp-send-stop-')), 'store');
  const engine = createEngine({ database: { url: '', dataDir }, workflows: [workflow] });
  const id = await engine.start(workflow, {});
  const sends = Array.from({ length: 30 }, (_, n) =>
    engine.send(id, { type: 'e', n }).then(
      (r) => r.outcome,
      (err: { code?: string; message: string }) => `failed: ${err.code ?? err.message}`,
    ),
  );
  sends.push(engine.send(id, { type: 'e', n: 30 }, { waitMs: 5_000 }).then((r) => r.outcome));
  await engine.stop();
  expect(new Set(await Promise.all(sends)), 'what the sends answered').toEqual(new Set(['queued']));
  // Closed by the stop, and not opened again: the store can be opened once more in this process.
  const db = await openDatabase({ url: '', dataDir });
  try {
    const rows = await db.query<{ n: number }>('select count(*)::int as n from rmapp_run_inbox where run_id = $1', [id]);
    expect(rows[0]?.n, 'events stored').toBe(31);
  } finally {
    await db.close();
  }
});
