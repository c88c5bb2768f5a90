/**
 * The `branch-pushes` record and the push it guards (actors/branch-push.ts) are fenced by the run's
 * lease (DESIGN.md, "Ownership"). Two workers in this process share one real Postgres and push to one
 * real bare git repository, whose `post-receive` hook writes every push to a ledger outside the engine.
 * Worker A reaches the push and is held there, as a stopped process would be (none of its statements
 * reaches the database, so it cannot renew its lease). Its lease expires and worker B takes the run over
 * (a higher lease epoch) and reaches the push too. Then A goes on, unaware of its loss, as a process woken
 * from SIGSTOP, before B pushes — the race where A's push would land and B's be refused as not a
 * fast-forward: A's record write is refused in SQL, so it neither changes the record nor pushes. Then B
 * records its commit and pushes.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineWorkflow, openDatabase, step, type Database } from '../src/index.ts';
import { BRANCH_PUSHES, pushRecorded } from '../src/actors/branch-push.ts';
import { runCommand } from '../src/rmapp/process.ts';
import { Workspaces } from '../src/rmapp/workspace.ts';
import { createBareRemote } from './helpers/git-remote.ts';
import { hookedStore } from './helpers/hooked-store.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { until } from './helpers/processes.ts';

let testDb: TestDatabase;
let db: Database;
let dir: string;
beforeAll(async () => {
  testDb = await createTestDatabase();
  db = await openDatabase({ url: testDb.url });
  await createEngine({ database: db, workflows: [] }).db();
  dir = mkdtempSync(join(tmpdir(), 'h4-push-fence-'));
});
afterAll(async () => {
  await db.close();
  await testDb.drop();
  rmSync(dir, { recursive: true, force: true });
});

const BRANCH = 'rmapp/issue-7';

/** Every ref update the bare repository accepted, as `<ref> <new sha> <commit subject>`: written by git itself. */
function pushLedger(ledger: string): string[] {
  try {
    return readFileSync(ledger, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

async function git(cwd: string, ...args: string[]): Promise<string> {
  const r = await runCommand(['git', '-c', 'user.name=t', '-c', 'user.email=t@x', ...args], { cwd });
  if (r.exitCode !== 0) throw new Error(`git ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.trim();
}

it('a worker that lost the run while held before its push, woken before the new owner pushes, neither rewrites branch-pushes nor pushes', async () => {
  const remote = await createBareRemote(dir, 'widgets', { 'README.md': 'widgets\n' });
  const ledger = join(dir, 'pushes.log');
  const hook = join(remote, 'hooks', 'post-receive');
  writeFileSync(hook, `#!/bin/sh\nwhile read old new ref; do echo "$ref $new $(git log -1 --format=%s $new)" >> '${ledger}'; done\n`);
  chmodSync(hook, 0o755);

  const who = new AsyncLocalStorage<'A' | 'B'>();
  // Each worker on its own machine: its own workspace root, so B clones afresh.
  const workspaces = {
    A: new Workspaces({ root: join(dir, 'ws-a'), author: { name: 'rmapp', email: 'rmapp@x' } }),
    B: new Workspaces({ root: join(dir, 'ws-b'), author: { name: 'rmapp', email: 'rmapp@x' } }),
  };
  let heldA: () => void = () => {};
  const reachedA = new Promise<void>((resolve) => (heldA = resolve));
  let goA: () => void = () => {};
  const wokenA = new Promise<void>((resolve) => (goA = resolve));
  let heldB: () => void = () => {};
  const reachedB = new Promise<void>((resolve) => (heldB = resolve));
  let goB: () => void = () => {};
  const wokenB = new Promise<void>((resolve) => (goB = resolve));
  const outcomes: { A?: unknown; B?: unknown } = {};
  const heads: { A?: string; B?: string } = {};

  const pushStep = step(async (ctx) => {
    const me = who.getStore() ?? 'B';
    const ws = await workspaces[me].prepare({ runId: ctx.runId, remoteUrl: remote, branch: BRANCH, base: 'main', signal: ctx.signal });
    writeFileSync(join(ws.dir, `by-${me}.txt`), `${me}\n`);
    await git(ws.dir, 'add', '-A');
    await git(ws.dir, 'commit', '-q', '-m', `by ${me}`);
    heads[me] = await git(ws.dir, 'rev-parse', 'HEAD');
    let pushCtx = ctx;
    if (me === 'A') {
      heldA();
      await wokenA;
      // Woken as from SIGSTOP: nothing here has noticed the lease is gone (its abort not yet seen).
      pushCtx = { ...ctx, signal: new AbortController().signal };
    } else {
      heldB();
      await wokenB;
    }
    try {
      await pushRecorded(pushCtx, workspaces[me], ws);
      outcomes[me] = 'pushed';
    } catch (err) {
      outcomes[me] = err;
      throw err;
    }
    return heads[me];
  });
  const machine = setup({ actors: { pushStep } }).createMachine({
    id: 'h4push',
    initial: 'pushing',
    states: { pushing: { invoke: { src: 'pushStep', onDone: 'done' } }, done: { type: 'final' } },
  });
  const workflows = [defineWorkflow({ name: 'h4.push', machine, input: z.object({}) })];

  // While A is held, as a stopped process, none of its statements reaches the database (its renewals, its
  // claims): each waits until A is woken, and then goes on.
  let held = false;
  const fencedSavesOfA: string[] = [];
  const storeA = await openDatabase({ url: testDb.url });
  const hookedA = hookedStore(storeA, async (sql, params) => {
    if (/insert into rmapp_run_artifacts/.test(sql) && /lease_epoch = \$6/.test(sql)) fencedSavesOfA.push(`epoch ${String(params?.[5])}`);
    if (held) await wokenA;
  });
  const options = { workflows, leaseMs: 1_000, pollMs: 100, evictAfterMs: 60_000 };
  const a = createEngine({ ...options, database: hookedA, workerId: 'A' });
  const b = createEngine({ ...options, database: testDb.url, workerId: 'B' });
  try {
    await who.run('A', () => a.startWorker());
    const id = await who.run('A', () => a.start('h4.push', {}));
    await reachedA;
    held = true;
    // A's lease runs out by the database's clock; only then may B take the run.
    await until(
      async () => (await db.query(`select 1 from rmapp_runs where id = $1 and lease_expires_at < now()`, [id])).length > 0,
      20_000,
      "A's lease to expire",
    );
    await who.run('B', () => b.startWorker());
    await reachedB;

    // A wakes before B pushes.
    goA();
    await until(() => outcomes.A !== undefined, 30_000, "A's push attempt to end");
    expect(pushLedger(ledger), 'pushes received by the remote after A woke (A pushed after losing the run)').toEqual([]);
    expect(await b.getArtifact<string[]>(id, BRANCH_PUSHES), 'branch-pushes after A woke (A rewrote it after losing the run)').toBe(
      undefined,
    );
    expect((outcomes.A as { code?: string }).code, `A's push (${String(outcomes.A)})`).toBe('RUN_LEFT');
    expect(fencedSavesOfA, "A's fenced writes of the record (its session's epoch)").toEqual(['epoch 1']);

    goB();
    const run = await b.waitFor(id, { timeoutMs: 60_000 });
    expect([run.status, run.error?.message], 'the run under its new owner').toEqual(['succeeded', undefined]);
    expect(pushLedger(ledger), 'pushes received by the remote').toEqual([`refs/heads/${BRANCH} ${heads.B} by B`]);
    expect(await b.getArtifact<string[]>(id, BRANCH_PUSHES), 'branch-pushes').toEqual([heads.B]);
    expect(await git(remote, 'rev-parse', `refs/heads/${BRANCH}`), 'the branch on the remote').toBe(heads.B);
    expect(outcomes.B, "B's push").toBe('pushed');
  } finally {
    a.simulateCrash();
    await b.stop();
    await storeA.close();
  }
}, 120_000);
