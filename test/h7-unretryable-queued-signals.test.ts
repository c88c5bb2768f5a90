/**
 * A failed run that `engine.retry` refuses — its machine ended it in one of its `failureStates` — will
 * never read its inbox again, as a run that timed out will not (persistence/inbox.ts `READS_NO_MORE`).
 * Yet the signals it left there are listed by `queuedSignals` (what "a retry would deliver", offered in
 * the dashboard's "Retry without it") and a `waitMs` send reads them as kept for a retry (`held`,
 * answered `queued`), not `ignored`. Left open (`it.fails`): whether such runs should join
 * READS_NO_MORE (and a failed run past its deadline, which retry refuses too, by the asking engine's
 * clock) is a choice of semantics for the merger.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, silentLogger } from '../src/index.ts';
import { signalOutcome } from '../src/persistence/inbox.ts';
import { createTestDatabase } from './helpers/postgres.ts';

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => {});
});

const machine = setup({}).createMachine({
  id: 'gives-up',
  initial: 'gate',
  states: {
    gate: { on: { giveUp: 'gaveUp' } },
    gaveUp: { type: 'final' },
  },
});
const givesUp = defineWorkflow({ name: 'h7.gives-up', input: z.object({}), machine, failureStates: ['gaveUp'] });

describe('a run that failed in one of its failure states (postgres)', () => {
  it.fails('lists no queued signal and answers ignored for one left in its inbox', async () => {
    const testDb = await createTestDatabase();
    closers.push(() => testDb.drop());
    const engine = createEngine({ workflows: [givesUp], database: testDb.url, logger: silentLogger, pollMs: 100 });
    closers.push(() => engine.stop());
    await engine.startWorker();
    const id = await engine.start(givesUp, {});
    const note = await engine.send(id, { type: 'note' }, { buffer: true });
    await engine.send(id, { type: 'giveUp' });
    const run = await engine.waitFor(id, { timeoutMs: 20_000 });
    expect(run.status).toBe('failed');
    await expect(engine.retry(id)).rejects.toThrow(/cannot be retried/);
    expect((await engine.queuedSignals(id)).signals, 'signals of a run no retry can resume').toEqual([]);
    expect(await signalOutcome(await engine.db(), id, note.id as number)).toBe('ignored');
  });
});
