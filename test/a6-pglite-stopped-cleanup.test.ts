/**
 * An owed cleanup on an embedded store whose process stopped its engine (the store closed, its lock
 * released) while the cleanup still ran, and lived on: a second process that opens the store must not run
 * the cleanup again beside it. On an embedded store a lease is taken over at once (the store lets one
 * process in, so its holder is taken for dead) — but the stopped process is alive and still runs it, as a
 * stopped worker's step whose lease is kept (persistence/claims.ts `keptOwner`). Real processes, and a
 * ledger file outside the engine that the cleanup writes its start and end to (test/fixtures/a4-slow-cleanup.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, openDatabase } from '../src/index.ts';
import { CLEANUP_OWED } from '../src/persistence/run-admin.ts';
import { slowCleanup } from './fixtures/a4-slow-cleanup.ts';
import { readJsonLines } from './helpers/ledger.ts';
import { ROOT, until } from './helpers/processes.ts';

interface Entry {
  runId: string;
  phase: 'start' | 'end';
  pid: number;
  t: number;
}

const children: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'a6-pglite-stopped-'));
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** A library program on the store: `body` runs after an engine registering the fixture is made. */
function program(body: string, env: Record<string, string>): { child: ChildProcess; output: () => string } {
  const script = [
    `import { createEngine } from ${JSON.stringify(join(ROOT, 'src/index.ts'))};`,
    `import { slowCleanup } from ${JSON.stringify(join(ROOT, 'test/fixtures/a4-slow-cleanup.ts'))};`,
    `const engine = createEngine({ database: { dataDir: process.env.A6_STORE }, workflows: [slowCleanup], leaseMs: Number(process.env.A6_LEASE_MS) });`,
    body,
  ].join('\n');
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: '', A6_STORE: join(dir, 'store'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  return { child, output: () => out };
}

describe('owed cleanup on an embedded store whose process closed it mid-cleanup and lives on', () => {
  it('is not run again by the next process while the first still runs it', async () => {
    const store = join(dir, 'store');
    const ledger = join(dir, 'ledger.jsonl');
    // A run that ran (its step fails), then marked owed as a cancellation that never ran its cleanup leaves it.
    const setup = createEngine({ database: { dataDir: store }, workflows: [slowCleanup], leaseMs: 2_000 });
    const id: string = await setup.start(slowCleanup, { key: 'k' });
    await setup.startWorker();
    const failed = await setup.waitFor(id, { timeoutMs: 30_000 });
    expect(failed.status).toBe('failed');
    await setup.stop();
    const db = await openDatabase({ dataDir: store });
    await db.query(`update rmapp_runs set status = 'cancelled', status_message = $2, finished_at = now() where id = $1`, [
      id,
      CLEANUP_OWED,
    ]);
    await db.close();

    // Process A: a cancel runs the owed cleanup (16 s; its lease is 16 s, renewed every third), and the
    // program stops its engine meanwhile — the stop waits half a lease for the cancel, then closes the
    // store — and goes on living while the cleanup runs to its end.
    const leaseMs = 16_000;
    const a = program(
      [
        `const cancelling = engine.cancel(process.env.RUN_ID).catch((err) => process.stdout.write('cancel threw ' + err.message + '\\n'));`,
        `while (!(await import('node:fs')).existsSync(process.env.A4_LEDGER)) await new Promise((r) => setTimeout(r, 20));`,
        `await engine.stop({ graceMs: 0 });`,
        `process.stdout.write('stopped\\n');`,
        `await cancelling;`,
      ].join('\n'),
      { RUN_ID: id, A4_LEDGER: ledger, A4_CLEANUP_MS: String(leaseMs), A6_LEASE_MS: String(leaseMs) },
    );
    await until(() => a.output().includes('stopped'), 60_000, `process A to stop its engine (output: ${a.output()})`);
    const aStart = readJsonLines<Entry>(ledger).find((e) => e.phase === 'start' && e.pid === a.child.pid);
    expect(aStart, 'process A started the cleanup').toBeDefined();

    // Process B: a worker on the store, sweeping every 2 s, with a short cleanup.
    const b = program(`await engine.startWorker(); process.stdout.write('working\\n'); await new Promise(() => {});`, {
      A4_LEDGER: ledger,
      A4_CLEANUP_MS: '50',
      A6_LEASE_MS: '2000',
    });
    // A's cleanup ends; B runs it again once A's lease has expired unrenewed (A's clear of the mark failed:
    // its store is closed), which the test waits for, as long as it takes.
    await until(
      () => {
        const ended = readJsonLines<Entry>(ledger).filter((e) => e.phase === 'end');
        return ended.some((e) => e.pid === b.child.pid) && ended.some((e) => e.pid === a.child.pid);
      },
      90_000,
      `processes A and B to end the cleanup (A: ${a.output()} B: ${b.output()})`,
    );
    const entries = readJsonLines<Entry>(ledger);
    const aEnd = entries.find((e) => e.phase === 'end' && e.pid === a.child.pid);
    const bStart = entries.find((e) => e.phase === 'start' && e.pid === b.child.pid);
    expect(aEnd, `process A's cleanup ran to its end (ledger: ${JSON.stringify(entries)})`).toBeDefined();
    // Run twice at once: B started it while A, alive, still ran it.
    expect(
      bStart!.t,
      `process B (pid ${b.child.pid}) started the cleanup at ${bStart!.t}, before process A (pid ${a.child.pid}), which still ran it, ended it at ${aEnd!.t}`,
    ).toBeGreaterThanOrEqual(aEnd!.t);
  }, 180_000);
});
