/**
 * A poison event: an event the definition throws on (`MACHINE_ERROR`), sent by a system the operator
 * cannot fix first. The run fails from the state before it with the event still queued, and a plain
 * `engine.retry` delivers it again — and fails again. `engine.retry(id, { dropSignal: true })` (CLI
 * `runs retry --drop-signal`, API `POST /api/runs/:id/retry {"dropSignal":true}`) leaves that one event
 * out: consumed as `dropped`, named in history, its dedupe key free; later events are still delivered.
 * Before, there was no way to get such a run going but a definition that accepts the bad event.
 */
import { assign, setup, spawnChild } from 'xstate';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createEngine,
  defineWorkflow,
  RunStateError,
  silentLogger,
  step,
  ValidationError,
  type Database,
  type Engine,
  type SendResult,
} from '../src/index.ts';
import { startApiServer } from './helpers/api-server.ts';
import { createTestDatabase, openTestStore } from './helpers/postgres.ts';
import { runRmapp } from './helpers/processes.ts';

type Approve = { type: 'approve'; by: string };

/** A small snapshot limit, so that a payload a signal may carry (40 KiB) makes a state too large. */
const LIMITS = { snapshotBytes: 32 * 1024 };

/** Throws on an approval without an approver: the event is bad, not the definition. */
const approval = defineWorkflow({
  name: 'drop-signal.approval',
  input: z.object({}),
  machine: setup({
    types: {} as { context: { approvedBy: string[] }; events: Approve | { type: 'close' } },
  }).createMachine({
    id: 'approval',
    context: { approvedBy: [] },
    initial: 'waiting',
    states: {
      waiting: {
        on: {
          approve: {
            actions: assign({
              approvedBy: ({ context, event }) => {
                if (!event.by) throw new Error('an approval needs an approver');
                return [...context.approvedBy, event.by];
              },
            }),
          },
          close: 'closed',
        },
      },
      closed: { type: 'final' },
    },
    output: ({ context }) => ({ approvedBy: context.approvedBy }),
  }),
});

/** Copies what it is sent into its context: a payload can make a state that cannot be written. */
const collector = defineWorkflow({
  name: 'drop-signal.collector',
  input: z.object({}),
  machine: setup({
    actors: { kid: setup({}).createMachine({ initial: 'on', states: { on: {} } }) },
    types: {} as {
      context: { items: string[]; at?: unknown };
      events:
        | { type: 'add'; text: string }
        | { type: 'spawn'; id: string }
        | { type: 'close' }
        | { type: 'pause' }
        | { type: 'resume' }
        | { type: 'stamp' };
    },
  }).createMachine({
    id: 'collector',
    context: { items: [] },
    initial: 'open',
    states: {
      open: {
        on: {
          add: { actions: assign({ items: ({ context, event }) => [...context.items, event.text] }) },
          spawn: { actions: spawnChild('kid', { id: ({ event }) => event.id }) },
          close: 'closed',
          pause: 'paused',
          // Ends the run holding a Date, which its final write refuses: the definition's bug, the event's fault.
          stamp: { target: 'closed', actions: assign({ at: () => new Date(0) }) },
        },
      },
      paused: { on: { resume: 'open' } },
      closed: { type: 'final' },
    },
    output: ({ context }) => ({ items: context.items.map((t) => t.slice(0, 10)) }),
  }),
});

/** Fails in a step, not on an event: nothing to drop. */
const failingStep = defineWorkflow({
  name: 'drop-signal.step-fails',
  input: z.object({}),
  machine: setup({
    actors: {
      boom: step(() => Promise.reject(new Error('boom')), { retry: { maxAttempts: 1 } }),
    },
  }).createMachine({ initial: 'a', states: { a: { invoke: { src: 'boom', onDone: 'b' } }, b: { type: 'final' } } }),
});

async function outcomes(db: Database, runId: string): Promise<{ type: string; outcome: string | null; key: string | null }[]> {
  const rows = await db.query<{ event: { type: string }; outcome: string | null; dedupe_key: string | null }>(
    'select event, outcome, dedupe_key from rmapp_run_inbox where run_id = $1 order by id',
    [runId],
  );
  return rows.map((r) => ({ type: r.event.type, outcome: r.outcome, key: r.dedupe_key }));
}

/**
 * Fails a collector run on a signal no check could name: its context is brought near the snapshot
 * limit, then 150 small events and one that crosses the limit reach it in one read of its inbox. The
 * checks after each small one spend the 4 MiB a run may check between two writes (signal-blame.ts), so
 * the state the last one makes is refused at the write with no signal named. Returns the crossing one.
 */
async function failUnnamed(
  engine: Engine,
  sendWhileStopped: (id: string, events: { type: string; [key: string]: unknown }[]) => Promise<SendResult[]>,
): Promise<{ id: string; crossing: SendResult; smalls: number }> {
  const id = await engine.start(collector, {});
  expect((await engine.send(id, { type: 'add', text: 'y'.repeat(29_000) }, { waitMs: 20_000 })).outcome).toBe('received');
  const smalls = Array.from({ length: 150 }, () => ({ type: 'add', text: 'ab' }));
  const sent = await sendWhileStopped(id, [...smalls, { type: 'add', text: 'z'.repeat(4_000) }]);
  const crossing = sent.at(-1) as SendResult;
  const failed = await engine.waitFor(id, { timeoutMs: 30_000 });
  expect([failed.status, failed.error?.code, failed.error?.signal], 'failed at the write, no signal named').toEqual([
    'failed',
    'SIZE_LIMIT_EXCEEDED',
    undefined,
  ]);
  return { id, crossing, smalls: smalls.length };
}

for (const kind of ['postgres', 'pglite'] as const) {
  describe(`a retry without the signal the run failed on (${kind})`, () => {
    let db: Database;
    let close: () => Promise<void>;
    let engine: Engine;
    /** This suite's engine, with a worker. */
    async function startWorker(): Promise<void> {
      engine = createEngine({
        database: db,
        workflows: [approval, failingStep, collector],
        pollMs: 50,
        logger: silentLogger,
        limits: LIMITS,
      });
      await engine.startWorker();
    }
    /**
     * Sends `events` to run `id` while no worker runs (the suite's is stopped), then starts one: the run
     * reads them all in one read of its inbox.
     */
    async function sendWhileStopped(id: string, events: { type: string; [key: string]: unknown }[]): Promise<SendResult[]> {
      await engine.stop({ graceMs: 100 });
      const sender = createEngine({ database: db, workflows: [approval, collector], logger: silentLogger, limits: LIMITS });
      const sent: SendResult[] = [];
      for (const event of events) sent.push(await sender.send(id, event as never));
      await sender.stop();
      await startWorker();
      return sent;
    }
    beforeAll(async () => {
      ({ db, close } = await openTestStore(kind));
      await startWorker();
    }, 60_000);
    afterAll(async () => {
      await engine?.stop({ graceMs: 100 });
      await close?.();
    });

    it('the failed run names the signal; a plain retry fails on it again; a retry without it resumes and takes later events', async () => {
      const id = await engine.start(approval, {});
      expect((await engine.send(id, { type: 'approve', by: 'ada' }, { waitMs: 20_000 })).outcome).toBe('received');
      const poison = await engine.send(id, { type: 'approve', by: '' }, { dedupeKey: 'from-the-form' });
      const failed = await engine.waitFor(id, { timeoutMs: 20_000 });
      expect(failed.status).toBe('failed');
      expect(failed.error?.code).toBe('MACHINE_ERROR');
      expect(failed.error?.signal, 'the error names the event it failed on').toEqual({ id: poison.id, type: 'approve' });
      expect(failed.state, 'failed from the state before the bad event').toBe('waiting');

      await engine.retry(id);
      const again = await engine.waitFor(id, { timeoutMs: 20_000 });
      expect([again.status, again.error?.signal], 'a plain retry delivers the bad event again').toEqual([
        'failed',
        { id: poison.id, type: 'approve' },
      ]);

      const answer = await engine.retry(id, { dropSignal: true });
      expect(answer.message).toContain(`without signal ${poison.id} ("approve")`);
      expect(await outcomes(db, id), 'the bad event consumed as dropped, its dedupe key freed').toEqual([
        { type: 'approve', outcome: 'received', key: null },
        { type: 'approve', outcome: 'dropped', key: null },
      ]);
      // Its key is free again: the corrected event may be sent under it.
      expect((await engine.send(id, { type: 'approve', by: 'bob' }, { dedupeKey: 'from-the-form' })).delivered).toBe(true);
      await engine.send(id, { type: 'close' });
      const run = await engine.waitFor(id, { timeoutMs: 20_000 });
      expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
      expect(run.output).toEqual({ approvedBy: ['ada', 'bob'] });
      const history = await engine.history(id);
      const dropped = history.filter((h) => h.type === 'signal.dropped');
      expect(dropped, 'one signal.dropped naming the event').toHaveLength(1);
      expect(dropped[0]?.data).toMatchObject({ id: poison.id, event: { type: 'approve', by: '' } });
      expect(history.filter((h) => h.type === 'run.retried').map((h) => (h.data as { droppedSignal?: number }).droppedSignal)).toEqual([
        undefined,
        poison.id,
      ]);
    });

    it('signals queued behind the dropped one are delivered after the retry', async () => {
      const id = await engine.start(approval, {});
      // All in the inbox before the run reads it: the others stay queued when the first fails the run.
      const [poison] = await sendWhileStopped(id, [{ type: 'approve', by: '' }, { type: 'approve', by: 'cy' }, { type: 'close' }]);
      expect(poison?.id, 'the bad event appended').toEqual(expect.any(Number));
      const failed = await engine.waitFor(id, { timeoutMs: 20_000 });
      expect([failed.status, failed.error?.signal?.id]).toEqual(['failed', poison?.id]);
      await engine.retry(id, { dropSignal: true });
      const run = await engine.waitFor(id, { timeoutMs: 20_000 });
      expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
      expect(run.output, 'the events after the dropped one').toEqual({ approvedBy: ['cy'] });
      expect((await outcomes(db, id)).map((o) => o.outcome)).toEqual(['dropped', 'received', 'received']);
    });

    it('an event whose effect cannot be written (too large, a child id XState cannot persist) names the signal too, and is dropped the same way', async () => {
      const big = 'x'.repeat(40 * 1024);
      const id = await engine.start(collector, {});
      expect((await engine.send(id, { type: 'add', text: 'first' }, { waitMs: 20_000 })).outcome).toBe('received');
      const tooBig = await engine.send(id, { type: 'add', text: big });
      const failed = await engine.waitFor(id, { timeoutMs: 20_000 });
      expect([failed.status, failed.error?.code, failed.error?.signal]).toEqual([
        'failed',
        'SIZE_LIMIT_EXCEEDED',
        { id: tooBig.id, type: 'add' },
      ]);
      await engine.retry(id, { dropSignal: true });
      expect((await engine.send(id, { type: 'add', text: 'second' }, { waitMs: 20_000 })).outcome, 'the resumed run').toBe('received');
      const proto = await engine.send(id, { type: 'spawn', id: '__proto__' });
      const again = await engine.waitFor(id, { timeoutMs: 20_000 });
      expect([again.error?.code, again.error?.signal]).toEqual(['UNDURABLE_SNAPSHOT', { id: proto.id, type: 'spawn' }]);
      await engine.retry(id, { dropSignal: true });
      await engine.send(id, { type: 'close' });
      const run = await engine.waitFor(id, { timeoutMs: 20_000 });
      expect([run.status, run.output]).toEqual(['succeeded', { items: ['first', 'second'] }]);
    });

    it.each([
      ['a run that has run', true],
      ['a new run no worker has taken yet', false],
    ])('signals read together are told apart: the one whose effect cannot be written is named, not the last (%s)', async (_what, ran) => {
      let id: string;
      if (ran) {
        id = await engine.start(collector, {});
        await engine.waitFor(id, { timeoutMs: 100 }).catch(() => null);
      } else {
        await engine.stop({ graceMs: 100 });
        id = await createEngine({ database: db, workflows: [collector], logger: silentLogger }).start(collector, {});
      }
      const [, tooBig] = await sendWhileStopped(id, [
        { type: 'add', text: 'a' },
        { type: 'add', text: 'x'.repeat(40 * 1024) },
        { type: 'add', text: 'b' },
      ]);
      expect(tooBig?.id, 'the large event appended').toEqual(expect.any(Number));
      const failed = await engine.waitFor(id, { timeoutMs: 20_000 });
      expect([failed.error?.code, failed.error?.signal?.id], 'the signal named').toEqual(['SIZE_LIMIT_EXCEEDED', tooBig?.id]);
      await engine.retry(id, { dropSignal: true });
      await engine.send(id, { type: 'close' });
      const run = await engine.waitFor(id, { timeoutMs: 20_000 });
      expect([run.status, run.output], 'the signals around the dropped one, in order').toEqual(['succeeded', { items: ['a', 'b'] }]);
    });

    it('a buffered signal offered again after another one, which ends the run in a state that cannot be written, is named — not the one before it', async () => {
      const id = await engine.start(collector, {});
      expect((await engine.send(id, { type: 'pause' }, { waitMs: 20_000 })).outcome).toBe('received');
      const stamp = await engine.send(id, { type: 'stamp' }, { buffer: true });
      const resume = await engine.send(id, { type: 'resume' });
      const failed = await engine.waitFor(id, { timeoutMs: 20_000 });
      expect([failed.error?.code, failed.error?.signal], `resume was #${resume.id}`).toEqual([
        'UNDURABLE_SNAPSHOT',
        { id: stamp.id, type: 'stamp' },
      ]);
      await engine.retry(id, { dropSignal: true });
      await engine.send(id, { type: 'close' });
      expect((await engine.waitFor(id, { timeoutMs: 20_000 })).status, 'resumed without stamp, then closed').toBe('succeeded');
    });

    it('a run whose error names no signal: its queued signals are listed, and the one the operator picks is left out', async () => {
      const { id, crossing, smalls } = await failUnnamed(engine, sendWhileStopped);
      const queued = await engine.queuedSignals(id);
      expect([queued.signals.length, queued.more, queued.signals[0]?.type], 'the first 20 of 151, oldest first').toEqual([20, true, 'add']);
      expect((await engine.queuedSignals(id, 1000)).signals.at(-1)?.id, 'the crossing one queued last').toBe(crossing.id);
      await expect(engine.queuedSignals(id, 0)).rejects.toThrow(ValidationError);
      await expect(engine.retry(id, { dropSignal: true }), 'true needs a named signal').rejects.toThrow(/did not fail handling a signal/);
      await expect(engine.retry(id, { dropSignal: 999_999_999 }), 'an id that is not this run’s').rejects.toThrow(
        /has no queued signal 999999999/,
      );
      await expect(engine.retry(id, { dropSignal: 1.5 })).rejects.toThrow(ValidationError);
      expect((await engine.get(id)).status, 'refused retries changed nothing').toBe('failed');

      await engine.retry(id);
      const again = await engine.waitFor(id, { timeoutMs: 30_000 });
      expect([again.status, again.error?.code], 'a plain retry fails the same way').toEqual(['failed', 'SIZE_LIMIT_EXCEEDED']);

      const answer = await engine.retry(id, { dropSignal: crossing.id as number });
      expect(answer.message).toContain(`without signal ${crossing.id} ("add")`);
      await engine.send(id, { type: 'close' });
      const run = await engine.waitFor(id, { timeoutMs: 30_000 });
      expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
      expect((run.output as { items: string[] }).items, 'every signal but the one left out, in order').toHaveLength(1 + smalls);
      const taken = await outcomes(db, id);
      expect(taken.filter((o) => o.outcome === 'dropped').length, 'one dropped').toBe(1);
      expect(
        taken.find((o) => o.outcome === 'dropped'),
        'the one chosen',
      ).toEqual(taken[smalls + 1]);
      await expect(engine.retry(id, { dropSignal: crossing.id as number }), 'not failed any more').rejects.toThrow(RunStateError);
    }, 120_000);

    it('refused, naming why, for a run that did not fail on a signal, one not failed, and malformed options', async () => {
      const stepFailed = await engine.start(failingStep, {});
      expect((await engine.waitFor(stepFailed, { timeoutMs: 20_000 })).status).toBe('failed');
      const refused = await engine.retry(stepFailed, { dropSignal: true }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(RunStateError);
      expect((refused as Error).message).toMatch(/did not fail handling a signal .*boom.*retry it without dropSignal/);
      expect((await engine.get(stepFailed)).status, 'a refused retry changes nothing').toBe('failed');

      const waiting = await engine.start(approval, {});
      await expect(engine.retry(waiting, { dropSignal: true })).rejects.toThrow(/only failed runs can be retried/);
      await expect(engine.retry(stepFailed, { dropSignal: 'yes' } as never)).rejects.toThrow(ValidationError);
      await expect(engine.retry(stepFailed, { drop: true } as never)).rejects.toThrow(/take only "dropSignal" \(got "drop"\)/);
      expect((await engine.get(stepFailed)).status).toBe('failed');
      await engine.send(waiting, { type: 'close' });
    });
  });
}

describe('the CLI and the API', () => {
  const TOKEN = 'drop-signal-dashboard-token-0123456789';
  let url: string;
  let drop: () => Promise<void>;
  let engine: Engine;
  let server: Awaited<ReturnType<typeof startApiServer>>;
  beforeAll(async () => {
    ({ url, drop } = await createTestDatabase());
    engine = createEngine({ database: { url }, workflows: [approval, collector], pollMs: 50, logger: silentLogger, limits: LIMITS });
    await engine.startWorker();
    server = await startApiServer(engine, TOKEN);
  }, 60_000);
  afterAll(async () => {
    await server?.close();
    await engine?.stop({ graceMs: 100 });
    await drop?.();
  });

  async function poisoned(): Promise<string> {
    const id = await engine.start(approval, {});
    await engine.send(id, { type: 'approve', by: '' });
    expect((await engine.waitFor(id, { timeoutMs: 20_000 })).error?.code).toBe('MACHINE_ERROR');
    return id;
  }

  it('rmapp runs retry --drop-signal', async () => {
    const id = await poisoned();
    const shown = await runRmapp(['runs', 'show', id], { DATABASE_URL: url });
    expect(shown.stdout, 'runs show names the signal and the way out').toMatch(
      new RegExp(`Signal +#\\d+ approve — failed handling it; retry without it: rmapp runs retry ${id} --drop-signal`),
    );
    const out = await runRmapp(['runs', 'retry', id, '--drop-signal'], { DATABASE_URL: url });
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/without signal \d+ \("approve"\), which it failed handling/);
    expect((await runRmapp(['runs', 'show', id], { DATABASE_URL: url })).stdout).toMatch(/signal\.dropped waiting approve/);
    await engine.send(id, { type: 'close' });
    expect((await engine.waitFor(id, { timeoutMs: 20_000 })).status).toBe('succeeded');
  }, 60_000);

  it('rmapp runs show lists a failed run’s queued signals; runs retry --drop-signal <id> leaves the one given out', async () => {
    // The suite's engine, stopped while the events are appended by another one, and the same one started again.
    const sendWhileStopped = async (id: string, events: { type: string; [key: string]: unknown }[]) => {
      await engine.stop({ graceMs: 100 });
      const sender = createEngine({ database: { url }, workflows: [collector], logger: silentLogger });
      const sent: SendResult[] = [];
      for (const event of events) sent.push(await sender.send(id, event as never));
      await sender.stop();
      await engine.startWorker();
      return sent;
    };
    const { id, crossing } = await failUnnamed(engine, sendWhileStopped);
    const shown = await runRmapp(['runs', 'show', id], { DATABASE_URL: url });
    expect(shown.stdout).toMatch(/Queued +#\d+ add, #\d+ add, .*, … — delivered after a retry/);
    expect(shown.stdout).toContain(`to leave one out: rmapp runs retry ${id} --drop-signal <signal-id>`);
    const json = JSON.parse((await runRmapp(['runs', 'show', id, '--json'], { DATABASE_URL: url })).stdout) as {
      queuedSignals: { signals: { id: number }[]; more: boolean };
    };
    expect([json.queuedSignals.signals.length, json.queuedSignals.more]).toEqual([10, true]);
    const bad = await runRmapp(['runs', 'retry', id, '--drop-signal', '12x'], { DATABASE_URL: url });
    expect([bad.code, bad.stderr.includes("must be a signal's id")], bad.stderr).toEqual([1, true]);
    const out = await runRmapp(['runs', 'retry', id, '--drop-signal', String(crossing.id)], { DATABASE_URL: url });
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toContain(`without signal ${crossing.id} ("add")`);
    await engine.send(id, { type: 'close' });
    expect((await engine.waitFor(id, { timeoutMs: 30_000 })).status).toBe('succeeded');
  }, 120_000);

  it('POST /api/runs/:id/retry with {"dropSignal":true}; a malformed body is a 400 naming the option', async () => {
    const id = await poisoned();
    const post = (body: string | undefined) =>
      fetch(new URL(`/api/runs/${id}/retry`, server.url), {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'x-rmapp-request': '1', 'content-type': 'application/json' },
        body,
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error?: string; status?: string; message?: string } }));
    const bad = await post('{"dropSignal":"yes"}');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/dropSignal must be true, false, or a queued signal's id.*\{"dropSignal":true\}/);
    expect((await post('{"drop":1}')).body.error).toMatch(/take only "dropSignal"/);
    expect((await post('[1]')).status).toBe(400);
    expect((await engine.get(id)).status, 'a refused request changed the run').toBe('failed');
    const unknown = await post('{"dropSignal":999999999}');
    expect([unknown.status, unknown.body.error], 'a signal the run does not have queued').toEqual([
      409,
      expect.stringMatching(/no queued signal 999999999/),
    ]);
    const got = await fetch(new URL(`/api/runs/${id}`, server.url), { headers: { authorization: `Bearer ${TOKEN}` } });
    const { queuedSignals } = (await got.json()) as { queuedSignals?: { signals: { id: number; type: string }[] } };
    expect(
      queuedSignals?.signals.map((q) => q.type),
      'a failed run’s answer lists its queued signals',
    ).toEqual(['approve']);
    const ok = await post(`{"dropSignal":${queuedSignals?.signals[0]?.id}}`);
    expect(ok.status).toBe(200);
    expect(ok.body.message).toMatch(/without signal/);
    await engine.send(id, { type: 'close' });
    expect((await engine.waitFor(id, { timeoutMs: 20_000 })).status).toBe('succeeded');
  });
});
