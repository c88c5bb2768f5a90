/**
 * An event whose handling fails the run — an action that throws (`MACHINE_ERROR`), a state too large to
 * store (`SIZE_LIMIT_EXCEEDED`) — fails it from its last good snapshot, the state before the event. The
 * event is then in no stored state: it must stay in the inbox, not consumed, so that `engine.retry` of
 * the fixed definition delivers it. It was marked consumed (`received`), the retried run waited for an
 * event it would never get again, and sending it again under its dedupe key answered `duplicate`.
 */
import { assign, setup } from 'xstate';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, defineWorkflow, type Database, type Engine } from '../src/index.ts';
import { openTestStore } from './helpers/postgres.ts';

/** The definition's bug, fixed by the test before it retries. */
let broken = true;

const approval = defineWorkflow({
  name: 'failed-event.approval',
  input: z.object({}),
  machine: setup({
    types: {} as { context: { approvedBy: string | null; blob: string }; events: { type: 'approve'; by: string } | { type: 'grow' } },
  }).createMachine({
    id: 'approval',
    context: { approvedBy: null, blob: '' },
    initial: 'waiting',
    states: {
      waiting: {
        on: {
          approve: {
            target: 'approved',
            actions: assign({
              approvedBy: ({ event }) => {
                if (broken) throw new Error('approver lookup is broken');
                return event.by;
              },
            }),
          },
          // Too large to store while the bug lasts (the limit is 1 MiB).
          grow: { actions: assign({ blob: () => (broken ? 'x'.repeat(2 * 1024 * 1024) : 'small') }) },
        },
      },
      approved: { type: 'final' },
    },
    output: ({ context }) => ({ approvedBy: context.approvedBy, blob: context.blob }),
  }),
});

for (const kind of ['postgres', 'pglite'] as const) {
  describe(`an event that fails the run is kept for its retry (${kind})`, () => {
    let db: Database;
    let close: () => Promise<void>;
    let engine: Engine;
    beforeAll(async () => {
      ({ db, close } = await openTestStore(kind));
      engine = createEngine({ database: db, workflows: [approval], pollMs: 50 });
      await engine.startWorker();
    }, 60_000);
    afterAll(async () => {
      await engine?.stop({ graceMs: 100 });
      await close?.();
    });

    async function failedBy(id: string, event: { type: 'approve'; by: string } | { type: 'grow' }, code: string) {
      broken = true;
      await engine.send(id, event, { dedupeKey: `${event.type}-1` });
      const failed = await engine.waitFor(id, { timeoutMs: 20_000 });
      expect(failed.status).toBe('failed');
      expect(failed.error?.code).toBe(code);
      expect(failed.state, 'failed from the state before the event').toBe('waiting');
      const history = await engine.history(id);
      expect(
        history.filter((h) => h.type === 'signal.received'),
        'the failing event recorded as taken',
      ).toEqual([]);
      // Still queued: sending it again under its key is the same event, not a second one.
      expect((await engine.send(id, event, { dedupeKey: `${event.type}-1` })).outcome).toBe('duplicate');
    }

    it('an action that throws: the retried run gets the event', async () => {
      const id = await engine.start('failed-event.approval', {});
      await failedBy(id, { type: 'approve', by: 'ada' }, 'MACHINE_ERROR');
      broken = false;
      await engine.retry(id);
      const run = await engine.waitFor(id, { timeoutMs: 20_000 });
      expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
      expect(run.output).toEqual({ approvedBy: 'ada', blob: '' });
      expect((await engine.history(id)).filter((h) => h.type === 'signal.received')).toHaveLength(1);
    });

    it('a send that waits for the event answers `queued` as soon as the event has failed the run, not at its deadline', async () => {
      broken = true;
      const id = await engine.start('failed-event.approval', {});
      // The wait is longer than the test's own timeout: a send that waits it out fails the test.
      const answer = await engine.send(id, { type: 'approve', by: 'cy' }, { dedupeKey: 'approve-waited', waitMs: 600_000 });
      expect(answer.outcome, 'the event failed the run: it stays queued for engine.retry').toBe('queued');
      expect((await engine.get(id)).status).toBe('failed');
      broken = false;
      await engine.retry(id);
      const run = await engine.waitFor(id, { timeoutMs: 20_000 });
      expect(run.output, 'the retried run did not get the event the waiting send left queued').toEqual({ approvedBy: 'cy', blob: '' });
    }, 30_000);

    it('a state too large to store: the retried run gets the event', async () => {
      const id = await engine.start('failed-event.approval', {});
      await failedBy(id, { type: 'grow' }, 'SIZE_LIMIT_EXCEEDED');
      broken = false;
      await engine.retry(id);
      await engine.send(id, { type: 'approve', by: 'bob' });
      const run = await engine.waitFor(id, { timeoutMs: 20_000 });
      expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
      expect(run.output, 'the retried run did not get the kept event').toEqual({ approvedBy: 'bob', blob: 'small' });
    });
  });
}
