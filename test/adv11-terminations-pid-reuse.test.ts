/**
 * A termination queued for a timed-out statement's backend is matched by process id and statement
 * text, and retried for up to a minute in a partition. A process id is used again once its backend has
 * exited: a new backend under it running the same statement for another caller (another worker's claim
 * or commit: the same text) must not be terminated. It started after the timed-out statement was sent,
 * which the timed-out statement's own backend had not.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendTerminations } from '../src/persistence/backend-terminations.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';

let testDb: TestDatabase;
const clients: pg.Client[] = [];
beforeAll(async () => {
  testDb = await createTestDatabase();
});
afterAll(async () => {
  for (const c of clients) await c.end().catch(() => {});
  await testDb?.drop();
});

const TEXT = 'select pg_sleep(30) as adv11_statement';

/** A connection running TEXT; its outcome ('terminated' or still running) and its pid. */
async function busyBackend(): Promise<{ pid: number; outcome: Promise<string> }> {
  const client = new pg.Client({ connectionString: testDb.url });
  client.on('error', () => {});
  clients.push(client);
  await client.connect();
  const pid = (client as unknown as { processID: number }).processID;
  const outcome = client.query(TEXT).then(
    () => 'finished',
    (err: Error) => `failed: ${err.message}`,
  );
  // Running it on the server before the termination looks for it.
  for (let i = 0; i < 100; i++) {
    const probe = new pg.Client({ connectionString: testDb.url });
    await probe.connect();
    const { rows } = await probe.query(`select 1 from pg_stat_activity where pid = $1 and state = 'active'`, [pid]);
    await probe.end();
    if (rows.length > 0) break;
    await sleep(20);
  }
  return { pid, outcome };
}

function terminations(): BackendTerminations {
  return new BackendTerminations(
    () => new pg.Client({ connectionString: testDb.url }),
    (c) => (c as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy(),
  );
}

describe('a queued termination and a process id used again (Postgres)', () => {
  it('terminates the backend that ran the statement when it was sent', async () => {
    const own = await busyBackend();
    const sentAt = performance.now();
    const t = terminations();
    t.request(own.pid, TEXT, sentAt);
    await t.close();
    expect(await own.outcome, `backend ${own.pid}, running the timed-out statement since before it was sent`).toMatch(/^failed: /);
  });

  it('leaves a backend that started after the statement was sent, running the same statement, alone', async () => {
    // The timed-out statement was sent at `sentAt`; its backend then exited and the id went to a new
    // backend that runs the same statement for another caller.
    const sentAt = performance.now();
    await sleep(50);
    const innocent = await busyBackend();
    const t = terminations();
    t.request(innocent.pid, TEXT, sentAt);
    await t.close();
    const probe = new pg.Client({ connectionString: testDb.url });
    await probe.connect();
    const { rows } = await probe.query(`select state, query from pg_stat_activity where pid = $1`, [innocent.pid]);
    await probe.query('select pg_cancel_backend($1)', [innocent.pid]);
    await probe.end();
    expect(rows, `backend ${innocent.pid}, started after the statement was sent: terminated by the retried termination`).toEqual([
      { state: 'active', query: TEXT },
    ]);
  });
});
