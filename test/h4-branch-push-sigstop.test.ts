/**
 * The fence of the `branch-pushes` record (actors/branch-push.ts) against a real stopped process: worker
 * A, a real `rmapp worker`, reaches the push and is stopped (SIGSTOP) past its lease; worker B, another
 * process, takes the run over and reaches the push; A is woken (SIGCONT) and goes on before B pushes.
 * Every push the bare repository accepts is written by its `post-receive` hook to a ledger outside the
 * engine: A must neither push nor change the record; B does both.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { openDatabase } from '../src/index.ts';
import { createBareRemote } from './helpers/git-remote.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { ROOT, killAll, runRmapp, spawnRmapp, until } from './helpers/processes.ts';

const WORKFLOWS = join(ROOT, 'test/fixtures/h4-push-workflow.ts');
let testDb: TestDatabase | undefined;
let dir: string | undefined;
const stopped: number[] = [];
afterAll(async () => {
  for (const pid of stopped) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // gone already
    }
  }
  killAll();
  await testDb?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The pids whose step reached the push, in the order their markers appear (`reached-<pid>`). */
const reached = (state: string) =>
  readdirSync(state)
    .filter((f) => f.startsWith('reached-'))
    .map((f) => Number(f.slice('reached-'.length)));

it('a worker stopped past its lease and woken before the new owner pushes neither pushes nor changes branch-pushes', async () => {
  testDb = await createTestDatabase();
  dir = mkdtempSync(join(tmpdir(), 'h4-sigstop-'));
  const state = join(dir, 'state');
  mkdirSync(state);
  const remote = await createBareRemote(dir, 'widgets', { 'README.md': 'widgets\n' });
  const ledger = join(dir, 'pushes.log');
  const hook = join(remote, 'hooks', 'post-receive');
  writeFileSync(hook, `#!/bin/sh\nwhile read old new ref; do echo "$ref $new" >> '${ledger}'; done\n`);
  chmodSync(hook, 0o755);
  const pushes = () => (existsSync(ledger) ? readFileSync(ledger, 'utf8').split('\n').filter(Boolean) : []);

  const env = { DATABASE_URL: testDb.url, RMAPP_WORKFLOWS: WORKFLOWS, H4_REMOTE: remote, H4_STATE_DIR: state };
  expect((await runRmapp(['migrate'], env)).code).toBe(0);
  const started = await runRmapp(['start', 'h4.sigstop-push', '{}'], env);
  expect(started.code, started.stderr).toBe(0);
  const db = await openDatabase({ url: testDb.url });
  try {
    const [{ id } = { id: '' }] = await db.query<{ id: string }>(`select id from rmapp_runs`);
    const record = async () =>
      (await db.query<{ value: unknown }>(`select value from rmapp_run_artifacts where run_id = $1 and name = 'branch-pushes'`, [id]))[0]
        ?.value;

    const a = spawnRmapp(['worker', '--worker-id', 'h4-a', '--lease-ms', '3000'], env);
    await until(() => reached(state).length === 1, 60_000, `worker A to reach the push (${a.output().slice(-2000)})`);
    const [pidA] = reached(state) as [number];
    process.kill(pidA, 'SIGSTOP');
    stopped.push(pidA);
    await until(
      async () => (await db.query(`select 1 from rmapp_runs where id = $1 and lease_expires_at < now()`, [id])).length > 0,
      30_000,
      "A's lease to expire",
    );

    const b = spawnRmapp(['worker', '--worker-id', 'h4-b', '--lease-ms', '3000'], env);
    await until(() => reached(state).length === 2, 60_000, `worker B to reach the push (${b.output().slice(-2000)})`);
    const pidB = reached(state).find((p) => p !== pidA)!;
    const epochs = await db.query<{ lease_owner: string; lease_epoch: number }>(
      `select lease_owner, lease_epoch from rmapp_runs where id = $1`,
      [id],
    );
    expect(
      epochs.map((e) => [e.lease_owner.split(':')[0], e.lease_epoch]),
      'who holds the run when A wakes',
    ).toEqual([['h4-b', 2]]);

    // A wakes, and goes on to its push before B pushes.
    process.kill(pidA, 'SIGCONT');
    writeFileSync(join(state, `go-${pidA}`), '');
    await until(() => existsSync(join(state, `outcome-${pidA}`)), 60_000, "A's push attempt to end");
    const outcomeA = readFileSync(join(state, `outcome-${pidA}`), 'utf8');
    expect(pushes(), `pushes the remote received after A woke (A: ${outcomeA})`).toEqual([]);
    expect(await record(), 'branch-pushes after A woke').toBeUndefined();
    expect(outcomeA, "A's push attempt").toMatch(/^error RUN_LEFT /);

    writeFileSync(join(state, `go-${pidB}`), '');
    await until(
      async () => (await db.query(`select 1 from rmapp_runs where id = $1 and status = 'succeeded'`, [id])).length > 0,
      60_000,
      `the run to succeed under B (${b.output().slice(-2000)})`,
    );
    const shaB = readFileSync(join(state, `reached-${pidB}`), 'utf8');
    expect(pushes(), 'pushes the remote received').toEqual([`refs/heads/rmapp/issue-9 ${shaB}`]);
    expect(await record(), 'branch-pushes').toEqual([shaB]);
  } finally {
    await db.close();
  }
}, 240_000);
