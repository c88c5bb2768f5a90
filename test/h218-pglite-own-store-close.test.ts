/**
 * An owed cleanup running on an embedded store its caller opened and passed to the engine (not one the
 * engine opened), when the caller closes that store while the cleanup still runs: its lease must be kept
 * (README, "Cancellation": as for a store the engine closes), or the next process to open the store takes
 * it over at once — a dead process's lease, on a store one process holds — and runs the cleanup beside
 * this process's, whose signal has not aborted. Each execution writes its start and end (pid, whether its
 * signal had aborted) to a ledger file outside the engine.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, openDatabase, type Engine } from '../src/index.ts';
import { owedCleanupRun } from './helpers/failing-run-flow.ts';
import { readJsonLines } from './helpers/ledger.ts';
import { killAll, ROOT, spawnRmapp, until } from './helpers/processes.ts';
import { fixtureModule } from './helpers/fixture-bundles.ts';
import { ownStoreCleanup } from './fixtures/h218-owed-store.ts';

interface Mark {
  runId: string;
  phase: 'start' | 'end';
  pid: number;
  t: number;
  aborted: boolean;
}

const LEASE_MS = 10_000;
const dir = mkdtempSync(join(tmpdir(), 'h218-own-store-'));
const ledger = join(dir, 'ledger.jsonl');
process.env.H218_LEDGER = ledger;

afterAll(() => {
  killAll();
  rmSync(dir, { recursive: true, force: true });
});

describe('an owed cleanup running when its caller closes the embedded store it gave the engine', () => {
  it('is not run by the next process to open the store while it still runs unaborted', async () => {
    const dataDir = join(dir, 'pgdata');
    const db = await openDatabase({ dataDir });
    const engines: Engine[] = [];
    const runId = await owedCleanupRun(db, (...e) => engines.push(...e), ownStoreCleanup as never);
    const engine = createEngine({ database: db, workflows: [ownStoreCleanup], leaseMs: LEASE_MS });
    const cancelled = engine.cancel(runId).catch((err: unknown) => err);
    const marks = () => readJsonLines<Mark>(ledger);
    await until(() => marks().some((m) => m.phase === 'start'), 15_000, 'the cleanup to start here');
    await engine.stop();
    await db.close();
    const worker = spawnRmapp(
      ['worker', '--workflows', fixtureModule(join(ROOT, 'test/fixtures/h218-owed-store.ts')), '--lease-ms', String(LEASE_MS)],
      {
        RMAPP_DATA_DIR: dataDir,
        DATABASE_URL: '',
        H218_LEDGER: ledger,
        // Its own run of the cleanup need not be long: only where it starts counts.
        H218_CLEANUP_MS: '1000',
      },
    );
    await until(
      () => marks().filter((m) => m.phase === 'end').length >= 2 || worker.child.exitCode !== null,
      60_000,
      'both executions to end',
    );
    await cancelled;
    const here = marks().filter((m) => m.pid === process.pid);
    const there = marks().filter((m) => m.pid !== process.pid);
    const hereEnd = here.find((m) => m.phase === 'end');
    const thereStart = there.find((m) => m.phase === 'start');
    expect(thereStart, `the worker process never ran the cleanup: ${worker.output().slice(-2000)}`).toBeDefined();
    expect(
      thereStart!.t >= hereEnd!.t,
      `the worker process (pid ${thereStart!.pid}) started the cleanup at ${thereStart!.t} while this process's, its signal unaborted, ran until ${hereEnd!.t}: ${JSON.stringify(marks())}`,
    ).toBe(true);
  }, 120_000);
});
