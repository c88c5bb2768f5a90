/**
 * Durable waits across a crash, with real processes: a worker holding a run in memory is killed with
 * SIGKILL during a retry backoff, during an `after` wait, and while two child workflows run; a new
 * worker process resumes each run at the original due time or to completion. "At the original due
 * time": never before it, and within 1 s of the later of the due time and the moment the new worker
 * took the run over (its `lease.taken_over` history row) — a timer re-armed from the restart would
 * fire a whole delay after the take-over; a slow start of the new worker (a loaded machine) is not
 * the engine's lateness.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { durabilityWorkflows, type AttemptRecord } from './helpers/durability-workflows.ts';
import { processClient } from './helpers/process-client.ts';
import { spawnRmapp, TEST_WORKFLOWS, until } from './helpers/processes.ts';

const pg = processClient(() => durabilityWorkflows());

function records(file: string): AttemptRecord[] {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as AttemptRecord);
  } catch {
    return [];
  }
}

/**
 * Fired at `at` for a due time `due`: not early (not before `earliest`, the soonest it can be due when
 * `due` is only known after the fact), and not a delay late after the take-over.
 */
async function expectOnTime(id: string, at: number, due: number, earliest = due - 100): Promise<void> {
  const takeover = (await pg.client.history(id)).find((h) => h.type === 'lease.taken_over');
  expect(takeover, 'the new worker took the run over').toBeDefined();
  expect(at, 'fired before its due time').toBeGreaterThanOrEqual(earliest);
  expect(at - Math.max(due, takeover?.at.getTime() ?? 0), 'fired late after the due time and the take-over').toBeLessThanOrEqual(1_000);
}

function setup(name: string) {
  const counter = join(mkdtempSync(join(tmpdir(), `rmapp-${name}-`)), 'attempts.jsonl');
  const env = { DATABASE_URL: pg.url, RMAPP_TEST_COUNTER_FILE: counter };
  // The first worker keeps waiting runs in memory (no eviction), so the kill hits a run it holds.
  const worker = (extra: Record<string, string> = {}, evict = true) =>
    spawnRmapp(
      ['--workflows', TEST_WORKFLOWS, 'worker', '--lease-ms', '1000', '--poll-ms', '100', ...(evict ? [] : ['--evict-after-ms', '600000'])],
      { ...env, ...extra },
    );
  return { counter, worker };
}

it('a crash during a retry backoff: the next attempt runs at the original due time', async () => {
  const { counter, worker } = setup('backoff');
  const id = await pg.client.start('test.flaky-slow', { failTimes: 1 });
  const first = worker({}, false);
  await until(async () => (await pg.client.history(id)).some((h) => h.type === 'step.retrying'), 30_000, 'the retry to be recorded');
  const retrying = (await pg.client.history(id)).find((h) => h.type === 'step.retrying');
  const due = Date.parse((retrying?.data as { nextAttemptAt: string }).nextAttemptAt);
  expect((retrying?.data as { delayMs: number }).delayMs).toBe(3_000);
  first.child.kill('SIGKILL');
  await first.exited;
  expect((await pg.client.get(id)).leaseOwner).not.toBe(null);

  const second = worker();
  const run = await pg.client.waitFor(id, { timeoutMs: 30_000 });
  expect(run.status).toBe('succeeded');
  const tries = records(counter).filter((r) => r.runId === id);
  expect(tries.map((t) => t.attempt)).toEqual([1, 2]);
  await expectOnTime(id, (tries[1] as AttemptRecord).at, due);
  second.child.kill('SIGTERM');
  await second.exited;
});

it('a crash during an `after` wait: the timer fires at its original due time', async () => {
  const { counter, worker } = setup('after');
  const id = await pg.client.start('test.timer', { delayMs: 4_000 });
  const first = worker({}, false);
  await until(async () => (await pg.client.get(id)).state === 'waiting', 30_000, 'the wait to begin');
  const entered = (await pg.client.history(id)).find((h) => h.type === 'state.entered' && h.state === 'waiting');
  // The entry's time is its commit's, after the macrostep that scheduled the timer (121 ms after it on a
  // loaded clean-clone run): the timer is due no sooner than 4 s after the run was created.
  const due = (entered?.at.getTime() ?? 0) + 4_000;
  const earliest = (await pg.client.get(id)).createdAt.getTime() + 4_000 - 5;
  first.child.kill('SIGKILL');
  await first.exited;

  const second = worker();
  const run = await pg.client.waitFor(id, { timeoutMs: 30_000 });
  expect(run.status).toBe('succeeded');
  const mark = records(counter).find((r) => r.runId === id && r.name === 'mark');
  expect(mark).toBeDefined();
  await expectOnTime(id, (mark as AttemptRecord).at, due, earliest);
  second.child.kill('SIGTERM');
  await second.exited;
});

it('a parent crashed while both children run: after resume both finish and the parent completes', async () => {
  const { counter, worker } = setup('children');
  const id = await pg.client.start('test.parent', {});
  const first = worker({ RMAPP_TEST_SLOW_STEP: 'child-a,child-b', RMAPP_TEST_SLOW_MS: '60000' });
  await until(
    () => {
      const names = records(counter)
        .filter((r) => r.runId === id)
        .map((r) => r.name);
      return names.includes('child-a') && names.includes('child-b');
    },
    30_000,
    'both children to start',
  );
  first.child.kill('SIGKILL');
  await first.exited;

  // Each child is visible on its own, with its state and status, from the parent's persisted snapshot.
  const crashed = await pg.client.get(id);
  const kids = crashed.children.filter((c) => !c.path.includes('/'));
  expect(kids.map((c) => [c.path, c.src, c.status, c.state])).toEqual([
    ['child-a', 'child', 'active', 'working'],
    ['child-b', 'child', 'active', 'working'],
  ]);

  const second = worker();
  const run = await pg.client.waitFor(id, { timeoutMs: 30_000 });
  expect(run.status).toBe('succeeded');
  expect(run.output).toEqual({ results: ['a', 'b'], childError: null });
  const byName = (n: string) => records(counter).filter((r) => r.runId === id && r.name === n).length;
  expect(byName('child-a')).toBe(2);
  expect(byName('child-b')).toBe(2);
  second.child.kill('SIGTERM');
  await second.exited;
});
