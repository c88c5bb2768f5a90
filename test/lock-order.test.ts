/**
 * The statements that lock several runs at once — a worker's lease renewal and its batched commit, on
 * two connections — take their row locks in one order (by run id), so they can wait on each other but
 * never deadlock (issue 19 saw `deadlock detected` under load). Each round renews the runs in one
 * order while a batch commit lists them in the opposite order.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { admitQueuedRuns, claimRuns, expirePreviousIncarnation, renewLeases } from '../src/persistence/claims.ts';
import { appendSignal } from '../src/persistence/inbox.ts';
import { saveArtifact } from '../src/persistence/artifacts.ts';
import { compactHistory, pruneRuns } from '../src/persistence/retention.ts';
import { commitRunWrites, type RunWrite } from '../src/persistence/commits.ts';
import { openDatabase, type Database, type QueryOptions } from '../src/persistence/database.ts';
import { migrate } from '../src/persistence/migrate.ts';
import { insertRun, markUnregisteredVersions } from '../src/persistence/runs.ts';
import { runWrite } from './helpers/run-write.ts';
import { createTestDatabase, rawTransaction, type TestDatabase } from './helpers/postgres.ts';

let testDb: TestDatabase;
let renewer: Database;
let committer: Database;
let claimer: Database;
let retention: Database;

beforeAll(async () => {
  testDb = await createTestDatabase();
  renewer = await openDatabase({ url: testDb.url });
  committer = await openDatabase({ url: testDb.url });
  claimer = await openDatabase({ url: testDb.url });
  retention = await openDatabase({ url: testDb.url });
  await migrate(renewer);
});
afterAll(async () => {
  await renewer.close();
  await committer.close();
  await claimer.close();
  await retention.close();
  await testDb.drop();
});

it('a renewal and a batch commit of the same runs in opposite orders never deadlock', async () => {
  const owner = 'lock-order:0000abcd';
  const ids: string[] = [];
  for (let i = 0; i < 40; i++)
    ids.push((await insertRun(renewer, { id: `lock-${String(i).padStart(2, '0')}`, workflow: 'w', workflowVersion: 'v', input: {} })).id);
  const claimed = await claimRuns(renewer, { owner, leaseMs: 60_000, limit: 40, definitions: [['w', 'v']] });
  expect(claimed.map((r) => r.id).sort(), 'runs claimed for the test').toEqual([...ids].sort());
  const versions = new Map(claimed.map((r) => [r.id, { version: r.version, epoch: r.leaseEpoch }]));
  const write = (id: string): RunWrite => {
    const v = versions.get(id) as { version: number; epoch: number };
    return runWrite({ id, expectedVersion: v.version, owner, epoch: v.epoch });
  };

  const errors: string[] = [];
  for (let round = 0; round < 60; round++) {
    const forward = round % 2 === 0 ? ids : [...ids].reverse();
    const [, committed] = await Promise.all([
      renewLeases(renewer, { owner, leaseMs: 60_000, runs: forward.map((id) => ({ id, epoch: versions.get(id)?.epoch ?? 0 })) }).catch(
        (err: Error) => errors.push(`renewal: ${err.message}`),
      ),
      commitRunWrites(committer, [...forward].reverse().map(write)).catch((err: Error) => {
        errors.push(`commit: ${err.message}`);
        return [];
      }),
    ]);
    for (const r of committed) versions.set(r.id, { version: r.version, epoch: versions.get(r.id)?.epoch ?? 0 });
  }
  expect(errors, 'statements that failed (a deadlock between renewal and commit)').toEqual([]);
});

/**
 * Every statement that locks rows of runs, at once and for many rounds on separate connections:
 * batch commits (keeping and releasing leases, consuming signals), lease renewals, claims (of new runs
 * and of expired leases, which append a take-over row), history compaction, pruning of finished runs,
 * signals, admission of queued runs, marking unregistered versions and expiring a previous
 * incarnation. Each keeps the lock order of docs/engine-internals.md ("Lock order"), so Postgres never
 * reports `deadlock detected` (40P01). The control below runs the same load with one statement locking
 * in the opposite order, to show this load does meet the interleavings a wrong order deadlocks on.
 */
async function lockLoad(options: { rounds: number; reversedRenewal: boolean; stopAtFirstDeadlock: boolean }): Promise<string[]> {
  const { rounds } = options;
  const suffix = options.reversedRenewal ? 'rev' : 'ok';
  const owner = `lock-load-${suffix}:0000abcd`;
  const def: [string, string] = [`load-${suffix}`, 'v'];
  // 40 runs held by this worker, 40 finished and old (for pruning), fresh pending and queued runs per round.
  const held: string[] = [];
  for (let i = 0; i < 40; i++) {
    const id = `${suffix}-held-${String(i).padStart(2, '0')}`;
    await insertRun(renewer, { id, workflow: def[0], workflowVersion: def[1], input: {} });
    held.push(id);
  }
  const claimed = await claimRuns(renewer, { owner, leaseMs: 60_000, limit: 40, definitions: [def] });
  const state = new Map(claimed.map((r) => [r.id, { version: r.version, epoch: r.leaseEpoch }]));
  const deadlocks: string[] = [];
  const note = (what: string) => (err: { code?: string; message: string }) => {
    if (err.code === '40P01') deadlocks.push(`${what}: ${err.message}`);
    else throw err;
  };
  const shuffled = <T>(list: T[]) =>
    list
      .map((v) => [Math.random(), v] as const)
      .sort((a, b) => a[0] - b[0])
      .map(([, v]) => v);
  const write = (id: string, consumed: [number, 'received'][]): RunWrite => {
    const v = state.get(id) as { version: number; epoch: number };
    return runWrite({ id, expectedVersion: v.version, owner, epoch: v.epoch }, { consumedSignals: consumed });
  };

  const reversedRenewal = (runs: string[]) =>
    committer.query(
      `with l as materialized (select r.id from rmapp_runs r where r.id = any($1::text[]) order by r.id desc for no key update)
       update rmapp_runs r set lease_expires_at = now() + interval '60 seconds' from l where r.id = l.id returning r.id`,
      [runs],
    );
  for (let round = 0; round < rounds; round++) {
    if (options.stopAtFirstDeadlock && deadlocks.length > 0) break;
    const fresh = `${suffix}-fresh-${round}`;
    await insertRun(renewer, { id: fresh, workflow: def[0], workflowVersion: def[1], input: {} });
    await insertRun(renewer, {
      id: `${suffix}-queued-${round}`,
      workflow: def[0],
      workflowVersion: def[1],
      input: {},
      concurrency: { key: `k-${suffix}`, limit: 1000 },
    });
    await insertRun(renewer, { id: `${suffix}-old-${round}`, workflow: def[0], workflowVersion: 'gone', input: {} });
    await renewer.query(
      `insert into rmapp_runs (id, workflow, workflow_version, status, input, created_at, finished_at, updated_at)
       values ($1, $2, 'v', 'succeeded', '{}', now() - interval '30 days', now() - interval '30 days', now())`,
      [`${suffix}-done-${round}`, def[0]],
    );
    const signalled = shuffled(held).slice(0, 8);
    const sent = await Promise.all(signalled.map((id) => appendSignal(renewer, id, { type: 'go' }, null)));
    const consumed = new Map(signalled.map((id, i) => [id, [[sent[i]?.id as number, 'received'] as [number, 'received']]]));
    const batch = shuffled(held).slice(0, 30);
    const results = await Promise.all([
      commitRunWrites(
        committer,
        batch.map((id) => write(id, consumed.get(id) ?? [])),
      ).catch((err) => {
        note('commit')(err);
        return [];
      }),
      options.reversedRenewal
        ? reversedRenewal(shuffled(held)).catch(note('renewal (reversed order)'))
        : renewLeases(renewer, {
            owner,
            leaseMs: 60_000,
            runs: shuffled(held).map((id) => ({ id, epoch: state.get(id)?.epoch ?? 0 })),
          }).catch(note('renewal')),
      claimRuns(claimer, { owner: `other-${suffix}:0000ffff`, leaseMs: 60_000, limit: 5, definitions: [def] }).catch(note('claim')),
      Promise.all(
        shuffled(held)
          .slice(0, 4)
          .map((id) => compactHistory(retention, id, { keepLast: 2 })),
      ).catch(note('compaction')),
      pruneRuns(retention, { succeededMs: 1000, failedMs: 1000, cancelledMs: 1000 }, { batchSize: 3 }).catch(note('prune')),
      Promise.all(
        shuffled(held)
          .slice(0, 4)
          .map((id) => appendSignal(claimer, id, { type: 'poke' }, null)),
      ).catch(note('signal')),
      // Artifact saves next to compactions and renewals of the same runs (a row lock they once took
      // made the run's lock a shared one, and those deadlocked).
      Promise.all(
        shuffled(held)
          .slice(0, 4)
          .map((id) => saveArtifact(committer, id, 'transcript', '{"lines":1}', 11)),
      ).catch(note('artifact')),
      admitQueuedRuns(claimer, [def]).catch(note('admission')),
      markUnregisteredVersions(retention, [def], `w-${suffix}`).catch(note('unregistered')),
      expirePreviousIncarnation(claimer, {
        workerId: `nobody-${suffix}`,
        owners: [`nobody-${suffix}:00000001`],
        liveOwners: [`nobody-${suffix}:00000000`],
      }).catch(note('expire')),
    ]);
    for (const r of results[0]) state.set(r.id, { version: r.version, epoch: state.get(r.id)?.epoch ?? 0 });
  }
  return deadlocks;
}

it('commits, claims, renewals, signals, admission and retention under load in one lock order: no deadlock', async () => {
  const deadlocks = await lockLoad({ rounds: 40, reversedRenewal: false, stopAtFirstDeadlock: false });
  expect(deadlocks, 'statements that failed with deadlock detected (40P01)').toEqual([]);
});

it('control: the same load with a renewal locking in the opposite order deadlocks (the load can find a wrong order)', async () => {
  const deadlocks = await lockLoad({ rounds: 200, reversedRenewal: true, stopAtFirstDeadlock: true });
  expect(deadlocks.length, 'deadlocks seen with a renewal locking runs in descending id order').toBeGreaterThan(0);
});

it('a compaction and a prune of the same finished run, on two connections, never deadlock: a prune skips a run being compacted', async () => {
  // Two workers' retention passes: one compacts a long history (a lowered history.maxRows) of a run the
  // other prunes. A third transaction holds one of the history rows, so the compaction stops halfway
  // through its locks while the prune starts: the order in which each takes the run row and the
  // history rows decides whether they can close a cycle.
  await retention.query(`insert into rmapp_runs (id, workflow, workflow_version, status, created_at, finished_at, history_rows)
    values ('retention-race', 'w', 'v', 'succeeded', now() - interval '30 days', now() - interval '29 days', 50)`);
  await retention.query(
    `insert into rmapp_run_history (run_id, events) select 'retention-race', '[{"type":"e"}]'::jsonb from generate_series(1, 50)`,
  );
  const [held] = await retention.query<{ id: string }>(
    `select id::text from rmapp_run_history where run_id = 'retention-race' order by id offset 20 limit 1`,
  );
  const waiting = async () => (await renewer.query<{ n: number }>(`select count(*)::int as n from pg_locks where not granted`))[0]?.n ?? 0;
  const until = async (what: string, check: () => Promise<boolean>) => {
    for (let i = 0; i < 500 && !(await check()); i++) await new Promise((r) => setTimeout(r, 20));
    expect(await check(), what).toBe(true);
  };
  const outcome = (p: Promise<unknown>) =>
    p.then(
      () => 'ok',
      (err: Error & { code?: string }) => `${err.code ?? ''} ${err.message}`,
    );
  let compaction!: Promise<string>;
  let prune!: Promise<string>;
  let pruneSettled = false;
  await rawTransaction(testDb.url, async (tx) => {
    await tx.query(`select 1 from rmapp_run_history where run_id = 'retention-race' and id = $1 for update`, [held?.id]);
    compaction = outcome(compactHistory(retention, 'retention-race', { keepLast: 5 }));
    await until('the compaction to wait for the held history row', async () => (await waiting()) >= 1);
    prune = outcome(pruneRuns(claimer, { succeededMs: 86_400_000, failedMs: 86_400_000, cancelledMs: 86_400_000 }, { batchSize: 1 }));
    void prune.then(() => (pruneSettled = true));
    await until('the prune to finish or wait', async () => pruneSettled || (await waiting()) >= 2);
  });
  expect({ compaction: await compaction, prune: await prune }, 'neither fails (40P01 is a deadlock)').toEqual({
    compaction: 'ok',
    prune: 'ok',
  });
  // The run the prune skipped (the compaction held it) goes on the next pass, with all its history.
  await pruneRuns(claimer, { succeededMs: 86_400_000, failedMs: 86_400_000, cancelledMs: 86_400_000 });
  const [left] = await retention.query<{ runs: number; history: number }>(
    `select (select count(*) from rmapp_runs where id = 'retention-race')::int as runs,
            (select count(*) from rmapp_run_history where run_id = 'retention-race')::int as history`,
  );
  expect(left, 'rows of the run after the next prune').toEqual({ runs: 0, history: 0 });
});

it('a prune leaves out the runs being compacted and deletes the rest in the same call; a late artifact of a run it deleted goes too', async () => {
  const policy = { succeededMs: 86_400_000, failedMs: 86_400_000, cancelledMs: 86_400_000 };
  const ids = ['skip-0', 'skip-1', 'skip-2', 'skip-3'];
  for (const [i, id] of ids.entries()) {
    await retention.query(
      `insert into rmapp_runs (id, workflow, workflow_version, status, created_at, finished_at)
       values ($1, 'w', 'v', 'succeeded', now() - interval '30 days' + $2 * interval '1 second', now() - interval '29 days')`,
      [id, i],
    );
  }
  // The oldest is being compacted (its advisory lock held): batches of one used to stop at it.
  let late = 0;
  const lateSaves: Database = new Proxy(claimer, {
    get(target, prop, receiver) {
      if (prop !== 'query' && prop !== 'script') return Reflect.get(target, prop, receiver) as unknown;
      // The batch's lock and delete are a script (retention.ts `lockAndDeleteBatch`), its scan a query.
      if (prop === 'script')
        return async (statements: string[], options?: QueryOptions) => {
          const rows = await target.script(statements, options);
          // A step's save that read its run before this batch committed lands after the batch's delete.
          const deleted = (rows[0] as { ids: string[] } | undefined)?.ids ?? [];
          for (const id of deleted) late += (await saveArtifactUnchecked(retention, id)) ? 1 : 0;
          return rows;
        };
      return (text: string, params?: unknown[]) => target.query(text, params);
    },
  });
  const result = await rawTransaction(testDb.url, async (tx) => {
    await tx.query(`select pg_advisory_xact_lock(hashtextextended('rmapp.history:' || 'skip-0', 0))`);
    return pruneRuns(lateSaves, policy, { batchSize: 1 });
  });
  expect(result.runs, 'runs deleted while the oldest was held').toBe(3);
  expect(late, 'late artifacts written for deleted runs').toBe(3);
  const left = async () =>
    retention.query<{ id: string; artifacts: number }>(
      `select r.id, (select count(*)::int from rmapp_run_artifacts a where a.run_id = r.id) as artifacts from rmapp_runs r where r.id like 'skip-%'`,
    );
  expect(await left(), 'runs left').toEqual([{ id: 'skip-0', artifacts: 0 }]);
  const [orphans] = await retention.query<{ n: number }>(
    `select count(*)::int as n from rmapp_run_artifacts a where a.run_id like 'skip-%' and not exists (select 1 from rmapp_runs r where r.id = a.run_id)`,
  );
  expect(orphans?.n, 'artifacts of pruned runs').toBe(0);
  expect((await pruneRuns(claimer, policy)).runs, 'the held run, on the next call').toBe(1);
});

/** An artifact row written as a save that read its run before a prune committed writes it. */
async function saveArtifactUnchecked(db: Database, runId: string): Promise<boolean> {
  await db.query(`insert into rmapp_run_artifacts (run_id, name, value, bytes) values ($1, 'late', '1'::jsonb, 1)`, [runId]);
  return true;
}
