/**
 * A commit has three statements (src/persistence/commits.ts): the lean one for a run that keeps its
 * lease, the release one for a single run given up (it finished or only waits), and the general one for
 * batches. Whichever statement carries a write, the row it leaves must be the same. Each case below is
 * committed twice on twin runs — alone (the single-run statement) and in a batch of two (the general
 * statement) — and the two rows and results are compared, on Postgres and PGlite.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimRuns } from '../src/persistence/claims.ts';
import { commitRunWrites, type CommitResult, type RunWrite } from '../src/persistence/commits.ts';
import type { Database } from '../src/persistence/database.ts';
import { appendSignal } from '../src/persistence/inbox.ts';
import { migrate } from '../src/persistence/migrate.ts';
import { insertRun } from '../src/persistence/runs.ts';
import { runWrite } from './helpers/run-write.ts';
import { openTestStore } from './helpers/postgres.ts';

const OWNER = 'commit-forms:0000abcd';

type Case = { name: string; write: Partial<RunWrite>; signalAfterSeen?: boolean; wrongEpoch?: boolean };

const CASES: Case[] = [
  {
    name: 'a run that succeeds',
    write: { status: 'succeeded', release: true, output: { n: 1, s: 'é\u2028' }, history: [{ type: 'run.succeeded' }] },
  },
  {
    name: 'a run that fails, with a status message',
    write: { status: 'failed', release: true, error: { message: 'boom', category: 'permanent' }, statusMessage: 'failed: boom' },
  },
  { name: 'a cancelled run without history', write: { status: 'cancelled', release: true, history: [] } },
  {
    name: 'a run released to wait until a time',
    write: { status: 'waiting', release: true, wakeAt: new Date('2030-01-02T03:04:05.678Z') },
  },
  {
    name: 'a run released to wait while a signal it has not read arrived',
    write: { status: 'waiting', release: true },
    signalAfterSeen: true,
  },
  { name: 'a release whose fence fails', write: { status: 'succeeded', release: true }, wrongEpoch: true },
  { name: 'a run that keeps its lease', write: { status: 'running', release: false } },
];

/** The row's columns a commit sets, with the moving timestamps reduced to whether they are set. */
async function rowOf(db: Database, id: string): Promise<Record<string, unknown>> {
  const [row] = await db.query<Record<string, unknown>>(
    `select status, snapshot, state_value, output, error, timers, steps, version, status_message, history_rows,
       output is null as output_sql_null, error is null as error_sql_null,
       lease_owner, lease_expires_at is not null as leased, wake_at, wake_at is not null and wake_at <= now() as wakes_now,
       finished_at is not null as finished, (select count(*)::int from rmapp_run_history h where h.run_id = r.id) as history
     from rmapp_runs r where id = $1`,
    [id],
  );
  if (!row) throw new Error(`run ${id} is gone`);
  // A wake-up set to now() differs between the twins by the time between their commits.
  if (row.wakes_now === true) row.wake_at = 'now';
  return row;
}

describe.each(['postgres', 'pglite'] as const)('%s', (kind) => {
  let db: Database;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ db, close } = await openTestStore(kind));
    await migrate(db);
  });
  afterAll(() => close());

  it.each(CASES)('$name: the single-run statement leaves the row the batch statement leaves', async (c) => {
    const tag = c.name.replace(/\W+/g, '-');
    const ids = [`${tag}-alone`, `${tag}-batched`, `${tag}-other`];
    // A workflow of its own per case: a claim takes only this case's runs.
    for (const id of ids) await insertRun(db, { id, workflow: tag, workflowVersion: 'v', input: {} });
    const claimed = await claimRuns(db, { owner: OWNER, leaseMs: 60_000, limit: 3, definitions: [[tag, 'v']] });
    expect(claimed.map((r) => r.id).sort(), 'the runs claimed for this case').toEqual([...ids].sort());
    const fence = new Map(claimed.map((r) => [r.id, r]));
    if (c.signalAfterSeen) for (const id of ids) await appendSignal(db, id, { type: 'poke' }, null);
    const write = (id: string, extra: Partial<RunWrite> = {}): RunWrite => {
      const run = fence.get(id);
      if (!run) throw new Error(`run ${id} was not claimed`);
      return runWrite(
        { id, expectedVersion: run.version, owner: OWNER, epoch: run.leaseEpoch + (c.wrongEpoch ? 1 : 0) },
        {
          snapshot: { value: 'done', context: { note: 'x' }, status: 'active' },
          stateValue: 'done',
          steps: { s: { attempt: 1, done: 1 } },
          history: [{ type: 'step.succeeded', path: 's' }],
          ...c.write,
          ...extra,
        },
      );
    };
    const [alone] = await commitRunWrites(db, [write(ids[0] as string)]);
    // The other run keeps its lease: a batch of two always takes the general statement.
    const batched = await commitRunWrites(db, [
      write(ids[1] as string),
      write(ids[2] as string, { status: 'running', release: false, epoch: fence.get(ids[2] as string)?.leaseEpoch as number }),
    ]);
    const mine = batched.find((r) => r.index === 0);
    const shape = (r: CommitResult | undefined) => r && { version: r.version, historyRows: r.historyRows, wakeNow: r.wakeNow };
    expect(shape(alone), `${c.name}: the result of the single-run statement against the general one`).toEqual(shape(mine));
    if (c.wrongEpoch) expect(alone, 'a write whose fence fails has no result').toBeUndefined();
    if (c.signalAfterSeen) expect(alone?.wakeNow, 'a signal arrived that the session had not read: claim the run again').toBe(true);
    expect(await rowOf(db, ids[0] as string), `${c.name}: the row after the single-run statement against the general one`).toEqual(
      await rowOf(db, ids[1] as string),
    );
  });
});
