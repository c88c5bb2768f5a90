/**
 * On the embedded store (PGlite, no DATABASE_URL) a worker process SIGKILLed while it runs an owed
 * cleanup leaves its lease on the run (run-admin.ts `takeOwedCleanup`); the next process to open the
 * store holds it alone (database.ts `soleHolder`), so that lease is a dead process's: it runs the cleanup
 * at its first sweep, not a lease (here a minute) later. A ledger outside the engine (a file each
 * cleanup appends its start and end to, with its process id) shows it, once more, in the new process.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { createEngine, openDatabase } from '../src/index.ts';
import { CLEANUP_OWED } from '../src/persistence/run-admin.ts';
import { slowCleanup } from './fixtures/a4-slow-cleanup.ts';
import { fixtureModule } from './helpers/fixture-bundles.ts';
import { readJsonLines } from './helpers/ledger.ts';
import { killAll, ROOT, spawnRmapp, until } from './helpers/processes.ts';

const FIXTURE = fixtureModule(`${ROOT}test/fixtures/a4-slow-cleanup.ts`);
interface Line {
  runId: string;
  phase: 'start' | 'end';
  pid: number;
}
afterEach(() => killAll());

it('the next worker process on the store runs the cleanup a killed one was running, without waiting out its lease', async () => {
  const dataDir = join(mkdtempSync(join(tmpdir(), 'a4-pglite-kill-')), 'store');
  const engine = createEngine({ database: { dataDir }, workflows: [slowCleanup], leaseMs: 1_000 });
  await engine.startWorker();
  const id = await engine.start(slowCleanup, { key: 'k' });
  expect((await engine.waitFor(id, { timeoutMs: 30_000 })).status).toBe('failed');
  await engine.stop();
  // As a cancel of the queued retried run leaves it when its process died before the cleanup.
  const db = await openDatabase({ dataDir });
  await db.query(`update rmapp_runs set status = 'cancelled', status_message = $2 where id = $1`, [id, CLEANUP_OWED]);
  await db.close();

  const ledger = join(mkdtempSync(join(tmpdir(), 'a4-pglite-ledger-')), 'l.jsonl');
  const env = { DATABASE_URL: undefined, RMAPP_DATA_DIR: dataDir, A4_LEDGER: ledger, A4_CLEANUP_MS: '5000' };
  const first = spawnRmapp(['--workflows', FIXTURE, 'worker', '--lease-ms', '60000'], env);
  await until(() => readJsonLines<Line>(ledger).length > 0, 60_000, `the first cleanup (${first.output()})`);
  first.child.kill('SIGKILL');
  await first.exited;
  const second = spawnRmapp(['--workflows', FIXTURE, 'worker', '--lease-ms', '60000'], { ...env, A4_CLEANUP_MS: '0' });
  // Well within the killed worker's lease of a minute.
  await until(() => readJsonLines<Line>(ledger).some((l) => l.pid === second.child.pid && l.phase === 'end'), 30_000, 'the cleanup again');
  second.child.kill('SIGTERM');
  expect(await second.exited, second.output()).toBe(0);
  const lines = readJsonLines<Line>(ledger).map((l) => `${l.phase}@${l.pid === first.child.pid ? 'killed' : 'next'}`);
  expect(lines).toEqual(['start@killed', 'start@next', 'end@next']);
  const after = await openDatabase({ dataDir });
  try {
    expect((await after.query<{ m: string | null }>(`select status_message as m from rmapp_runs where id = $1`, [id]))[0]?.m).toBeNull();
  } finally {
    await after.close();
  }
}, 120_000);
