/**
 * Retries with durable backoff, durable timers, signals, human-in-the-loop waits, cancellation,
 * per-run timeouts, retry of failed runs, sub-workflows and progress hooks, on both stores.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, ValidationError, type Database, type Engine, type EngineEventMap } from '../src/index.ts';
import { aborts, attempts, cleanups, durabilityWorkflows } from './helpers/durability-workflows.ts';
import { openTestStore } from './helpers/postgres.ts';
import { until } from './helpers/processes.ts';

type Recorded = { [K in keyof EngineEventMap]: { name: K; payload: EngineEventMap[K] } }[keyof EngineEventMap];

describe.each(['postgres', 'pglite'] as const)('durability on %s', (kind) => {
  let store: { db: Database; close(): Promise<void> };
  let db: Database;
  let engine: Engine;
  const events: Recorded[] = [];

  beforeAll(async () => {
    store = await openTestStore(kind);
    db = store.db;
    engine = createEngine({ database: db, workflows: durabilityWorkflows(), pollMs: 50, leaseMs: 3_000, evictAfterMs: 200 });
    for (const name of [
      'run.started',
      'step.started',
      'step.succeeded',
      'step.failed',
      'step.retrying',
      'progress',
      'run.finished',
    ] as const) {
      engine.on(name, (payload) => events.push({ name, payload } as Recorded));
    }
    await engine.startWorker();
  });

  afterAll(async () => {
    await engine?.stop();
    await store?.close();
  });

  const attemptsOf = (runId: string, name: string) => attempts.filter((a) => a.runId === runId && a.name === name);
  const waitStatus = (runId: string, status: string) =>
    until(async () => (await engine.get(runId)).status === status, 20_000, `run ${runId} to be ${status}`);

  describe('retries', () => {
    it('retries a transient failure twice then succeeds: 3 attempts in history, delays within the policy', async () => {
      const id = await engine.start('test.flaky', { failTimes: 2 });
      const run = await engine.waitFor(id, { timeoutMs: 20_000 });
      expect(run.status).toBe('succeeded');
      const history = await engine.history(id);
      expect(history.filter((h) => h.type === 'step.started').map((h) => h.attempt)).toEqual([1, 2, 3]);
      const retrying = history.filter((h) => h.type === 'step.retrying');
      expect(retrying.map((h) => h.attempt)).toEqual([1, 2]);
      const delays = retrying.map((h) => (h.data as { delayMs: number }).delayMs);
      // Policy: initial 100 ms, ×2, jitter 0.5 → attempt 1 waits 50..100 ms, attempt 2 waits 100..200 ms.
      expect(delays[0]).toBeGreaterThanOrEqual(50);
      expect(delays[0]).toBeLessThanOrEqual(100);
      expect(delays[1]).toBeGreaterThanOrEqual(100);
      expect(delays[1]).toBeLessThanOrEqual(200);
      for (const h of retrying) expect(h.data).toMatchObject({ error: { category: 'transient', code: 'FLAKY' } });
      // Each attempt started no earlier than the wake-up time its retry recorded.
      const starts = attemptsOf(id, 'flaky').map((a) => a.at);
      const due = retrying.map((h) => Date.parse((h.data as { nextAttemptAt: string }).nextAttemptAt));
      expect(starts[1]).toBeGreaterThanOrEqual((due[0] as number) - 5);
      expect(starts[2]).toBeGreaterThanOrEqual((due[1] as number) - 5);
      expect(events.filter((e) => e.name === 'step.retrying' && e.payload.runId === id)).toHaveLength(2);
    });

    it('does not retry a permanent error', async () => {
      const id = await engine.start('test.flaky', { failTimes: 1, failCategory: 'permanent' });
      const run = await engine.waitFor(id, { timeoutMs: 20_000 });
      expect(run.status).toBe('failed');
      expect(run.error).toMatchObject({ category: 'permanent', code: 'FLAKY' });
      expect(attemptsOf(id, 'flaky')).toHaveLength(1);
      expect((await engine.history(id)).filter((h) => h.type === 'step.retrying')).toHaveLength(0);
    });

    it('fails with the last error and its category when attempts run out', async () => {
      const id = await engine.start('test.flaky', { failTimes: 10, failCategory: 'timeout' });
      const run = await engine.waitFor(id, { timeoutMs: 20_000 });
      expect(run.status).toBe('failed');
      expect(run.error).toMatchObject({ category: 'timeout', message: 'flaky failed on attempt 4' });
      expect(attemptsOf(id, 'flaky').map((a) => a.attempt)).toEqual([1, 2, 3, 4]);
      const failures = events.filter(
        (e): e is Extract<Recorded, { name: 'step.failed' }> => e.name === 'step.failed' && e.payload.runId === id,
      );
      expect(failures.map((e) => e.payload.attempt)).toContain(4);
    });

    it('honours retry-after of a rate limit', async () => {
      const id = await engine.start('test.flaky', { failTimes: 1, failCategory: 'rate_limited', retryAfterMs: 400 });
      expect((await engine.waitFor(id, { timeoutMs: 20_000 })).status).toBe('succeeded');
      const retrying = (await engine.history(id)).find((h) => h.type === 'step.retrying');
      expect((retrying?.data as { delayMs: number }).delayMs).toBe(400);
    });

    it('retries a failed run from the failed step, keeping what it had done', async () => {
      const id = await engine.start('test.flaky', { failExecutions: 1, failCategory: 'permanent' });
      expect((await engine.waitFor(id, { timeoutMs: 20_000 })).status).toBe('failed');
      await expect(engine.retry('no-such-run')).rejects.toThrow(/No run/);
      const { message } = await engine.retry(id);
      expect(message).toMatch(/resume from "working"/);
      const run = await engine.waitFor(id, { timeoutMs: 20_000 });
      expect(run.status).toBe('succeeded');
      expect(run.error).toBe(null);
      const history = await engine.history(id);
      expect(history.map((h) => h.type)).toContain('run.retried');
      expect(history.filter((h) => h.type === 'run.started')).toHaveLength(1);
      // The retried execution is the failed one run again: same idempotency key (no `#2` recorded).
      const flakyStarts = history.filter((h) => h.type === 'step.started' && h.step === 'flaky');
      expect(flakyStarts.length).toBeGreaterThan(1);
      for (const h of flakyStarts) expect((h.data as { idempotencyKey?: string } | null)?.idempotencyKey).toBeUndefined();
      await expect(engine.retry(id)).rejects.toBeInstanceOf(ValidationError);
    });
  });

  describe('durable timers and waits', () => {
    it('an `after` wait evicts the run and fires at its due time', async () => {
      // The timer is armed between the call and the commit of the state it waits in (which may come much
      // later on a loaded machine); 50 ms of tolerance for the database's clock against this process's.
      const before = Date.now();
      const id = await engine.start('test.timer', { delayMs: 1_200 });
      await waitStatus(id, 'waiting');
      const waiting = await engine.get(id);
      expect(waiting.leaseOwner).toBe(null);
      const entered = (await engine.history(id)).find((h) => h.type === 'state.entered' && h.state === 'waiting');
      const wakeAt = waiting.wakeAt?.getTime() ?? 0;
      expect(wakeAt, 'wakeAt, against the soonest the timer can be due').toBeGreaterThanOrEqual(before + 1_200 - 50);
      expect(wakeAt, 'wakeAt, against the latest the timer can be due').toBeLessThanOrEqual((entered?.at.getTime() ?? 0) + 1_200 + 50);
      expect((await engine.waitFor(id, { timeoutMs: 20_000 })).status).toBe('succeeded');
      const mark = attemptsOf(id, 'mark')[0];
      expect(mark?.at, 'the step after the timer, against the due time stored').toBeGreaterThanOrEqual(wakeAt - 50);
    });

    it('a signal wakes an evicted run; the same dedupe key is applied once; unaccepted events are recorded as ignored', async () => {
      const id = await engine.start('test.approval', { timeoutMs: 60_000 });
      await waitStatus(id, 'waiting');
      expect((await engine.get(id)).state).toBe('awaitingApproval');

      await engine.send(id, { type: 'comment' });
      await until(async () => (await engine.history(id)).some((h) => h.type === 'signal.ignored'), 10_000, 'ignored signal');
      expect((await engine.get(id)).status).not.toBe('succeeded');

      expect(await engine.send(id, { type: 'approve', by: 'octocat' }, { dedupeKey: 'approve-1' })).toMatchObject({
        delivered: true,
        outcome: 'queued',
      });
      const second = await engine
        .send(id, { type: 'approve', by: 'octocat' }, { dedupeKey: 'approve-1' })
        .catch(() => ({ delivered: false, outcome: 'duplicate' }));
      expect(second).toMatchObject({ delivered: false, outcome: 'duplicate' });
      const run = await engine.waitFor(id, { timeoutMs: 20_000 });
      expect(run.status).toBe('succeeded');
      expect(run.state).toBe('approved');
      expect(run.output).toEqual({ approvals: 1, approvedBy: 'octocat' });
      const history = await engine.history(id);
      expect(history.filter((h) => h.type === 'signal.received')).toHaveLength(1);
      const ignored = history.find((h) => h.type === 'signal.ignored');
      expect(ignored?.data).toMatchObject({ event: { type: 'comment' } });
      const unconsumed = await db.query(`select id from rmapp_run_inbox where run_id = $1 and consumed_at is null`, [id]);
      expect(unconsumed).toHaveLength(0);
      await expect(engine.send(id, { type: 'approve', by: 'late' })).rejects.toThrow(/already finished/);
      await expect(engine.send(id, { type: 'xstate.done' })).rejects.toThrow(/reserved/);
    });

    it('a human approval wait ends on its durable timeout', async () => {
      const id = await engine.start('test.approval', { timeoutMs: 600 });
      const run = await engine.waitFor(id, { timeoutMs: 20_000 });
      expect(run.state).toBe('expired');
      expect(run.output).toEqual({ approvals: 0, approvedBy: null });
    });
  });

  describe('cancellation and timeouts', () => {
    it('cancel during a long step aborts its signal (the step never ends by itself) and runs the cleanup', async () => {
      const id = await engine.start('test.hanging', {});
      await until(() => attemptsOf(id, 'hang').length === 1, 20_000, 'the step to start');
      const cancelledAt = Date.now();
      const result = await engine.cancel(id, 'no longer needed');
      expect(result.cancelled).toBe(true);
      const run = await engine.waitFor(id, { timeoutMs: 20_000 });
      expect(run.status).toBe('cancelled');
      expect(run.error).toMatchObject({ category: 'cancelled', message: 'no longer needed' });
      const abortedAt = aborts.get(`${id}:hang`);
      expect(abortedAt).toBeDefined();
      expect(abortedAt as number).toBeGreaterThanOrEqual(cancelledAt);
      expect(cleanups).toContain(id);
      expect((await engine.history(id)).map((h) => h.type)).toContain('run.cancelled');
      // The step it stopped is not reported as still running.
      const children = (await engine.get(id)).children;
      expect(children.length, 'children the cancelled run lists').toBeGreaterThan(0);
      expect(
        children.filter((c) => c.status === 'active'),
        'children of the cancelled run reported active',
      ).toEqual([]);
    });

    it('cancel during a retry backoff', async () => {
      const id = await engine.start('test.flaky-slow', { failTimes: 5 });
      await waitStatus(id, 'waiting');
      await engine.cancel(id, 'stop retrying');
      const run = await engine.waitFor(id, { timeoutMs: 20_000 });
      expect(run.status).toBe('cancelled');
      expect(attemptsOf(id, 'flaky')).toHaveLength(1);
    });

    it('cancelling a finished run is a clear no-op; a pending run is cancelled in place', async () => {
      const id = await engine.start('test.flaky', {});
      await engine.waitFor(id, { timeoutMs: 20_000 });
      const result = await engine.cancel(id);
      expect(result).toMatchObject({ cancelled: false, status: 'succeeded' });
      expect(result.message).toMatch(/already finished/);
      expect((await engine.get(id)).status).toBe('succeeded');

      const client = createEngine({ database: db, workflows: durabilityWorkflows() });
      const pendingId = await client.start('test.flaky', {}, { runId: `pending-${kind}` });
      // Race the worker: either the pending run is cancelled in place, or its worker applies it.
      await client.cancel(pendingId, 'changed my mind');
      const pending = await engine.waitFor(pendingId, { timeoutMs: 20_000 });
      expect(['cancelled', 'succeeded']).toContain(pending.status);
    });

    it('a run past its timeout fails with category timeout, aborting its step', async () => {
      const id = await engine.start('test.hanging', {}, { timeoutMs: 500 });
      const run = await engine.waitFor(id, { timeoutMs: 20_000 });
      expect(run.status).toBe('failed');
      expect(run.error).toMatchObject({ category: 'timeout', code: 'RUN_TIMEOUT' });
      expect(aborts.has(`${id}:hang`)).toBe(true);
      expect(cleanups).toContain(id);
    });
  });

  describe('sub-workflows', () => {
    it('a parent with two child machines completes when both finish', async () => {
      const id = await engine.start('test.parent', {});
      const run = await engine.waitFor(id, { timeoutMs: 20_000 });
      expect(run.status).toBe('succeeded');
      expect(run.output).toEqual({ results: ['a', 'b'], childError: null });
      const history = await engine.history(id);
      // Child transitions are persisted too, under the child's path.
      expect(history.filter((h) => h.type === 'state.entered' && h.path === 'child-a').map((h) => h.state)).toEqual(['working', 'done']);
      expect(history.filter((h) => h.type === 'step.succeeded').map((h) => h.path)).toContain('child-b/0.child.working');
    });

    it("a failing child takes the parent's error path", async () => {
      const id = await engine.start('test.parent', { failChild: 'b' });
      const run = await engine.waitFor(id, { timeoutMs: 20_000 });
      expect(run.state).toBe('childFailed');
      expect(run.output).toMatchObject({ childError: 'child-b failed on attempt 1' });
    });
  });

  it('emits progress hooks and stores progress messages in history', async () => {
    const id = await engine.start('test.flaky', {});
    await engine.waitFor(id, { timeoutMs: 20_000 });
    const mine = events.filter((e) => e.payload.runId === id).map((e) => e.name);
    expect(mine).toEqual(['run.started', 'step.started', 'progress', 'step.succeeded', 'run.finished']);
    const progress = (await engine.history(id)).find((h) => h.type === 'progress');
    expect(progress?.data).toMatchObject({ message: 'flaky: attempt 1' });
  });
});
