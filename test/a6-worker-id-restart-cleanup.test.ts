/**
 * A worker under an operator-chosen id (`--worker-id`) SIGKILLed while its sweep ran an owed cleanup, then
 * started again under the same id: it takes back at once what its previous incarnation held once that
 * process is proven gone (state_machine/previous-incarnations.ts) — the owed cleanup it was running too,
 * as it did when the cleanup lock (gone with the killed process's connection) was all that guarded it. Its
 * lease on the run (persistence/run-admin.ts `takeOwedCleanup`) made the restart wait it out: at a long
 * lease, for that long. Real processes on Postgres, and a ledger file outside the engine that the cleanup
 * writes its start and end to (test/fixtures/a4-slow-cleanup.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine } from '../src/index.ts';
import { CLEANUP_OWED } from '../src/persistence/run-admin.ts';
import { slowCleanup } from './fixtures/a4-slow-cleanup.ts';
import { readJsonLines } from './helpers/ledger.ts';
import { useTestDatabase } from './helpers/postgres.ts';
import { killAll, ROOT, spawnRmapp, until } from './helpers/processes.ts';

interface Entry {
  runId: string;
  phase: 'start' | 'end';
  pid: number;
  t: number;
}

const store = useTestDatabase();
const dir = mkdtempSync(join(tmpdir(), 'a6-worker-id-'));
afterAll(() => {
  killAll();
  rmSync(dir, { recursive: true, force: true });
});

describe('owed cleanup of a worker restarted under its id after a SIGKILL mid-cleanup', () => {
  it('is run again by the restarted worker without waiting out the killed one’s lease', async () => {
    const url = store.testDb.url;
    const ledger = join(dir, 'ledger.jsonl');
    // A run that ran (its step fails), then marked owed as a cancellation that never ran its cleanup leaves it.
    const setup = createEngine({ database: url, workflows: [slowCleanup], leaseMs: 2_000 });
    const id: string = await setup.start(slowCleanup, { key: 'k' });
    await setup.startWorker();
    expect((await setup.waitFor(id, { timeoutMs: 30_000 })).status).toBe('failed');
    await setup.stop();
    await store.db.query(`update rmapp_runs set status = 'cancelled', status_message = $2, finished_at = now() where id = $1`, [
      id,
      CLEANUP_OWED,
    ]);

    // A lease of ten minutes: the restarted worker must not wait it out (nor its next sweep, a lease away).
    const args = ['worker', '--workflows', join(ROOT, 'test/fixtures/a4-slow-cleanup.ts'), '--worker-id', 'a6-w', '--lease-ms', '600000'];
    const env = { DATABASE_URL: url, A4_LEDGER: ledger };
    const first = spawnRmapp(args, { ...env, A4_CLEANUP_MS: '60000' });
    await until(
      () => readJsonLines<Entry>(ledger).some((e) => e.phase === 'start'),
      60_000,
      `the first worker to start the cleanup (${first.output()})`,
    );
    first.child.kill('SIGKILL');
    await first.exited;

    const second = spawnRmapp(args, { ...env, A4_CLEANUP_MS: '50' });
    await until(() => readJsonLines<Entry>(ledger).some((e) => e.phase === 'end' && e.pid === second.child.pid), 60_000).catch(
      (err: Error) => {
        throw new Error(
          `The restarted worker (pid ${second.child.pid}) did not run the cleanup its killed incarnation (pid ${first.child.pid}) ` +
            `was running (${err.message}); ledger: ${JSON.stringify(readJsonLines<Entry>(ledger))}; output: ${second.output()}`,
        );
      },
    );
    // The mark is cleared once the cleanup ran (just after its end is written).
    const mark = async () =>
      (await store.db.query<{ m: string | null }>(`select status_message as m from rmapp_runs where id = $1`, [id]))[0]?.m;
    await until(async () => (await mark()) === null, 30_000, 'the mark to be cleared after the cleanup ran');
    // The killed worker's execution, then the restarted worker's: twice, one after the other.
    expect(
      readJsonLines<Entry>(ledger)
        .filter((e) => e.phase === 'start')
        .map((e) => e.pid),
    ).toEqual([first.child.pid, second.child.pid]);
  }, 180_000);
});
