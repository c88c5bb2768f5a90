/**
 * A failed run that `engine.retry` refuses — its machine ended it in one of its `failureStates`, or its
 * deadline has passed — will never read its inbox again, as a run that timed out will not
 * (persistence/inbox.ts `READS_NO_MORE`). The signals it left there were listed by `queuedSignals` (what
 * "a retry would deliver", offered in the dashboard's "Retry without it") and a `waitMs` send read them
 * as kept for a retry (`held`, answered `queued`), not `ignored`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, silentLogger } from '../src/index.ts';
import { signalOutcome } from '../src/persistence/inbox.ts';
import { createTestDatabase } from './helpers/postgres.ts';
import { until } from './helpers/processes.ts';
import { poisonedByBoom } from './helpers/workflows.ts';

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
  it('lists no queued signal and answers ignored for one left in its inbox', async () => {
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

describe('a run that failed otherwise and whose deadline then passed (postgres)', () => {
  it('lists its queued signals while a retry could take them, and none once its deadline has passed', async () => {
    const poisoned = poisonedByBoom('h7.poisoned');
    const testDb = await createTestDatabase();
    closers.push(() => testDb.drop());
    const engine = createEngine({ workflows: [poisoned], database: testDb.url, logger: silentLogger, pollMs: 100 });
    closers.push(() => engine.stop());
    await engine.startWorker();
    const id = await engine.start(poisoned, {}, { timeoutMs: 3_000 });
    const note = await engine.send(id, { type: 'note' }, { buffer: true });
    await engine.send(id, { type: 'boom' });
    const run = await engine.waitFor(id, { timeoutMs: 20_000 });
    expect(run.status).toBe('failed');
    const deadline = (await engine.db()).query<{ at: Date }>('select deadline_at as at from rmapp_runs where id = $1', [id]);
    const deadlineAt = new Date((await deadline)[0]?.at ?? 0).getTime();
    if (Date.now() < deadlineAt) {
      expect(
        (await engine.queuedSignals(id)).signals.map((s) => s.id),
        'before the deadline: what a retry would deliver',
      ).toContain(note.id);
    }
    await until(async () => Date.now() > deadlineAt + 100, 10_000, 'the deadline to pass');
    await expect(engine.retry(id)).rejects.toThrow(/deadline/);
    expect((await engine.queuedSignals(id)).signals, 'signals of a run past its deadline').toEqual([]);
    expect(await signalOutcome(await engine.db(), id, note.id as number)).toBe('ignored');
  });
});
