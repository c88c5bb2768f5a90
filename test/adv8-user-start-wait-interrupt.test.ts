/**
 * Ctrl-C in `rmapp start --wait` on Postgres (a new user's pass through the README): the command executes
 * the run in its own worker, and the signal killed it silently — the run stayed leased by the dead
 * process, so no other worker took it before the lease expired (30 s), and nothing said what became of
 * it. Now the first SIGINT stops that worker as `rmapp worker` stops (lease released, NOTIFY), names the
 * run and how it goes on, and exits 130.
 */
import postgres from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { killAll, spawnRmapp, TEST_WORKFLOWS, until } from './helpers/processes.ts';

describe('rmapp start --wait, interrupted', () => {
  let db: TestDatabase | null = null;
  afterAll(async () => {
    killAll();
    await db?.drop();
  });

  it('hands the run over on SIGINT and says how it goes on', async () => {
    db = await createTestDatabase('fix2_adv8_wait');
    const started = spawnRmapp(
      ['--workflows', TEST_WORKFLOWS, 'start', 'test.sequence', JSON.stringify({ slowStep: 'step1', slowMs: 2_000 }), '--wait'],
      { DATABASE_URL: db.url },
    );
    await until(() => started.output().includes('(attempt 1)…'), 60_000, 'the first step to start');
    const runId = /run (\S+): test\.sequence/.exec(started.output())?.[1];
    expect(runId).toBeDefined();
    started.child.kill('SIGINT');
    const code = await started.exited;
    const out = started.output();
    expect(code, out).toBe(130);
    expect(out).toContain(`run ${runId} did not finish here`);
    expect(out).toContain(`rmapp runs watch ${runId}`);
    // Released, not left leased by a process that is gone: any worker can take it at once.
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      const [row] = await sql<
        { lease_owner: string | null; status: string }[]
      >`select lease_owner, status from rmapp_runs where id = ${runId!}`;
      expect(row?.lease_owner).toBeNull();
      expect(row?.status).not.toBe('succeeded');
    } finally {
      await sql.end();
    }
  }, 90_000);
});
