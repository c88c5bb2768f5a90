/**
 * The statements that lock several runs at once — a worker's lease renewal and its batched commit, on
 * two connections — take their row locks in one order (by run id), so they can wait on each other but
 * never deadlock (issue 19 saw `deadlock detected` under load). Each round renews the runs in one
 * order while a batch commit lists them in the opposite order.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { claimRuns, renewLeases } from '../src/persistence/claims.ts';
import { commitRunWrites, type RunWrite } from '../src/persistence/commits.ts';
import { openDatabase, type Database } from '../src/persistence/database.ts';
import { migrate } from '../src/persistence/migrate.ts';
import { insertRun } from '../src/persistence/runs.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';

let testDb: TestDatabase;
let renewer: Database;
let committer: Database;

beforeAll(async () => {
  testDb = await createTestDatabase();
  renewer = await openDatabase({ url: testDb.url });
  committer = await openDatabase({ url: testDb.url });
  await migrate(renewer);
});
afterAll(async () => {
  await renewer.close();
  await committer.close();
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
    return {
      id,
      expectedVersion: v.version,
      owner,
      epoch: v.epoch,
      status: 'running',
      snapshot: { value: 'x' },
      stateValue: 'x',
      output: null,
      error: null,
      timers: [],
      steps: {},
      wakeAt: null,
      release: false,
      statusMessage: null,
      seenSignalSeq: 0,
      consumedSignals: [],
      history: [{ type: 'test' }],
    };
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
