/**
 * Adversarial: `ctx.progress` checks its data at the call (step-execution.ts) but the history entry is
 * written later, at the next commit. Data that JSON could write at the call and cannot at the commit —
 * a nested object the step goes on changing (a BigInt put in), a toJSON that fails once its resource is
 * closed — must not wedge the run, nor the runs committed in the same batch; and the history records
 * the data as it was at the call. The same for an error's details (errors.ts, writableDetails).
 */
import { setup } from 'xstate';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, defineWorkflow, step, type Database, type Engine } from '../src/index.ts';
import { openTestStore } from './helpers/postgres.ts';

type Progress = (m: string, d?: Record<string, unknown>) => void;

const reports = step(
  async ({ input, progress }: { input: { how: string }; progress: Progress }) => {
    if (input.how === 'mutated') {
      const state: Record<string, unknown> = { done: 1 };
      progress('working', { state });
      state.done = 2n;
      state.self = state;
    } else if (input.how === 'closed') {
      let open = true;
      const handle = {
        toJSON() {
          if (!open) throw new Error('handle is closed');
          return { open };
        },
      };
      progress('working', { handle });
      open = false;
    } else if (input.how === 'detailsClosed') {
      let open = true;
      const handle = {
        toJSON() {
          if (!open) throw new Error('handle is closed');
          return { open };
        },
      };
      setTimeout(() => (open = false), 0);
      throw Object.assign(new Error('failed with a handle'), { category: 'permanent', code: 'HOSTILE', details: { handle } });
    }
    return 'ok';
  },
  { retry: { maxAttempts: 1 } },
);
const machine = setup({ actors: { reports }, types: { input: {} as { how: string }, context: {} as { how: string } } }).createMachine({
  id: 'later',
  context: ({ input }) => ({ how: input.how }),
  initial: 'working',
  states: {
    working: { invoke: { src: 'reports', input: ({ context }) => ({ how: context.how }), onDone: 'done' } },
    done: { type: 'final' },
  },
});
const later = defineWorkflow({ name: 'adv3.later', machine, input: z.object({ how: z.string() }) });

for (const kind of ['postgres', 'pglite'] as const) {
  describe(`progress data that stops being writable after the call (${kind})`, () => {
    let db: Database;
    let close: (() => Promise<void>) | undefined;
    let engine: Engine;
    beforeAll(async () => {
      ({ db, close } = await openTestStore(kind));
      // The default lease: the steps allow one attempt, so a run whose lease lapsed while its step ran
      // fails by design (STEP_NEVER_FINISHED) — and a 2 s lease lapsed in a CI run under load, failing
      // all nine runs, which is not what this file tests.
      engine = createEngine({ database: db, workflows: [later], pollMs: 50, concurrency: 20 });
      await engine.startWorker();
    }, 60_000);
    afterAll(async () => {
      await engine?.stop({ graceMs: 100 });
      await close?.();
    });

    for (const how of ['mutated', 'closed', 'detailsClosed']) {
      it(`'${how}': the run and the innocent runs beside it finish; history has the data as at the call`, async () => {
        const [bad, ...innocent] = await Promise.all([
          engine.start('adv3.later', { how }),
          ...Array.from({ length: 8 }, () => engine.start('adv3.later', { how: 'plain' })),
        ]);
        const until = Date.now() + 20_000;
        for (;;) {
          const runs = await Promise.all([bad!, ...innocent].map((id) => engine.get(id)));
          if (runs.every((r) => r.status === (r.id === bad && how === 'detailsClosed' ? 'failed' : 'succeeded'))) break;
          if (Date.now() > until)
            throw new Error(
              `stuck after progress data became unwritable (ctx.progress / writableDetails kept a reference): ${JSON.stringify(runs.map((r) => [r.id === bad ? 'BAD' : 'innocent', r.status, r.error?.code]))}`,
            );
          await new Promise((r) => setTimeout(r, 100));
        }
        if (how === 'detailsClosed') {
          expect((await engine.get(bad!)).error).toMatchObject({ code: 'HOSTILE', details: { handle: { open: true } } });
          return;
        }
        const progress = (await engine.history(bad!)).find((e) => e.type === 'progress');
        expect(progress?.data).toMatchObject(
          how === 'mutated' ? { message: 'working', state: { done: 1 } } : { message: 'working', handle: { open: true } },
        );
      }, 30_000);
    }
  });
}
