/**
 * Owed cleanups swept by real worker processes (`rmapp worker`) that are SIGKILLed or SIGTERMed while
 * one runs, with a ledger outside the engine (a file each cleanup appends its start and end to, with its
 * process id): a cleanup cut off by a kill runs again, once, in another worker, only after the killed
 * one is dead; one whose worker is stopped gracefully finishes and is not run again; every other owed
 * cleanup runs exactly once.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../src/index.ts';
import { CLEANUP_OWED } from '../src/persistence/run-admin.ts';
import { slowCleanup } from './fixtures/a4-slow-cleanup.ts';
import { fixtureModule } from './helpers/fixture-bundles.ts';
import { readJsonLines } from './helpers/ledger.ts';
import { processClient } from './helpers/process-client.ts';
import { ROOT, spawnRmapp, until } from './helpers/processes.ts';

const FIXTURE = fixtureModule(`${ROOT}test/fixtures/a4-slow-cleanup.ts`);
interface Line {
  runId: string;
  phase: 'start' | 'end';
  pid: number;
  t: number;
}

describe('owed cleanups in worker processes', () => {
  const pc = processClient(() => [slowCleanup]);

  /** `n` failed runs of the fixture, then marked owed as a canceller that died leaves them. */
  async function owedRuns(n: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push(await pc.client.start(slowCleanup, { key: String(i) }));
    const ledger = join(mkdtempSync(join(tmpdir(), 'a4-proc-fail-')), 'l.jsonl');
    const w = spawnRmapp(['--workflows', FIXTURE, 'worker', '--lease-ms', '1000'], { DATABASE_URL: pc.url, A4_LEDGER: ledger });
    for (const id of ids) expect((await pc.client.waitFor(id, { timeoutMs: 60_000 })).status).toBe('failed');
    w.child.kill('SIGTERM');
    await w.exited;
    const db = await openDatabase({ url: pc.url });
    try {
      await db.query(`update rmapp_runs set status = 'cancelled', status_message = $1 where id = any($2::text[])`, [CLEANUP_OWED, ids]);
    } finally {
      await db.close();
    }
    return ids;
  }

  it('SIGKILL mid-cleanup: another worker runs it again once, after the kill; the rest run once', async () => {
    const ids = await owedRuns(4);
    const ledger = join(mkdtempSync(join(tmpdir(), 'a4-proc-kill-')), 'l.jsonl');
    const env = { DATABASE_URL: pc.url, A4_LEDGER: ledger, A4_CLEANUP_MS: '1500' };
    const first = spawnRmapp(['--workflows', FIXTURE, 'worker', '--lease-ms', '1000'], env);
    await until(() => readJsonLines<Line>(ledger).some((l) => l.pid === first.child.pid), 60_000, 'the first cleanup');
    first.child.kill('SIGKILL');
    await first.exited;
    const killedAt = Date.now();
    const second = spawnRmapp(['--workflows', FIXTURE, 'worker', '--lease-ms', '700'], env);
    const third = spawnRmapp(['--workflows', FIXTURE, 'worker', '--lease-ms', '1300'], env);
    await until(
      async () => (await Promise.all(ids.map((id) => pc.client.get(id)))).every((r) => r?.statusMessage === null),
      60_000,
      'every mark cleared',
    );
    second.child.kill('SIGTERM');
    third.child.kill('SIGTERM');
    await Promise.all([second.exited, third.exited]);
    const lines = readJsonLines<Line>(ledger);
    const cut = lines.find((l) => l.pid === first.child.pid)!.runId;
    for (const id of ids) {
      const starts = lines.filter((l) => l.runId === id && l.phase === 'start');
      const live = starts.filter((l) => l.pid !== first.child.pid);
      expect(live, `run ${id}: ${JSON.stringify(lines.filter((l) => l.runId === id))}`).toHaveLength(1);
      if (id === cut) expect(live[0]!.t, `run ${id} ran again before its worker was killed`).toBeGreaterThanOrEqual(killedAt);
    }
  }, 120_000);

  it('SIGTERM mid-cleanup: the cleanup finishes, the worker exits 0, and nobody runs it again', async () => {
    const [id] = await owedRuns(1);
    const ledger = join(mkdtempSync(join(tmpdir(), 'a4-proc-term-')), 'l.jsonl');
    const env = { DATABASE_URL: pc.url, A4_LEDGER: ledger, A4_CLEANUP_MS: '1500' };
    const w = spawnRmapp(['--workflows', FIXTURE, 'worker', '--lease-ms', '1000'], env);
    await until(() => readJsonLines<Line>(ledger).length > 0, 60_000, 'the cleanup');
    w.child.kill('SIGTERM');
    expect(await w.exited, w.output()).toBe(0);
    const other = spawnRmapp(['--workflows', FIXTURE, 'worker', '--lease-ms', '700'], env);
    await sleep(2_500);
    other.child.kill('SIGTERM');
    await other.exited;
    expect(readJsonLines<Line>(ledger).map((l) => `${l.phase}@${l.pid}`)).toEqual([`start@${w.child.pid}`, `end@${w.child.pid}`]);
    expect((await pc.client.get(id!))?.statusMessage).toBeNull();
  }, 120_000);
});
