/**
 * A run never has two writes in flight, also with two commit batches in flight per worker
 * (src/state_machine/committer.ts): a write sent again after its reply was lost goes out once, and a
 * session that marks itself dirty meanwhile waits for that write's answer. An adversarial pass found
 * the resent write sent twice at once — both fence checks failed, the session took the second as its
 * own, and the run was lost with its steps run again. A database stand-in answers each statement when
 * the test says so.
 */
import { expect, it } from 'vitest';
import { Committer, COMMITS_IN_FLIGHT, type CommitParticipant, type PreparedWrite } from '../src/state_machine/committer.ts';
import type { Database } from '../src/persistence/database.ts';
import { silentLogger } from '../src/persistence/logger.ts';
import { runWrite } from './helpers/run-write.ts';

interface Pending {
  version: number;
  resolve: (rows: unknown[]) => void;
  reject: (err: unknown) => void;
}

const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 2));
};

/** A database stand-in: each statement waits in `pending` until the test answers it. */
function standIn() {
  const pending: Pending[] = [];
  const state = { inFlight: 0, most: 0 };
  const db = {
    kind: 'postgres',
    description: 'stand-in',
    query: (_text: string, params?: unknown[]) =>
      new Promise<unknown[]>((resolve, reject) => {
        state.inFlight += 1;
        state.most = Math.max(state.most, state.inFlight);
        const done =
          <T>(f: (x: T) => void) =>
          (x: T) => {
            state.inFlight -= 1;
            f(x);
          };
        pending.push({ version: Number(params?.[5]), resolve: done(resolve), reject: done(reject) });
      }),
    script: async () => [],
    listen: async () => async () => {},
    close: async () => {},
  } as unknown as Database;
  return { db, pending, state };
}

/** One run's session as the committer sees it: writes fenced by the version last committed; outcomes recorded. */
function session() {
  const s = { version: 1, committed: [] as number[], built: [] as number[], outcomes: [] as string[] };
  const participant: CommitParticipant = {
    runId: 'r1',
    ended: false,
    buildWrite: (): PreparedWrite => {
      s.built.push(s.version);
      return { write: runWrite({ id: 'r1', expectedVersion: s.version, owner: 'w1', epoch: 1 }), seq: s.version };
    },
    onCommitted: (p) => {
      s.committed.push(p.write.expectedVersion);
      s.version = p.write.expectedVersion + 1;
    },
    onFailed: () => s.outcomes.push('failed'),
    onLost: () => s.outcomes.push('lost'),
    onRejected: () => s.outcomes.push('rejected'),
  };
  return { s, participant };
}

it('a write sent again after a lost reply is never in flight twice, whatever the session marks meanwhile', async () => {
  const { db, pending, state } = standIn();
  const { s, participant: run } = session();
  // A second batch whatever the size of the first (the worker's policy sends one only behind 64 writes).
  const committer = new Committer(db, { batches: COMMITS_IN_FLIGHT.batches, anotherFrom: 0 }, silentLogger, 1);
  expect(COMMITS_IN_FLIGHT.batches, 'the case needs room for a second batch').toBeGreaterThan(1);

  committer.schedule(run);
  await settle();
  expect(pending).toHaveLength(1);
  // The statement was applied, its reply lost: the write is in doubt and goes out again as it was.
  pending[0]!.reject(Object.assign(new Error('connection reset'), { code: 'ECONNRESET' }));
  await settle();
  expect(pending, 'the write sent again').toHaveLength(2);
  expect(pending[1]!.version).toBe(1);
  // The run changes again (a step's progress, a signal) while that write is out.
  committer.schedule(run);
  committer.schedule(run);
  await settle();
  expect(pending.length, 'statements sent while the resent write is unanswered').toBe(2);
  expect(state.most, 'statements of the run in flight at once').toBe(1);

  // Answered: the run's next write goes, built from the committed version.
  pending[1]!.resolve([{ id: 'r1', version: 2, history_rows: 1 }]);
  await settle();
  expect(pending).toHaveLength(3);
  expect(pending[2]!.version).toBe(2);
  pending[2]!.resolve([{ id: 'r1', version: 3, history_rows: 2 }]);
  await committer.idle();
  expect(s.committed, 'writes taken as committed, by the version they were fenced with').toEqual([1, 2]);
  expect(s.built).toEqual([1, 2]);
  expect(s.outcomes).toEqual([]);
  expect(state.most).toBe(1);
});

it('a commit that fails because a connection could not be set up is sent again, not taken as a refused write', async () => {
  // An SSL file the URL names, unreadable for a moment (a certificate being rotated): no SQLSTATE, the
  // driver's setup problem. Taken as the write's fault, the session was dropped with its run still
  // leased, and its steps ran again once the lease expired.
  const { db, pending } = standIn();
  const { s, participant } = session();
  const committer = new Committer(db, COMMITS_IN_FLIGHT, silentLogger, 1);
  committer.schedule(participant);
  await settle();
  pending[0]!.reject(
    Object.assign(new Error('sslrootcert names a file rmapp cannot read'), { code: 'DATABASE_CONFIG', category: 'validation' }),
  );
  await settle();
  expect(s.outcomes, 'what the session was told').toEqual([]);
  expect(pending, 'the write sent again').toHaveLength(2);
  pending[1]!.resolve([{ id: 'r1', version: 2, history_rows: 1 }]);
  await committer.idle();
  expect(s.committed).toEqual([1]);
  expect(s.built, 'the write sent again is the same write').toEqual([1]);
});

it('a second batch goes out only behind as many writes in flight as the policy asks, and never more batches than it allows', async () => {
  const { db, pending, state } = standIn();
  const runs = Array.from({ length: 7 }, (_, i) => {
    const id = `r${i + 1}`;
    const participant: CommitParticipant = {
      runId: id,
      ended: false,
      buildWrite: () => ({ write: runWrite({ id, expectedVersion: 1, owner: 'w1', epoch: 1 }), seq: 1 }),
      onCommitted: () => {},
      onFailed: () => {},
      onLost: () => {},
      onRejected: () => {},
    };
    return participant;
  });
  const committer = new Committer(db, { batches: 2, anotherFrom: 3 }, silentLogger, 1);
  // Two writes in flight: the next run's write waits for them, it does not go in a second batch.
  committer.schedule(runs[0]!);
  committer.schedule(runs[1]!);
  await settle();
  expect(pending, 'statements after the first batch of 2').toHaveLength(1);
  committer.schedule(runs[2]!);
  await settle();
  expect(pending.length, 'statements sent while 2 writes (fewer than 3) were in flight').toBe(1);
  pending[0]!.resolve([]);
  await settle();
  expect(pending, 'the waiting write, sent once the batch was answered').toHaveLength(2);
  pending[1]!.resolve([]);
  await settle();
  // Three writes in flight: a second batch may go, but not a third.
  for (const r of runs.slice(0, 3)) committer.schedule(r);
  await settle();
  expect(pending).toHaveLength(3);
  committer.schedule(runs[3]!);
  await settle();
  expect(pending.length, 'a second batch behind 3 writes in flight').toBe(4);
  committer.schedule(runs[4]!);
  await settle();
  expect(pending.length, 'a third batch while two are in flight').toBe(4);
  expect(state.most).toBe(2);
  for (const p of pending.slice(2)) p.resolve([]);
  await settle();
  pending.at(-1)!.resolve([]);
  await committer.idle();
  expect(pending).toHaveLength(5);
});
