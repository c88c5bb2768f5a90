/**
 * `engine.send` under a dedupe key the run already took answers `duplicate` with the id of the signal
 * that holds the key, as it did for a finished run (test/engine-option-edges.test.ts, "the same run, the
 * same event"); for a run still going it answered `id: null`, so a program run twice got another answer
 * before its run finished than after. With `waitMs` the answer stays `duplicate`: nothing was sent.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow } from '../src/index.ts';
import { engineDatabaseFor } from './helpers/postgres.ts';

const machine = setup({}).createMachine({
  id: 'b3SendDuplicate',
  initial: 'waiting',
  states: {
    waiting: { on: { approve: 'approved' } },
    approved: { on: { finish: 'done' } },
    done: { type: 'final' },
  },
});
const wf = defineWorkflow({ name: 'b3.send-duplicate', machine, input: z.object({}) });

describe.each(['pglite', 'postgres'] as const)('engine.send of a dedupe key already taken (%s)', (kind) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('answers the id of the signal that took the key, while the run goes on and once it finished', async () => {
    const engine = createEngine({ database: await engineDatabaseFor(kind, cleanups), workflows: [wf], pollMs: 50 });
    cleanups.push(() => engine.stop());
    await engine.startWorker();
    const id = await engine.start(wf, {});
    const first = await engine.send(id, { type: 'approve' }, { dedupeKey: 'approval-1', waitMs: 20_000 });
    expect(first, `the first approve of run ${id}`).toMatchObject({ delivered: true, outcome: 'received' });
    const original = { delivered: false, id: first.id, outcome: 'duplicate' };
    const other = { ...original, differentEvent: true };

    const answers = async () => ({
      same: await engine.send(id, { type: 'approve' }, { dedupeKey: 'approval-1' }),
      sameWaiting: await engine.send(id, { type: 'approve' }, { dedupeKey: 'approval-1', waitMs: 5_000 }),
      another: await engine.send(id, { type: 'finish' }, { dedupeKey: 'approval-1' }),
    });
    expect(await answers(), `duplicates sent to run ${id} while it waits`).toEqual({
      same: original,
      sameWaiting: original,
      another: other,
    });

    await engine.send(id, { type: 'finish' }, { dedupeKey: 'finish-1' });
    expect((await engine.waitFor(id, { timeoutMs: 20_000 })).status, `run ${id}`).toBe('succeeded');
    expect(await answers(), `duplicates sent to run ${id} once it finished`).toEqual({
      same: original,
      sameWaiting: original,
      another: other,
    });
  }, 60_000);
});
