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

it('a write sent again after a lost reply is never in flight twice, whatever the session marks meanwhile', async () => {
  const pending: Pending[] = [];
  let inFlight = 0;
  let most = 0;
  const db = {
    kind: 'postgres',
    description: 'stand-in',
    query: (_text: string, params?: unknown[]) =>
      new Promise<unknown[]>((resolve, reject) => {
        inFlight += 1;
        most = Math.max(most, inFlight);
        const done =
          <T>(f: (x: T) => void) =>
          (x: T) => {
            inFlight -= 1;
            f(x);
          };
        pending.push({ version: Number(params?.[5]), resolve: done(resolve), reject: done(reject) });
      }),
    script: async () => [],
    listen: async () => async () => {},
    close: async () => {},
  } as unknown as Database;

  let version = 1;
  const committed: number[] = [];
  const built: number[] = [];
  const run: CommitParticipant = {
    runId: 'r1',
    ended: false,
    buildWrite: (): PreparedWrite => {
      built.push(version);
      return { write: runWrite({ id: 'r1', expectedVersion: version, owner: 'w1', epoch: 1 }), seq: version };
    },
    onCommitted: (p) => {
      committed.push(p.write.expectedVersion);
      version = p.write.expectedVersion + 1;
    },
    onFailed: () => committed.push(-1),
    onLost: () => committed.push(-2),
    onRejected: () => committed.push(-3),
  };
  const committer = new Committer(db, COMMITS_IN_FLIGHT, silentLogger, 1);
  expect(COMMITS_IN_FLIGHT, 'the case needs room for a second batch').toBeGreaterThan(1);

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
  expect(most, 'statements of the run in flight at once').toBe(1);

  // Answered: the run's next write goes, built from the committed version.
  pending[1]!.resolve([{ id: 'r1', version: 2, history_rows: 1 }]);
  await settle();
  expect(pending).toHaveLength(3);
  expect(pending[2]!.version).toBe(2);
  pending[2]!.resolve([{ id: 'r1', version: 3, history_rows: 2 }]);
  await committer.idle();
  expect(committed, 'writes taken as committed, by the version they were fenced with').toEqual([1, 2]);
  expect(built).toEqual([1, 2]);
  expect(most).toBe(1);
});
