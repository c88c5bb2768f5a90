/**
 * Adversarial: the batch commit through `rmapp_commit_runs` (migration 0015) and the single-run release
 * statement (src/persistence/commits.ts). Fencing inside a batch, duplicate ids, consumed signals of a
 * fenced-out write, data Postgres refuses inside a batch (the committer must isolate the bad write),
 * a signal appended while the release waits on its row lock, and the two release forms leaving the
 * same row.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../src/index.ts';
import { migrate } from '../src/persistence/migrate.ts';
import { commitRunWrites, type CommitResult, type RunWrite } from '../src/persistence/commits.ts';
import { appendSignal } from '../src/persistence/inbox.ts';
import { Committer, type CommitParticipant, type PreparedWrite } from '../src/state_machine/committer.ts';
import { runWrite } from './helpers/run-write.ts';
import { createTestDatabase } from './helpers/postgres.ts';

let n = 0;
async function leasedRun(db: Database, prefix = 'r'): Promise<string> {
  n += 1;
  const id = `${prefix}-${String(n).padStart(4, '0')}`;
  await db.query(
    `insert into rmapp_runs (id, workflow, workflow_version, status, lease_owner, lease_epoch, lease_expires_at, snapshot, state_value, wake_at)
     values ($1, 'w', 'v', 'running', 'owner', 1, now() + interval '1 hour', '{"value":"a"}', '"a"', now() + interval '1 hour')`,
    [id],
  );
  return id;
}

function write(id: string, over: Partial<RunWrite> = {}): RunWrite {
  const base = { snapshot: { value: 'b', context: { k: 1 } }, stateValue: 'b', history: [{ type: 'adv3', data: { id } }] };
  return runWrite({ id, expectedVersion: 0, owner: 'owner', epoch: 1 }, { ...base, ...over });
}

const rowOf = async (db: Database, id: string) =>
  (
    await db.query<Record<string, unknown>>(
      `select status, version, history_rows, lease_owner, lease_expires_at is null as lease_cleared, snapshot, state_value, output, error,
         output is null as output_sql_null, error is null as error_sql_null, wake_at, finished_at is not null as finished, status_message, timers, steps,
         (select count(*)::int from rmapp_run_history h where h.run_id = r.id) as history
       from rmapp_runs r where id = $1`,
      [id],
    )
  )[0]!;

for (const kind of ['postgres', 'pglite'] as const) {
  describe(`rmapp_commit_runs and the release statement (${kind})`, () => {
    let db: Database;
    let url = '';
    let drop: (() => Promise<void>) | undefined;
    beforeAll(async () => {
      if (kind === 'pglite') db = await openDatabase({ url: '', dataDir: 'memory://' });
      else {
        const t = await createTestDatabase('advtest');
        drop = () => t.drop();
        url = t.url;
        db = await openDatabase({ url });
      }
      await migrate(db);
    }, 60_000);
    afterAll(async () => {
      await db?.close();
      await drop?.();
    });

    it('a batch with a wrong epoch, a wrong owner and a stale version applies only the good writes; the bad rows, history and inbox are untouched', async () => {
      const ids = [];
      for (let i = 0; i < 6; i++) ids.push(await leasedRun(db));
      const sig = await appendSignal(db, ids[1]!, { type: 'x' }, null);
      const sig3 = await appendSignal(db, ids[3]!, { type: 'x' }, null);
      const before = await Promise.all(ids.map((id) => rowOf(db, id)));
      const writes = [
        write(ids[0]!),
        write(ids[1]!, { epoch: 2, consumedSignals: [[sig.id!, 'received']], seenSignalSeq: 1 }),
        write(ids[2]!),
        write(ids[3]!, { owner: 'intruder', consumedSignals: [[sig3.id!, 'received']], seenSignalSeq: 1 }),
        write(ids[4]!, { expectedVersion: 7 }),
        write(ids[5]!, { release: true, status: 'succeeded', output: { ok: true } }),
      ];
      // Reverse id order in the batch: the function sorts; indexes must still map back to writes.
      const results = await commitRunWrites(db, [...writes].reverse());
      const applied = results.map((r) => [r.index, r.id]).sort();
      expect(applied, 'applied writes (index in the reversed batch, id)').toEqual(
        [
          [5, ids[0]],
          [3, ids[2]],
          [0, ids[5]],
        ].sort(),
      );
      for (const i of [1, 3, 4]) expect(await rowOf(db, ids[i]!), `fenced-out write of ${ids[i]}`).toEqual(before[i]);
      const inbox = await db.query<{ consumed: boolean }>(`select consumed_at is not null as consumed from rmapp_run_inbox order by id`);
      expect(
        inbox.map((r) => r.consumed),
        'signals of fenced-out writes stay unconsumed',
      ).toEqual([false, false]);
      expect(await rowOf(db, ids[5]!)).toMatchObject({
        status: 'succeeded',
        version: 1,
        history: 1,
        lease_owner: null,
        finished: true,
        wake_at: null,
      });
    });

    it('two writes of one run in a batch: exactly one applies (the first), one history row, one version step', async () => {
      const id = await leasedRun(db);
      const other = await leasedRun(db);
      const results = await commitRunWrites(db, [
        write(id, { history: [{ type: 'first' }] }),
        write(other),
        write(id, { history: [{ type: 'second' }], stateValue: 'second' }),
      ]);
      expect(results.map((r) => r.index).sort()).toEqual([0, 1]);
      const row = await rowOf(db, id);
      expect(row).toMatchObject({ version: 1, history: 1, history_rows: 1, state_value: 'b' });
    });

    it('a batch whose one write Postgres refuses (NUL, lone surrogate, bad status) fails as a whole with a data error; the committer then isolates it', async () => {
      const good = [await leasedRun(db), await leasedRun(db)];
      const bad = [await leasedRun(db), await leasedRun(db), await leasedRun(db)];
      const badWrites = [
        write(bad[0]!, { release: true, status: 'waiting', statusMessage: 'nul\u0000here', wakeAt: new Date(Date.now() + 60_000) }),
        write(bad[1]!, { snapshot: { value: 'b', context: { s: '\ud800' } } }),
        write(bad[2]!, { status: 'bogus' as never, release: true }),
      ];
      for (const w of badWrites) {
        const err = await commitRunWrites(db, [write(good[0]!, { expectedVersion: 99 }), w]).catch((e: unknown) => e);
        expect(String((err as { code?: string }).code), `batch with ${w.id}`).toMatch(/^2[23]/);
      }
      const outcome = new Map<string, string>();
      const participant = (w: RunWrite): CommitParticipant => ({
        runId: w.id,
        ended: false,
        buildWrite: () => ({ write: w, seq: 1 }),
        onCommitted: (_p: PreparedWrite, r: CommitResult) => outcome.set(w.id, `committed v${r.version}`),
        onFailed: () => outcome.set(w.id, 'failed'),
        onLost: () => outcome.set(w.id, 'lost'),
        onRejected: () => outcome.set(w.id, 'rejected'),
      });
      const committer = new Committer(db, { batches: 1, anotherFrom: 0 });
      for (const w of [
        write(good[0]!),
        ...badWrites,
        write(good[1]!, { release: true, status: 'waiting', wakeAt: new Date(Date.now() + 60_000) }),
      ])
        committer.schedule(participant(w));
      await committer.idle();
      expect(Object.fromEntries(outcome)).toEqual({
        [good[0]!]: 'committed v1',
        [good[1]!]: 'committed v1',
        [bad[0]!]: 'rejected',
        [bad[1]!]: 'rejected',
        [bad[2]!]: 'rejected',
      });
      for (const id of bad)
        expect(await rowOf(db, id), `refused write of ${id}`).toMatchObject({ version: 0, history: 0, status: 'running' });
    });

    it('a write JSON cannot write (a toJSON that throws a plain Error) is rejected alone; the batch is not sent again forever', async () => {
      const good = [await leasedRun(db), await leasedRun(db)];
      const bad = [await leasedRun(db), await leasedRun(db)];
      const closed = {
        toJSON() {
          throw new Error('handle is closed');
        },
      };
      const outcome = new Map<string, string>();
      const participant = (w: RunWrite): CommitParticipant => ({
        runId: w.id,
        ended: false,
        buildWrite: () => ({ write: w, seq: 1 }),
        onCommitted: (_p: PreparedWrite, r: CommitResult) => outcome.set(w.id, `committed v${r.version}`),
        onFailed: () => outcome.set(w.id, 'failed'),
        onLost: () => outcome.set(w.id, 'lost'),
        onRejected: () => outcome.set(w.id, 'rejected'),
      });
      const committer = new Committer(db, { batches: 1, anotherFrom: 0 });
      for (const w of [
        write(good[0]!),
        // In the history (lean form alone, batch form together) and in a final write's output (release form alone).
        write(bad[0]!, { history: [{ type: 'progress', data: { closed } }] }),
        write(bad[1]!, { release: true, status: 'succeeded', output: { closed } }),
        write(good[1]!, { release: true, status: 'succeeded', output: { fine: true } }),
      ])
        committer.schedule(participant(w));
      await committer.idle();
      expect(Object.fromEntries(outcome)).toEqual({
        [good[0]!]: 'committed v1',
        [good[1]!]: 'committed v1',
        [bad[0]!]: 'rejected',
        [bad[1]!]: 'rejected',
      });
    });

    it('the single-run release and the batch leave the same row (final and waiting, SQL nulls, wake-on-signal)', async () => {
      const cases: Partial<RunWrite>[] = [
        { release: true, status: 'succeeded', output: { done: 1 } },
        { release: true, status: 'succeeded', output: undefined },
        { release: true, status: 'succeeded', output: 0 },
        { release: true, status: 'succeeded', output: '' },
        { release: true, status: 'failed', error: { code: 'E', message: 'm' }, statusMessage: 'why' },
        { release: true, status: 'cancelled' },
        { release: true, status: 'waiting', wakeAt: new Date('2030-01-01T00:00:00Z') },
        { release: true, status: 'waiting', wakeAt: null },
        { release: true, status: 'waiting', wakeAt: new Date('2030-01-01T00:00:00Z'), signal: true } as Partial<RunWrite>,
        { release: true, status: 'waiting', wakeAt: null, history: [] },
      ];
      for (const c of cases) {
        const { signal, ...over } = c as Partial<RunWrite> & { signal?: boolean };
        const single = await leasedRun(db, 's');
        const batched = await leasedRun(db, 'b');
        const filler = await leasedRun(db, 'f');
        if (signal) {
          await appendSignal(db, single, { type: 'late' }, null);
          await appendSignal(db, batched, { type: 'late' }, null);
        }
        const [r1] = await commitRunWrites(db, [write(single, over)]);
        const r2 = (await commitRunWrites(db, [write(batched, over), write(filler)])).find((r) => r.id === batched);
        expect(r1?.wakeNow, JSON.stringify(c)).toBe(r2?.wakeNow);
        expect(r1?.wakeNow).toBe(Boolean(signal));
        const a = await rowOf(db, single);
        const b = await rowOf(db, batched);
        const now = Date.now();
        const near = (d: unknown) => d instanceof Date && Math.abs(d.getTime() - now) < 60_000;
        if (signal) expect(near(a.wake_at) && near(b.wake_at), `woken at once: ${JSON.stringify(c)}`).toBe(true);
        else expect(a.wake_at, JSON.stringify(c)).toEqual(b.wake_at);
        expect({ ...a, wake_at: null }, `release statement vs batch for ${JSON.stringify(c)}`).toEqual({ ...b, wake_at: null });
      }
    });

    if (kind === 'postgres')
      it('a signal appended while the release waits on the row lock wakes the run (single and batch forms)', async () => {
        const sql = postgres(url, { max: 1, onnotice: () => {} });
        try {
          for (const batch of [false, true]) {
            const id = await leasedRun(db, 'lock');
            const filler = await leasedRun(db, 'lock-f');
            let release: Promise<CommitResult[]> | undefined;
            let sawWait = false;
            await sql.begin(async (tx) => {
              await tx`insert into rmapp_run_inbox (run_id, event) values (${id}, '{"type":"late"}'::jsonb)`;
              await tx`update rmapp_runs set signal_seq = signal_seq + 1, wake_at = case when status = 'waiting' then now() else wake_at end where id = ${id}`;
              const w = write(id, { release: true, status: 'waiting', wakeAt: new Date('2030-01-01T00:00:00Z') });
              release = commitRunWrites(db, batch ? [write(filler), w] : [w]);
              // Let the release reach the row lock before the signal commits.
              for (let i = 0; i < 100; i++) {
                const [waiting] = await db.query<{ n: number }>(
                  `select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()`,
                );
                if (waiting!.n > 0) {
                  sawWait = true;
                  break;
                }
                await new Promise((r) => setTimeout(r, 20));
              }
            });
            expect(sawWait, 'the release was seen waiting on the row lock').toBe(true);
            const results = await release!;
            const r = results.find((x) => x.id === id);
            expect(r?.wakeNow, `wakeNow (${batch ? 'batch' : 'single'})`).toBe(true);
            const [row] = await db.query<{ soon: boolean; status: string }>(
              `select wake_at < now() + interval '1 minute' as soon, status from rmapp_runs where id = $1`,
              [id],
            );
            expect(row, `the run woken at once (${batch ? 'batch' : 'single'})`).toEqual({ soon: true, status: 'waiting' });
          }
        } finally {
          await sql.end();
        }
      });
  });
}
