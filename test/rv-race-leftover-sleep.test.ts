/**
 * A sleep a `Promise.race` left behind outlives the step that returned: its due time stayed in the
 * session's `sleeping` (step-execution.ts `sleepUntil`), so a run that then only waited for an event was
 * not evicted while that due time was near, and nothing tried again once it passed: the run stayed in
 * memory for good, or was written to wake at a sleep no one awaited.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, step, type Engine } from '../src/index.ts';

const LONG_MS = 2_000;
const racer = step(async (ctx) => {
  await Promise.race([ctx.sleep(10), ctx.sleep(LONG_MS)]);
  return 'raced';
});

const machine = setup({ actors: { racer } }).createMachine({
  id: 'rv-race-leftover',
  initial: 'racing',
  states: {
    racing: { invoke: { src: 'racer', input: {}, onDone: 'waiting' } },
    waiting: { on: { go: 'done' } },
    done: { type: 'final' },
  },
});
const workflow = defineWorkflow({ name: 'rv.race-leftover', machine, input: z.object({}) });

describe('a sleep a race left behind', () => {
  let engine: Engine | undefined;
  afterEach(async () => {
    await engine?.stop();
  });

  it('neither keeps the run in memory nor sets its wake', async () => {
    engine = createEngine({ workflows: [workflow], database: { url: '', dataDir: 'memory://' }, evictAfterMs: 5_000 });
    const waiting: (string | null)[] = [];
    engine.on('run.waiting', (e) => waiting.push(e.wakeAt));
    await engine.startWorker();
    await engine.start(workflow, {});
    await vi.waitFor(
      () =>
        expect(waiting.length, "the run only waiting for `go` never left memory (the race's leftover sleep held it)").toBeGreaterThan(0),
      { timeout: 15_000, interval: 100 },
    );
    expect(waiting[0], "the run was written to wake for the race's leftover sleep").toBeNull();
  }, 30_000);
});
