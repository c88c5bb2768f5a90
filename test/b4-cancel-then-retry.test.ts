/**
 * A cancellation that reached a run's inbox while the run was failing (after its last read of the
 * inbox, before its failure was written) is answered "requested", and the run ends `failed`: the
 * cancellation never stopped anything. A cancel sent a moment later answers that the run had already
 * finished and changes nothing. Either way the run is failed, and `engine.retry` — an operator's later
 * decision — must resume it: the stale cancellation must not end the retried execution before its step
 * runs again. Step executions are counted in a ledger file outside the engine.
 */
import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setup } from 'xstate';
import { z } from 'zod';
import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, defineWorkflow, openDatabase, step, type Database } from '../src/index.ts';
import { hookedStore } from './helpers/hooked-store.ts';
import { engineDatabaseFor } from './helpers/postgres.ts';

const dir = mkdtempSync(join(tmpdir(), 'b4-cancel-retry-'));
const ledgerFile = join(dir, 'ledger');
/** Fails its first execution (the "bug"), succeeds after the operator's retry. */
let failNext = true;

const work = step(async ({ runId, attempt }: { runId: string; attempt: number }) => {
  appendFileSync(ledgerFile, `${JSON.stringify({ run: runId, attempt, failing: failNext })}\n`);
  if (failNext) {
    failNext = false;
    throw Object.assign(new Error('the widget is broken'), { category: 'permanent', code: 'WIDGET_BROKEN' });
  }
  return 'done';
});
const machine = setup({ actors: { work } }).createMachine({
  id: 'b4CancelRetry',
  initial: 'working',
  states: { working: { invoke: { src: 'work', onDone: 'done' } }, done: { type: 'final' } },
});
const workflow = defineWorkflow({ name: 'b4.cancelRetry', machine, input: z.object({}) });

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const executions = (runId: string) =>
  readFileSync(ledgerFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { run: string })
    .filter((e) => e.run === runId).length;

describe.each(['postgres', 'pglite'] as const)('a cancellation that raced the run failing, then engine.retry (%s)', (kind) => {
  it('the retried run runs its step again and succeeds; the stale cancellation stops nothing', async () => {
    failNext = true;
    const spec = await engineDatabaseFor(kind, cleanups);
    const store: Database = await openDatabase(spec);
    cleanups.push(() => store.close());
    // The worker's write of the failure is held until the cancellation is in the inbox: the cancellation
    // arrived after the run's last read, before its failure was written.
    let releaseFailure!: () => void;
    const failureHeld = new Promise<void>((r) => (releaseFailure = r));
    let failureReached!: () => void;
    const reached = new Promise<void>((r) => (failureReached = r));
    const hooked = hookedStore(store, async (_sql, params) => {
      // The write that ends the run failed, batched or alone (persistence/commits.ts).
      const text = JSON.stringify(params ?? []);
      if (text.includes('WIDGET_BROKEN') && (text.includes('\\"status\\":\\"failed\\"') || params?.[8] === 'failed')) {
        failureReached();
        await failureHeld;
      }
    });
    const worker = createEngine({ database: hooked, workflows: [workflow], pollMs: 50, leaseMs: 2_000 });
    const client = createEngine({ database: store, workflows: [workflow], migrate: false });
    cleanups.push(() => client.stop());
    cleanups.push(() => worker.stop());
    await worker.startWorker();
    const id = await client.start(workflow, {});
    await reached;
    const cancel = await client.cancel(id, 'stop it');
    releaseFailure();
    const failed = await client.waitFor(id, { timeoutMs: 20_000 });
    expect(failed.status, `run ${id} after the cancel raced its failure (cancel answered ${JSON.stringify(cancel)})`).toBe('failed');
    expect(executions(id)).toBe(1);

    // Later, the definition fixed, the operator retries the run: it resumes, its step runs again.
    await client.retry(id);
    const retried = await client.waitFor(id, { timeoutMs: 20_000 });
    expect(
      retried.status,
      `run ${id} retried after a cancellation that never stopped it ended ${retried.status} (${JSON.stringify(retried.error)})`,
    ).toBe('succeeded');
    expect(executions(id), `executions of run ${id}'s step`).toBe(2);
    // The cancellation it never took is in its history as dropped, once, and nothing else took it.
    const history = await client.history(id);
    const cancels = history.filter((h) => (h.data as { event?: { type?: unknown } } | null)?.event?.type === 'rmapp.cancel');
    expect(
      cancels.map((h) => h.type),
      `run ${id}'s history entries of the stale cancellation`,
    ).toEqual(['signal.dropped']);
    expect(history.some((h) => h.type === 'run.cancelled')).toBe(false);
  });
});
