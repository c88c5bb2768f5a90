/**
 * A run that failed with an error whose code is `RUN_TIMEOUT` — a step's own error (an upstream job
 * that timed out, say) — but that has no deadline is not a timed-out run: `engine.retry` resumes it, and
 * it takes the signals left in its inbox. So those signals are queued (`queuedSignals` lists them, a
 * `waitMs` send answers `queued`), not `ignored`: answered `ignored` and then received after the retry,
 * a sender was told its event would never be taken, and the operator saw nothing to choose from. A run
 * that did time out still lists none and answers `ignored` (the control case).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, silentLogger, step, WorkflowError } from '../src/index.ts';
import { signalOutcome } from '../src/persistence/inbox.ts';
import { createTestDatabase } from './helpers/postgres.ts';

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => {});
});

let attempts = 0;
/** Fails its first execution with a step error coded `RUN_TIMEOUT`, succeeds afterwards. */
const upstream = step(
  async () => {
    attempts += 1;
    if (attempts === 1) throw new WorkflowError('the upstream job timed out', { code: 'RUN_TIMEOUT', category: 'permanent' });
    return 'ok';
  },
  { retry: { maxAttempts: 1 } },
);

const machine = setup({ actors: { upstream } }).createMachine({
  id: 'spoof',
  initial: 'gate',
  states: {
    // Held until `go`, so that `note` (buffered) waits in the inbox before the step fails.
    gate: { on: { go: 'work' } },
    work: { invoke: { src: 'upstream', onDone: 'wait' } },
    wait: { on: { note: 'done' } },
    done: { type: 'final' },
  },
});
const spoof = defineWorkflow({ name: 'h7.spoof', input: z.object({}), machine });

describe.each(['postgres', 'pglite'] as const)('a step error coded RUN_TIMEOUT (%s)', (kind) => {
  async function engineFor() {
    let database: string | { url: string; dataDir: string };
    if (kind === 'postgres') {
      const testDb = await createTestDatabase();
      closers.push(() => testDb.drop());
      database = testDb.url;
    } else database = { url: '', dataDir: 'memory://' };
    const engine = createEngine({ workflows: [spoof], database, logger: silentLogger, pollMs: 100 });
    closers.push(() => engine.stop());
    await engine.startWorker();
    return engine;
  }

  it('leaves the run retryable with its signals queued, not ignored', async () => {
    attempts = 0;
    const engine = await engineFor();
    const id = await engine.start(spoof, {});
    const note = await engine.send(id, { type: 'note' }, { buffer: true, dedupeKey: 'note-1' });
    await engine.send(id, { type: 'go' });
    await engine.waitFor(id, { timeoutMs: 20_000 }).catch(() => {});
    const failed = await engine.get(id);
    expect(failed.status).toBe('failed');
    expect(failed.error?.code).toBe('RUN_TIMEOUT');
    const queued = await engine.queuedSignals(id);
    expect(
      queued.signals.map((s) => s.id),
      'queued signals of the failed run',
    ).toEqual([note.id]);
    // What a `waitMs` send reads: kept for the retry (`held`, answered `queued`), not `ignored`.
    expect(await signalOutcome(await engine.db(), id, note.id as number)).toBe('held');
    // The same key sent again: still the queued one, whose outcome is not decided yet.
    const again = await engine.send(id, { type: 'note' }, { dedupeKey: 'note-1', waitMs: 200 });
    expect(again.outcome).toBe('duplicate');
    await engine.retry(id);
    const done = await engine.waitFor(id, { timeoutMs: 20_000 });
    expect(done.status).toBe('succeeded');
    const rows = await (
      await engine.db()
    ).query<{ outcome: string | null }>('select outcome from rmapp_run_inbox where id = $1', [note.id]);
    expect(rows[0]?.outcome, 'the queued signal was taken after the retry').toBe('received');
  });

  it('a run that timed out still lists no queued signal and answers ignored (control)', async () => {
    const engine = await engineFor();
    const id = await engine.start(spoof, {}, { timeoutMs: 600 });
    const note = await engine.send(id, { type: 'note' }, { buffer: true });
    await engine.waitFor(id, { timeoutMs: 20_000 }).catch(() => {});
    const run = await engine.get(id);
    expect(run.error?.code).toBe('RUN_TIMEOUT');
    expect((await engine.queuedSignals(id)).signals).toEqual([]);
    const rows = await (
      await engine.db()
    ).query<{ consumed: boolean }>('select consumed_at is not null as consumed from rmapp_run_inbox where id = $1', [note.id]);
    expect(rows[0]?.consumed).toBe(false);
    expect(await signalOutcome(await engine.db(), id, note.id as number)).toBe('ignored');
    const sent = await engine.send(id, { type: 'other' }).catch((err: Error) => err);
    expect(sent).toBeInstanceOf(Error);
  });
});
