/**
 * Events sent while a run finishes, from several engines at once: each send ends `received`, `ignored`
 * or `duplicate`, or is refused with a RunStateError — none stays `queued` for good (an adversarial
 * pass found events stored after the run's last read of its inbox, answered `queued` after their whole
 * wait and never taken, ignored or expired). And the inbox takes nothing once the run has finished.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { assign, setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, silentLogger, type Engine } from '../src/index.ts';
import { appendSignal } from '../src/persistence/inbox.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';

const pings = defineWorkflow({
  name: 'test.pings-at-finish',
  input: z.object({}),
  machine: setup({ types: {} as { context: { seen: number[] }; events: { type: 'ping'; n: number } | { type: 'finish' } } }).createMachine({
    context: { seen: [] },
    initial: 'idle',
    states: {
      idle: {
        on: {
          ping: { actions: assign({ seen: ({ context, event }) => [...context.seen, event.n] }) },
          finish: 'done',
        },
      },
      done: { type: 'final' },
    },
    output: ({ context }) => context,
  }),
});

let testDb: TestDatabase;
const engines: Engine[] = [];

beforeAll(async () => {
  testDb = await createTestDatabase('rmapp_finish');
  for (let i = 0; i < 4; i++) engines.push(createEngine({ database: testDb.url, workflows: [pings], logger: silentLogger, pollMs: 50 }));
  await engines[0]?.startWorker();
});
afterAll(async () => {
  for (const e of engines) await e.stop();
  await testDb?.drop();
});

it('an event sent as its run finishes is taken, ignored or refused, never left queued', { timeout: 120_000 }, async () => {
  const [worker, ...clients] = engines as [Engine, ...Engine[]];
  const outcomes: Record<string, number> = {};
  const received: number[] = [];
  for (let round = 0; round < 6; round++) {
    const id = await worker.start(pings, {});
    await Promise.all([
      worker.send(id, { type: 'finish' }),
      ...Array.from({ length: 12 }, async (_, i) => {
        await new Promise((r) => setTimeout(r, Math.random() * 40));
        const client = clients[i % clients.length] as Engine;
        const outcome = await client
          .send(id, { type: 'ping', n: round * 100 + i }, { waitMs: 5_000, buffer: i % 2 === 0 ? { forMs: 60_000 } : false })
          .then(
            (r) => r.outcome,
            (err: Error) => err.name,
          );
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
        if (outcome === 'received') received.push(round * 100 + i);
      }),
    ]);
    const run = await worker.waitFor(id, { timeoutMs: 20_000 });
    expect(run.status).toBe('succeeded');
    // What the run says it received is what the senders were told it received.
    const seen = (run.output as { seen: number[] }).seen;
    expect([...seen].sort(), `round ${round}: pings in the run's context`).toEqual(
      received.filter((n) => Math.floor(n / 100) === round).sort(),
    );
  }
  expect(
    Object.keys(outcomes).filter((o) => !['received', 'ignored', 'RunStateError'].includes(o)),
    JSON.stringify(outcomes),
  ).toEqual([]);
  expect(Object.values(outcomes).reduce((a, b) => a + b, 0)).toBe(72);
});

it('the inbox of a finished run takes nothing: appendSignal reports it finished and stores no row', async () => {
  const [worker] = engines as [Engine];
  const id = await worker.start(pings, {});
  await worker.send(id, { type: 'finish' });
  expect((await worker.waitFor(id, { timeoutMs: 20_000 })).status).toBe('succeeded');
  const db = await worker.db();
  const appended = await appendSignal(db, id, { type: 'ping', n: 1 }, 'late-key');
  expect(appended).toEqual({ appended: false, id: null, finished: true });
  const [row] = await db.query<{ n: number }>('select count(*)::int as n from rmapp_run_inbox where run_id = $1 and dedupe_key = $2', [
    id,
    'late-key',
  ]);
  expect(row?.n, 'inbox rows stored for the finished run').toBe(0);
  await expect(worker.send(id, { type: 'ping', n: 2 })).rejects.toThrow(/has already finished \(succeeded\); it accepts no more events/);
});
