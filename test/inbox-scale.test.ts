/**
 * A run's inbox at scale (src/persistence/commits.ts, inbox.ts): a write that takes thousands of signals
 * at once (a run restored with them waiting, or one that fell behind its senders), and a read of many
 * kept signals on a run with a long history, must each stay one ordinary statement. Both grew with the
 * square of what they handled and passed the engine's statement timeout, which left the run retrying
 * the same statement for ever (bench/README.md, "twelfth session"). They run here under the engine's
 * own timeout (engine-options.ts `statementTimeoutMs`: at least 5 s), as a worker's statements do.
 * Also: a signal reported kept and taken in the same write is left taken.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimRuns } from '../src/persistence/claims.ts';
import { commitRunWrites, type RunWrite } from '../src/persistence/commits.ts';
import { withStatementTimeout, type Database } from '../src/persistence/database.ts';
import { appendSignal, pendingSignals } from '../src/persistence/inbox.ts';
import { loadMigrations, migrate } from '../src/persistence/migrate.ts';
import { insertRun } from '../src/persistence/runs.ts';
import { statementTimeoutMs } from '../src/state_machine/engine-options.ts';
import { runWrite } from './helpers/run-write.ts';
import { openTestStore } from './helpers/postgres.ts';

const OWNER = 'inbox-scale:0000abcd';

describe.each(['postgres', 'pglite'] as const)('a run inbox at scale (%s)', (kind) => {
  let db: Database;
  /** The store without the engine's statement deadline: migrations run on it, as migrate.ts runs them. */
  let unbounded: Database;
  let close: () => Promise<void>;
  let n = 0;
  beforeAll(async () => {
    const store = await openTestStore(kind, { empty: true });
    close = store.close;
    await migrate(store.db);
    unbounded = store.db;
    db = withStatementTimeout(store.db, statementTimeoutMs(30_000));
  });
  afterAll(async () => close?.());

  /** A run of its own, claimed by OWNER: its fence. */
  async function claimedRun(): Promise<Pick<RunWrite, 'id' | 'expectedVersion' | 'owner' | 'epoch'>> {
    const tag = `test.inbox-scale.${kind}.${n++}`;
    const { id } = await insertRun(db, { id: crypto.randomUUID(), workflow: tag, workflowVersion: 'v', input: {} });
    const [claimed] = await claimRuns(db, { owner: OWNER, leaseMs: 60_000, limit: 1, definitions: [[tag, 'v']] });
    expect(claimed?.id).toBe(id);
    return { id, expectedVersion: claimed!.version, owner: OWNER, epoch: claimed!.leaseEpoch };
  }

  /** `count` signals in the run's inbox, buffered a day when `kept`; their ids, oldest first. */
  async function signals(runId: string, count: number, kept: boolean): Promise<number[]> {
    const rows = await db.query<{ id: number }>(
      `insert into rmapp_run_inbox (run_id, event, keep_until)
       select $1, jsonb_build_object('type', 'S', 'n', g), case when $3 then now() + interval '1 day' end
       from generate_series(1, $2::int) g returning id::float8 as id`,
      [runId, count, kept],
    );
    return rows.map((r) => Number(r.id)).sort((a, b) => a - b);
  }

  it('one write takes 5,000 signals of a run with a 900 KB snapshot', async () => {
    const fence = await claimedRun();
    const ids = await signals(fence.id, 5_000, false);
    const write = runWrite(fence, {
      snapshot: { value: 'x', context: { blob: 'b'.repeat(900_000) } },
      consumedSignals: ids.map((id, i) => [id, i % 2 ? 'received' : 'ignored']),
      history: ids.map((id) => ({ type: 'signal.received', data: { id } })),
    });
    const results = await commitRunWrites(db, [write]);
    expect(results.map((r) => r.version)).toEqual([fence.expectedVersion + 1]);
    const [left] = await db.query<{ open: number; received: number }>(
      `select count(*) filter (where consumed_at is null)::int as open, count(*) filter (where outcome = 'received')::int as received
       from rmapp_run_inbox where run_id = $1`,
      [fence.id],
    );
    expect(left, 'signals left unconsumed, and taken as received').toEqual({ open: 0, received: 2_500 });
  });

  it('the inbox of a run with 2,000 history rows is read with its 300 kept signals, each reported as committed', async () => {
    const fence = await claimedRun();
    // 2,000 history rows, each reporting some other signal kept: the reads must not search them.
    await db.query(
      `insert into rmapp_run_history (run_id, worker, lease_epoch, log)
       select $1, $2, $3, json_build_array(json_build_array('signal.buffered', null, 'a', null, null, json_build_object('id', -g)))::text::json
       from generate_series(1, 2000) g`,
      [fence.id, fence.owner, fence.epoch],
    );
    const ids = await signals(fence.id, 300, true);
    const reported = ids.slice(0, 100);
    await commitRunWrites(db, [
      runWrite(fence, {
        reportedSignals: reported,
        history: reported.map((id) => ({ type: 'signal.buffered', data: { id } })),
      }),
    ]);
    const { events } = await pendingSignals(db, fence.id);
    expect(events.map((e) => e.id)).toEqual(ids);
    expect(
      events.filter((e) => e.reported).map((e) => e.id),
      'reported kept by the write',
    ).toEqual(reported);
  });

  it('a signal reported kept and taken in the same write is left taken, not kept', async () => {
    const fence = await claimedRun();
    const { id } = await appendSignal(db, fence.id, { type: 'S' }, null, 86_400_000);
    const other = await claimedRun();
    // A batch of two: the general statement, which carries both lists.
    await commitRunWrites(db, [
      runWrite(fence, {
        reportedSignals: [id!],
        consumedSignals: [[id!, 'received']],
        history: [
          { type: 'signal.buffered', data: { id } },
          { type: 'signal.received', data: { id } },
        ],
      }),
      runWrite(other),
    ]);
    const [row] = await db.query<{ consumed: boolean; outcome: string | null; reported: boolean }>(
      'select consumed_at is not null as consumed, outcome, reported from rmapp_run_inbox where id = $1',
      [id],
    );
    expect(row).toEqual({ consumed: true, outcome: 'received', reported: true });
    expect((await pendingSignals(db, fence.id)).events).toEqual([]);
  });

  it('migration 0019 marks the kept signals reported before it: by their entry, or by a compaction that folded reports', async () => {
    const fence = await claimedRun();
    const [a, b, c] = await signals(fence.id, 3, true);
    await db.query(`update rmapp_run_inbox set created_at = now() - interval '1 minute' where id = any($1::bigint[])`, [[a, b]]);
    await db.query(`update rmapp_run_inbox set created_at = now() + interval '1 minute' where id = $1`, [c]);
    // a's report is in the history; b's was folded into a summary that ends now; c was sent after it.
    await db.query(
      `insert into rmapp_run_history (run_id, worker, lease_epoch, events, at) values
         ($1, null, null, jsonb_build_array(jsonb_build_object('type', 'history.compacted', 'data',
           jsonb_build_object('events', 9, 'rows', 3, 'byType', jsonb_build_object('signal.buffered', 1, 'state.entered', 8)))), now()),
         ($1, $2, $3, jsonb_build_array(jsonb_build_object('type', 'signal.buffered', 'data', jsonb_build_object('id', $4::bigint))), now())`,
      [fence.id, fence.owner, fence.epoch, a],
    );
    await db.query('update rmapp_run_inbox set reported = false where run_id = $1', [fence.id]);
    // Unbounded, as migrate.ts runs a migration: over this file's large inbox a loaded machine took
    // longer than the engine's statement deadline (scripts have one too since it counts a pool wait).
    await unbounded.script(loadMigrations().find((m) => m.tag === '0019_inbox_reported')!.statements);
    const { events } = await pendingSignals(db, fence.id);
    expect(Object.fromEntries(events.map((e) => [e.id === a ? 'a' : e.id === b ? 'b' : e.id === c ? 'c' : e.id, e.reported]))).toEqual({
      a: true,
      b: true,
      c: false,
    });
  });
});
