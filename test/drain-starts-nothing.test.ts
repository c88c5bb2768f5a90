/**
 * A draining worker (`engine.stop`, SIGTERM) starts no attempt — README "Graceful hand-over". Four
 * windows where the stop can arrive after the step's last check and before its work: while the commit
 * that makes the attempt's start durable is in flight, while the step waits for a `stepConcurrency`
 * slot that a running step frees during the grace, while a step sleeps in `ctx.sleep` and wakes
 * during the grace, and while a step woken from `ctx.sleep` waits for the slot it gave back for the
 * sleep. In each the work must not run on the draining worker, and the next worker resumes the attempt
 * as itself (`step.resumed`, the same attempt number): the drain spent none of its attempts.
 * Every start and effect is counted in a ledger outside the engine.
 */
import { setup } from 'xstate';
import { z } from 'zod';
import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, defineWorkflow, step, type Database, type Engine } from '../src/index.ts';
import { hookedStore } from './helpers/hooked-store.ts';
import { openTestStore } from './helpers/postgres.ts';

const ledger: string[] = [];
type Ctx = { runId: string; attempt: number; signal: AbortSignal; sleep(ms: number): Promise<void> };

/** A step that records its start and its effect, working `ms` in between (and sleeping first when `sleepMs`). */
const work = (name: string, ms: number, sleepMs = 0) =>
  step(
    async ({ runId, attempt, signal, sleep }: Ctx) => {
      if (sleepMs) await sleep(sleepMs);
      ledger.push(`start ${name} ${runId} #${attempt}`);
      await new Promise((resolve, reject) => {
        const t = setTimeout(resolve, ms);
        signal.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason as Error)), { once: true });
      });
      ledger.push(`effect ${name} ${runId} #${attempt}`);
      return name;
    },
    { kind: name.startsWith('slotted') ? 'k' : name, retry: { maxAttempts: 3, initialDelayMs: 50 } },
  );

const twoSteps = defineWorkflow({
  name: 'drain.two',
  input: z.object({}),
  machine: setup({ actors: { first: work('first', 10), second: work('second', 10) } }).createMachine({
    id: 'two',
    initial: 'a',
    states: {
      a: { invoke: { src: 'first', onDone: 'b' } },
      b: { invoke: { src: 'second', onDone: 'done' } },
      done: { type: 'final' },
    },
  }),
});

const oneStep = (name: string, src: ReturnType<typeof work>) =>
  defineWorkflow({
    name: `drain.${name}`,
    input: z.object({}),
    machine: setup({ actors: { [name]: src } }).createMachine({
      id: name,
      initial: 'a',
      states: { a: { invoke: { src: name, onDone: 'done' } }, done: { type: 'final' } },
    }),
  });
const slotted = oneStep('slotted', work('slotted', 400));
const long = oneStep('long', work('long', 600));
const sleeper = oneStep('sleeper', work('sleeper', 10, 200));
const slottedLong = oneStep('slottedLong', work('slottedLong', 1_500));
const slottedSleeper = oneStep('slottedSleeper', work('slottedSleeper', 10, 200));
const workflows = [twoSteps, slotted, long, sleeper, slottedLong, slottedSleeper];

/** The run's step entries, as `type step #attempt`. */
async function stepHistory(engine: Engine, runId: string): Promise<string[]> {
  return (await engine.history(runId))
    .filter((h) => h.type.startsWith('step.'))
    .map((h) => `${h.type} ${h.step as string} #${h.attempt as number}`);
}

async function until(what: string, ok: () => boolean | Promise<boolean>): Promise<void> {
  const end = Date.now() + 20_000;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; ledger: ${JSON.stringify(ledger)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

for (const kind of ['postgres', 'pglite'] as const) {
  describe(`a draining worker starts no attempt (${kind})`, () => {
    const closers: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const close of closers.splice(0).reverse()) await close();
      ledger.length = 0;
    });

    async function store(): Promise<Database> {
      const { db, close } = await openTestStore(kind);
      closers.push(close);
      return db;
    }
    function engineOn(database: Database, options: { stepConcurrency?: Record<string, number> } = {}): Engine {
      const engine = createEngine({ database, workflows, pollMs: 50, ...options });
      closers.push(() => engine.stop({ graceMs: 100 }));
      return engine;
    }

    /** A second worker takes the run over and finishes it; returns the step history. */
    async function resumed(db: Database, runId: string): Promise<string[]> {
      const next = engineOn(db);
      await next.startWorker();
      const run = await next.waitFor(runId, { timeoutMs: 20_000 });
      expect(run.status, `run ${runId}: ${JSON.stringify(run.error)}`).toBe('succeeded');
      return stepHistory(next, runId);
    }

    it('stopped while the commit that makes the start durable is in flight: the work does not start', async () => {
      const db = await store();
      let draining: Promise<void> | null = null;
      let engine: Engine | undefined;
      // The stop is called just as the commit carrying `second`'s start goes to the database.
      const hooked = hookedStore(db, (_sql, params) => {
        const text = JSON.stringify(params ?? []);
        if (!draining && engine && text.includes('step.started') && text.includes('second')) draining = engine.stop({ graceMs: 3_000 });
      });
      engine = engineOn(hooked);
      await engine.startWorker();
      const id = await engine.start('drain.two', {});
      await until('the stop', () => draining !== null);
      await draining;
      expect(ledger, 'the draining worker started the step whose start was in flight').toEqual([
        `start first ${id} #1`,
        `effect first ${id} #1`,
      ]);
      expect(await stepHistory(engine, id)).toEqual([
        'step.started first #1',
        'step.succeeded first #1',
        'step.started second #1',
        'step.postponed second #1',
      ]);
      expect(await resumed(db, id), 'the next worker spent a new attempt on work that never ran').toEqual([
        'step.started first #1',
        'step.succeeded first #1',
        'step.started second #1',
        'step.postponed second #1',
        'step.resumed second #1',
        'step.succeeded second #1',
      ]);
      expect(ledger.filter((l) => l.startsWith('effect second'))).toEqual([`effect second ${id} #1`]);
    });

    /** Two runs of a step kind limited to one at a time: the first holds the slot, the second waits for it. */
    async function oneHoldsTheSlot(): Promise<{ db: Database; engine: Engine; holder: string; queued: string }> {
      const db = await store();
      const engine = engineOn(db, { stepConcurrency: { k: 1 } });
      await engine.startWorker();
      const holder = await engine.start('drain.slotted', {});
      await until('the first step to hold the slot', () => ledger.length > 0);
      const queued = await engine.start('drain.slotted', {});
      await until('the second step to queue', async () => (await stepHistory(engine, queued)).includes('step.started slotted #1'));
      return { db, engine, holder, queued };
    }

    it('stopped while a step waits for a stepConcurrency slot: the slot freed during the grace starts nothing', async () => {
      const { db, engine, holder, queued } = await oneHoldsTheSlot();
      await engine.stop({ graceMs: 5_000 });
      expect(ledger, 'the queued step started during the drain').toEqual([`start slotted ${holder} #1`, `effect slotted ${holder} #1`]);
      expect(await stepHistory(engine, queued)).toEqual(['step.started slotted #1', 'step.postponed slotted #1']);
      expect(await resumed(db, queued)).toEqual([
        'step.started slotted #1',
        'step.postponed slotted #1',
        'step.resumed slotted #1',
        'step.succeeded slotted #1',
      ]);
      expect(ledger.filter((l) => l.includes(queued))).toEqual([`start slotted ${queued} #1`, `effect slotted ${queued} #1`]);
    });

    it('stopped with a grace shorter than the step holding the slot: the waiting step is left as it was, not counted', async () => {
      const { db, engine, holder, queued } = await oneHoldsTheSlot();
      // The grace ends while `holder` still works (400 ms): its run is given up, its step stopped.
      await engine.stop({ graceMs: 50 });
      expect(
        ledger.filter((l) => l.includes(queued)),
        'the queued step started during the drain',
      ).toEqual([]);
      expect(await stepHistory(engine, queued)).toEqual(['step.started slotted #1', 'step.postponed slotted #1']);
      expect(await resumed(db, queued), 'the next worker counted an attempt that never ran').toEqual([
        'step.started slotted #1',
        'step.postponed slotted #1',
        'step.resumed slotted #1',
        'step.succeeded slotted #1',
      ]);
      expect(ledger.filter((l) => l.includes(holder)).at(0)).toBe(`start slotted ${holder} #1`);
    });

    it('a step that wakes from ctx.sleep during the grace does not resume its work', async () => {
      const db = await store();
      const engine = engineOn(db);
      await engine.startWorker();
      const busy = await engine.start('drain.long', {});
      const sleeping = await engine.start('drain.sleeper', {});
      await until(
        'both steps to be under way',
        async () => ledger.length > 0 && (await stepHistory(engine, sleeping)).includes('step.sleeping sleeper #1'),
      );
      // The grace lasts while `long` works (600 ms); the sleep (200 ms) ends inside it.
      await engine.stop({ graceMs: 5_000 });
      expect(ledger, 'the sleeping step resumed its work during the drain').toEqual([`start long ${busy} #1`, `effect long ${busy} #1`]);
      expect((await stepHistory(engine, sleeping)).at(-1)).toBe('step.postponed sleeper #1');
      expect((await resumed(db, sleeping)).slice(-2)).toEqual(['step.resumed sleeper #1', 'step.succeeded sleeper #1']);
      expect(ledger.filter((l) => l.includes(sleeping))).toEqual([`start sleeper ${sleeping} #1`, `effect sleeper ${sleeping} #1`]);
    });

    it('a step that woke from ctx.sleep and waits for the stepConcurrency slot it gave back for the sleep does not resume its work', async () => {
      const db = await store();
      const engine = engineOn(db, { stepConcurrency: { k: 1 } });
      await engine.startWorker();
      const sleeping = await engine.start('drain.slottedSleeper', {});
      await until('the step to sleep', async () => (await stepHistory(engine, sleeping)).includes('step.sleeping slottedSleeper #1'));
      // The sleep gave the slot back: another step of the kind takes it, and holds it past the sleep's end.
      const holder = await engine.start('drain.slottedLong', {});
      await until('the other step to hold the slot', () => ledger.includes(`start slottedLong ${holder} #1`));
      const due = Date.parse(
        String(((await engine.history(sleeping)).find((h) => h.type === 'step.sleeping')?.data as { until?: string } | undefined)?.until),
      );
      await until('the sleep to be over', () => Date.now() > due + 200);
      await engine.stop({ graceMs: 5_000 });
      expect(ledger, 'the step waiting for its slot after its sleep worked during the drain').toEqual([
        `start slottedLong ${holder} #1`,
        `effect slottedLong ${holder} #1`,
      ]);
      expect((await stepHistory(engine, sleeping)).at(-1)).toBe('step.postponed slottedSleeper #1');
      expect((await resumed(db, sleeping)).slice(-2)).toEqual(['step.resumed slottedSleeper #1', 'step.succeeded slottedSleeper #1']);
    });
  });
}
