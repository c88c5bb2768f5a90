/**
 * A step's attempts are counted even when its worker dies after the step woke from `ctx.sleep`
 * (docs/engine-internals.md, "Step records": "A step whose allowed attempts were all started and none
 * finished fails with STEP_NEVER_FINISHED"; only an attempt *parked* in a sleep resumes as itself).
 * Real worker processes are SIGKILLed while the step works after its sleep; a ledger outside the engine
 * (test/fixtures/b2-sleep-crash.ts) names every execution's attempt.
 *
 * Before, the record kept the attempt marked parked after it woke (the wake was never written), so each
 * next worker resumed attempt 1 again: the step never used up its two attempts and every worker that
 * claimed the run died in it in turn, for ever.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/index.ts';
import { workflows } from './fixtures/b2-sleep-crash.ts';
import { fixtureModule } from './helpers/fixture-bundles.ts';
import { readJsonLines } from './helpers/ledger.ts';
import { createTestDatabase, rawTransaction, type TestDatabase } from './helpers/postgres.ts';
import { killAll, ROOT, spawnRmapp, until } from './helpers/processes.ts';

const MODULE = fixtureModule(join(ROOT, 'test/fixtures/b2-sleep-crash.ts'));

const rawRows = <T>(url: string, text: string, params: unknown[]) => rawTransaction(url, (tx) => tx.query<T>(text, params));

interface Line {
  phase: 'start' | 'woke';
  attempt: number;
  pid: number;
}

describe('a step killed after it woke from ctx.sleep', () => {
  let testDb: TestDatabase;
  let engine: Engine;
  const dir = mkdtempSync(join(tmpdir(), 'b2-sleep-'));
  let ledger = '';
  /** A worker under one `--worker-id`: each takes the killed one's run back at once. Runs stay in memory. */
  const worker = () =>
    spawnRmapp(
      ['--workflows', MODULE, 'worker', '--worker-id', 'b2-sleeper', '--lease-ms', '1000', '--evict-after-ms', '60000', '--no-retention'],
      { DATABASE_URL: testDb.url, RMAPP_TEST_LEDGER: ledger },
    );
  const starts = () =>
    readJsonLines<Line>(ledger)
      .filter((l) => l.phase === 'start')
      .map((l) => l.attempt);
  /** The step's record as the run's row holds it, and the lease epoch of that row. */
  const stored = async (id: string) => {
    const rows = await rawRows<{ steps: Record<string, { parked?: boolean } | number>; epoch: number }>(
      testDb.url,
      'select steps, lease_epoch as epoch from rmapp_runs where id = $1',
      [id],
    );
    const records = Object.values(rows[0]?.steps ?? {});
    return { parked: records.some((r) => typeof r === 'object' && r.parked === true), epoch: Number(rows[0]?.epoch ?? 0) };
  };

  beforeAll(async () => {
    testDb = await createTestDatabase();
    engine = createEngine({ database: testDb.url, workflows });
  });
  afterAll(async () => {
    killAll();
    await engine?.stop();
    await testDb?.drop();
  });

  it('counts each such death as an attempt, and fails the step once its attempts are spent', async () => {
    ledger = join(dir, 'woke.jsonl');
    const id = await engine.start('b2.sleep-crash', { sleepMs: 200 });
    // Two workers, each killed while the step works after its sleep: two attempts started, none finished.
    for (let k = 1; k <= 2; k++) {
      const w = worker();
      const pid = w.child.pid;
      await until(
        () => readJsonLines<Line>(ledger).some((l) => l.phase === 'woke' && l.pid === pid),
        30_000,
        `worker ${k} to wake in the step`,
      );
      w.child.kill('SIGKILL');
      await w.exited;
    }
    expect(starts(), 'the second worker must start attempt 2, not resume attempt 1 that had woken').toEqual([1, 2]);
    // A third worker must not run the step again: its attempts are spent.
    const third = worker();
    await until(async () => (await engine.get(id)).status === 'failed', 30_000, 'the run to fail');
    third.child.kill('SIGKILL');
    const run = await engine.get(id);
    expect(run.error?.code).toBe('STEP_NEVER_FINISHED');
    expect(
      readJsonLines<Line>(ledger).filter((l) => l.pid === third.child.pid),
      'the third worker ran the step',
    ).toEqual([]);
  }, 60_000);

  it('resumes an attempt killed in its sleep as itself, also when it had resumed before', async () => {
    ledger = join(dir, 'asleep.jsonl');
    const id = await engine.start('b2.sleep-crash', { sleepMs: 60_000 });
    let epoch = 0;
    // Three workers, each killed while the step sleeps; the second and third resume it.
    for (let k = 1; k <= 3; k++) {
      const w = worker();
      const pid = w.child.pid;
      await until(
        () => readJsonLines<Line>(ledger).some((l) => l.phase === 'start' && l.pid === pid),
        30_000,
        `worker ${k} to run the step`,
      );
      // Killed once the sleep is written as this worker's (bounded: before the fix it never was after a resume).
      const deadline = Date.now() + 3_000;
      for (;;) {
        const now = await stored(id);
        if ((now.parked && now.epoch > epoch) || Date.now() > deadline) {
          epoch = now.epoch;
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      w.child.kill('SIGKILL');
      await w.exited;
    }
    expect(starts(), 'a worker killed while the step slept must leave the same attempt to resume').toEqual([1, 1, 1]);
  }, 60_000);
});
