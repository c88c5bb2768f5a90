/**
 * Statements cut off by the engine's statement timeout (QUERY_TIMEOUT) while a transaction of the test's
 * own holds the lock they wait for: the caller gets the error, and nothing else rejects unhandled.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, silentLogger, type Engine } from '../src/index.ts';
import { useHeldLockDatabase, waitingWorkflow } from './helpers/held-locks.ts';

const wait = waitingWorkflow('h2.wait');
const db = useHeldLockDatabase();
const client = () => db.client();
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);

beforeAll(() => void process.on('unhandledRejection', onUnhandled));
afterAll(() => void process.off('unhandledRejection', onUnhandled));

/** An engine whose statements time out after 2.5 s (a 2 s lease). */
async function engine(withWorker: boolean): Promise<Engine> {
  const e = db.track(createEngine({ database: db.url, workflows: [wait], logger: silentLogger, leaseMs: 2_000 }));
  if (withWorker) await e.startWorker();
  else await e.start(wait, {}, { runId: `h2-warm-${randomUUID().slice(0, 8)}` });
  return e;
}

/** Holds `key` with an uncommitted run of another transaction until `release` is called. */
async function holdKey(key: string): Promise<{ release(): Promise<void> }> {
  const c = await client();
  await c.query('begin');
  await c.query(
    `insert into rmapp_runs (id, workflow, workflow_version, idempotency_key, status) values ($1, 'h2.other', 'v', $2, 'succeeded')`,
    [`h2-hold-${randomUUID().slice(0, 8)}`, key],
  );
  return { release: () => c.query('rollback').then(() => {}) };
}

/** Holds run `id`'s row `for update` until `release` is called. */
async function holdRow(id: string): Promise<{ release(): Promise<void> }> {
  const c = await client();
  await c.query('begin');
  await c.query(`select id from rmapp_runs where id = $1 for update`, [id]);
  return { release: () => c.query('rollback').then(() => {}) };
}

/** What each call settled as (code), with the unhandled rejections seen meanwhile and a moment after. */
async function outcomes(calls: Record<string, Promise<unknown>>): Promise<{ codes: Record<string, string>; unhandled: string[] }> {
  const from = unhandled.length;
  const settled = await Promise.allSettled(Object.values(calls));
  // Unhandled rejections are reported after the microtask queue drains; a later one after a macrotask.
  await new Promise((r) => setTimeout(r, 500));
  const codes = Object.fromEntries(
    Object.keys(calls).map((name, i) => {
      const s = settled[i] as PromiseSettledResult<unknown>;
      return [name, s.status === 'fulfilled' ? 'ok' : String((s.reason as { code?: unknown } | null)?.code)];
    }),
  );
  const seen = unhandled
    .slice(from)
    .map((r) => `${String((r as { code?: unknown } | null)?.code)}: ${String((r as Error | null)?.message)}`);
  return { codes, unhandled: seen };
}

describe('statements that time out on a lock held elsewhere', () => {
  it('a lone local start: its caller gets QUERY_TIMEOUT, nothing rejects unhandled', async () => {
    const e = await engine(true);
    const key = `h2-${randomUUID()}`;
    const held = await holdKey(key);
    const calls = { start: e.start(wait, {}, { idempotencyKey: key }) };
    const r = await outcomes(calls);
    await held.release();
    expect(r.codes).toEqual({ start: 'QUERY_TIMEOUT' });
    expect(r.unhandled, `unhandled rejections: ${r.unhandled.join('; ')}`).toEqual([]);
  }, 30_000);

  it('a batch of local starts, one held on its key: each caller gets the batch error, nothing rejects unhandled', async () => {
    const e = await engine(true);
    const key = `h2-${randomUUID()}`;
    const first = await holdKey(`${key}-first`);
    const held = await holdKey(key);
    // The first start goes alone and waits on its key; the next ones gather behind it into one batch.
    const lone = e.start(wait, {}, { idempotencyKey: `${key}-first` });
    const calls: Record<string, Promise<unknown>> = { s0: e.start(wait, {}, { idempotencyKey: key }) };
    for (let i = 1; i < 4; i++) calls[`s${i}`] = e.start(wait, {}, { idempotencyKey: `${key}-${i}` });
    const settledLone = Promise.allSettled([lone]);
    await new Promise((r) => setTimeout(r, 300));
    await first.release();
    await settledLone;
    const r = await outcomes(calls);
    await held.release();
    expect(r.codes).toEqual({ s0: 'QUERY_TIMEOUT', s1: 'QUERY_TIMEOUT', s2: 'QUERY_TIMEOUT', s3: 'QUERY_TIMEOUT' });
    expect(r.unhandled, `unhandled rejections: ${r.unhandled.join('; ')}`).toEqual([]);
  }, 30_000);

  it('a batch refused for one run, whose runs inserted again alone include one held on its key: nothing unhandled', async () => {
    const e = await engine(true);
    const tag = randomUUID().slice(0, 8);
    const existing = await e.start(wait, {}, { runId: `h2-a-${tag}` });
    const key = `h2-${randomUUID()}`;
    const held = await holdKey(key);
    // Held alone first (on the key); the others gather behind it. Inserted in id order, the batch meets
    // the existing id first and is refused (23505): each of its runs is inserted again alone.
    const lone = e.start(wait, {}, { runId: `h2-b-${tag}`, idempotencyKey: key });
    const calls = {
      existing: e.start(wait, {}, { runId: existing }),
      free: e.start(wait, {}, { runId: `h2-c-${tag}` }),
      held: e.start(wait, {}, { runId: `h2-d-${tag}`, idempotencyKey: key }),
    };
    const r = await outcomes({ lone, ...calls });
    await held.release();
    expect(r.codes).toEqual({ lone: 'QUERY_TIMEOUT', existing: 'ok', free: 'ok', held: 'QUERY_TIMEOUT' });
    expect(r.unhandled, `unhandled rejections: ${r.unhandled.join('; ')}`).toEqual([]);
  }, 30_000);

  it('a start without a worker: QUERY_TIMEOUT, nothing unhandled', async () => {
    const e = await engine(false);
    const key = `h2-${randomUUID()}`;
    const held = await holdKey(key);
    const r = await outcomes({ start: e.start(wait, {}, { idempotencyKey: key }) });
    await held.release();
    expect(r.codes).toEqual({ start: 'QUERY_TIMEOUT' });
    expect(r.unhandled, `unhandled rejections: ${r.unhandled.join('; ')}`).toEqual([]);
  }, 30_000);

  it('a local start under a locked parent, a send and a cancel on a locked run: nothing unhandled', async () => {
    const e = await engine(true);
    const parent = await e.start(wait, {}, { runId: `h2-p-${randomUUID().slice(0, 8)}` });
    const held = await holdRow(parent);
    const r = await outcomes({
      child: e.start(wait, {}, { parentRunId: parent }),
      send: e.send(parent, { type: 'go' }),
      cancel: e.cancel(parent),
    });
    await held.release();
    expect(r.codes).toEqual({ child: 'QUERY_TIMEOUT', send: 'QUERY_TIMEOUT', cancel: 'QUERY_TIMEOUT' });
    expect(r.unhandled, `unhandled rejections: ${r.unhandled.join('; ')}`).toEqual([]);
  }, 30_000);

  it('a run held on its row (its renewals, writes and a send time out), then a stop with a start held: nothing unhandled', async () => {
    const e = await engine(true);
    const id = await e.start(wait, {}, { runId: `h2-r-${randomUUID().slice(0, 8)}` });
    const row = await holdRow(id);
    const key = `h2-${randomUUID()}`;
    const held = await holdKey(key);
    // The send's append reaches the inbox only past the row lock; the run's write of it is held there too.
    const r = await outcomes({
      send: e.send(id, { type: 'go' }, { waitMs: 3_000 }),
      start: Promise.all([
        new Promise((resolve) => setTimeout(resolve, 3_000)).then(() => e.stop({ graceMs: 0 })),
        e.start(wait, {}, { idempotencyKey: key }),
      ]),
    });
    await row.release();
    await held.release();
    expect(r.unhandled, `unhandled rejections: ${r.unhandled.join('; ')} (calls: ${JSON.stringify(r.codes)})`).toEqual([]);
  }, 30_000);
});
