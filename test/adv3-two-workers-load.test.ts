/**
 * Adversarial, Postgres: two workers on one database, short leases (renewals all the time), runs
 * released into `waiting` and woken by signals while the other worker claims, commits batched through
 * `rmapp_commit_runs` (migration 0015) next to renewals and signal appends on other connections. No
 * statement may fail with a deadlock (40P01, docs/engine-internals.md "Lock order"), no ping is lost or
 * taken twice, every run finishes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/index.ts';
import { pingedWorkflow } from './helpers/pinged-workflow.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';

const PINGS = 5;
const RUNS = 60;

const pinged = pingedWorkflow('adv3.pinged2', PINGS, () => (Math.random() < 0.3 ? 300 + Math.random() * 400 : Math.random() * 20));

describe('two workers, short leases, signals and releases under load (postgres)', () => {
  let testDb: TestDatabase;
  const engines: Engine[] = [];
  const problems: string[] = [];
  const logger = {
    warn: (fields: unknown, msg?: string) => {
      const text = `${msg ?? ''} ${JSON.stringify(fields, (_k, v: unknown) => (v instanceof Error ? { message: v.message, code: (v as { code?: unknown }).code } : v))}`;
      if (/40P01|deadlock/i.test(text)) problems.push(text);
    },
    error: (fields: unknown, msg?: string) => {
      problems.push(`${msg ?? ''} ${JSON.stringify(fields, (_k, v: unknown) => (v instanceof Error ? { message: v.message } : v))}`);
    },
  };
  beforeAll(async () => {
    testDb = await createTestDatabase('advtest');
    // 1.5 s leases, renewed every 500 ms: renewals all the time, yet a stall of a second on a loaded
    // machine does not hand a step to the other worker again and again (800 ms allowed ~530 ms).
    for (let i = 0; i < 2; i++) {
      const e = createEngine({ database: testDb.url, workflows: [pinged], pollMs: 20, leaseMs: 1_500, concurrency: 40, logger });
      engines.push(e);
    }
    for (const e of engines) await e.startWorker();
  }, 60_000);
  afterAll(async () => {
    for (const e of engines) await e.stop({ graceMs: 200 });
    await testDb?.drop();
  });

  it('no deadlock, no lost or doubled ping, every run finishes', async () => {
    for (let round = 0; round < 3; round++) await pingRound();
    expect(problems, 'deadlocks or errors logged by the workers').toEqual([]);
  }, 300_000);

  async function pingRound(): Promise<void> {
    const [a, b] = engines as [Engine, Engine];
    const ids = await Promise.all(Array.from({ length: RUNS }, (_, i) => (i % 2 ? a : b).start('adv3.pinged2', {})));
    await Promise.all(
      ids.map(async (id, i) => {
        for (let p = 0; p < PINGS; p++) {
          await new Promise((r) => setTimeout(r, Math.random() * 40));
          await (p % 2 === i % 2 ? a : b).send(id, { type: 'ping' });
        }
      }),
    );
    const until = Date.now() + 90_000;
    for (;;) {
      const runs = await Promise.all(ids.map((id) => a.get(id)));
      if (runs.every((r) => r.status === 'succeeded')) break;
      if (Date.now() > until)
        throw new Error(
          `unfinished: ${JSON.stringify(runs.filter((r) => r.status !== 'succeeded').map((r) => [r.id, r.status, r.state]))}`,
        );
      await new Promise((r) => setTimeout(r, 200));
    }
    for (const id of ids) expect((await a.get(id)).output, `run ${id}`).toEqual({ pings: PINGS });
    const owners = await (
      await a.db()
    ).query<{ n: number }>(`select count(distinct worker)::int as n from rmapp_run_history where run_id = any($1)`, [ids]);
    expect(owners[0]!.n, 'both workers took part').toBeGreaterThanOrEqual(2);
  }
});
