/**
 * An owed cleanup being run by a worker's sweep whose LISTEN connection — which holds the run's cleanup
 * lock (state_machine/pending-cancel.ts `holdCleanup`) — is terminated on the server mid-cleanup: the
 * worker's process lives and its cleanup runs on. Another worker's sweep (a second store: another
 * process as Postgres sees it) must not run it again beside it. It did: the lock was free, the mark still
 * there. A ledger outside the engine (a file each cleanup appends its start and end to) shows it.
 */
import { appendFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect, it } from 'vitest';
import { createEngine } from '../src/index.ts';
import { CLEANUP_OWED } from '../src/persistence/run-admin.ts';
import { failingRunFlow, storesOnOneDatabase } from './helpers/failing-run-flow.ts';
import { readJsonLines } from './helpers/ledger.ts';
import { until } from './helpers/processes.ts';

const ledger = join(mkdtempSync(join(tmpdir(), 'a4-listen-lost-')), 'cleanups.jsonl');
interface Line {
  runId: string;
  phase: 'start' | 'end';
  worker: string;
  t: number;
}

/** Which engine runs the cleanup: set per engine through its own definition object. */
function flowFor(worker: string) {
  return failingRunFlow({
    name: 'a4.listen-lost',
    cleanup: async ({ runId }) => {
      appendFileSync(ledger, `${JSON.stringify({ runId, phase: 'start', worker, t: Date.now() })}\n`);
      // Past several of the other worker's sweeps (one a lease).
      await sleep(3_000);
      appendFileSync(ledger, `${JSON.stringify({ runId, phase: 'end', worker, t: Date.now() })}\n`);
    },
  });
}

const { open, track } = storesOnOneDatabase();

it('a worker whose LISTEN backend is terminated mid-cleanup keeps it: no other worker runs it beside it', async () => {
  const dbA = await open();
  const a = createEngine({ database: dbA, workflows: [flowFor('A')], leaseMs: 600 });
  track(a);
  await a.startWorker();
  const id = await a.start('a4.listen-lost', { key: 'k' });
  expect((await a.waitFor(id, { timeoutMs: 30_000 })).status).toBe('failed');
  // As a cancel of the queued retried run leaves it when its process died before the cleanup.
  await dbA.query(`update rmapp_runs set status = 'cancelled', status_message = $2 where id = $1`, [id, CLEANUP_OWED]);
  await until(() => readJsonLines<Line>(ledger).length > 0, 15_000, "A's sweep to start the cleanup");

  // The backend holding the run's cleanup lock (A's LISTEN connection) is terminated; A lives on.
  const terminated = await dbA.query<{ ok: boolean }>(
    `select pg_terminate_backend(l.pid) as ok from pg_locks l
     where l.locktype = 'advisory' and l.granted and l.classid = ${0x726d776b}::oid
       and l.objid = oid((hashtext('rmapp.cleanup:' || $1::text)::bigint + 4294967296) % 4294967296)`,
    [id],
  );
  expect(terminated.map((r) => r.ok)).toEqual([true]);
  const b = createEngine({ database: await open(), workflows: [flowFor('B')], leaseMs: 600, migrate: false });
  track(b);
  await b.startWorker();

  await until(() => readJsonLines<Line>(ledger).some((l) => l.phase === 'end'), 15_000, "A's cleanup to end");
  // B sweeps again after A's end too (every lease): the mark is cleared by then.
  await sleep(1_500);
  const lines = readJsonLines<Line>(ledger).filter((l) => l.runId === id);
  expect(
    lines.filter((l) => l.phase === 'start').map((l) => l.worker),
    `the cleanup of ${id} ran more than once: ${JSON.stringify(lines)}`,
  ).toEqual(['A']);
  await until(async () => (await b.get(id))?.statusMessage === null, 15_000, 'the mark cleared');
}, 60_000);
