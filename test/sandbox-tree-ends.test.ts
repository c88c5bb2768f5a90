/**
 * A sandboxed command's end is the end of everything it started, whatever the end: success, failure,
 * timeout or cancel. The command leaves two `sleep 1000`s behind with their output sent elsewhere (a
 * server a test script started and forgot), one of them orphaned by a subshell that exited (as a
 * daemon does): they hold none of the command's pipes, so under the `none` driver they used to run on
 * after a command that exited. Checked on /proc, by pid and start time, once `run` has settled.
 * `container` runs against a fake `docker` whose containers outlive their client, as a daemon's do.
 */
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, type SandboxDriver } from '../src/rmapp/sandbox/index.ts';
import { killSurvivors, processRecord, stillRunning, type ProcessRecord } from './helpers/process-tree.ts';
import { ROOT, until } from './helpers/processes.ts';

let tmp: string;
const recorded: ProcessRecord[] = [];
const saved = { PATH: process.env.PATH, FAKE_DOCKER_STATE: process.env.FAKE_DOCKER_STATE };

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'rmapp-tree-ends-'));
  mkdirSync(join(tmp, 'containers'));
  Object.assign(process.env, {
    PATH: `${join(ROOT, 'test/fixtures/fake-container-daemon')}:${process.env.PATH}`,
    FAKE_DOCKER_STATE: join(tmp, 'containers'),
  });
});
afterEach(() => killSurvivors(recorded));
afterAll(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

let n = 0;
/** The script: two sleeps left behind (their pids in `ledger`), then `end`. */
function leaving(ledger: string, end: string): string[] {
  const script = [
    `sleep 1000 </dev/null >/dev/null 2>&1 & echo $! >> ${ledger}`,
    `(sleep 1000 </dev/null >/dev/null 2>&1 & echo $! >> ${ledger})`,
    end,
  ].join('; ');
  return ['sh', '-c', script];
}

function ledgerPids(ledger: string): number[] {
  try {
    return readFileSync(ledger, 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Runs `end` after the sleeps are left; returns what `run` gave (or its error), the sleeps as recorded
 * while they ran (by a watch, or when `run` settled), and how many the ledger names.
 */
async function runLeaving(
  driver: SandboxDriver,
  end: string,
  job: { timeoutMs?: number; cancel?: boolean } = {},
): Promise<{ outcome: unknown; sleeps: ProcessRecord[]; started: number }> {
  const ledger = join(tmp, `ledger-${(n += 1)}`);
  const workspace = join(tmp, `ws-${n}`);
  mkdirSync(workspace);
  const sandbox = createSandbox({ driver, image: 'fake/image:1', env: ['FAKE_DOCKER_STATE'] });
  const controller = new AbortController();
  const sleeps: ProcessRecord[] = [];
  // Each sleep is recorded as soon as its pid is written (before a cancel or the end can kill it).
  const watch = setInterval(() => {
    for (const pid of ledgerPids(ledger)) {
      if (sleeps.some((r) => r.pid === pid)) continue;
      const record = processRecord(pid);
      if (record) sleeps.push(record);
      if (record) recorded.push(record);
    }
  }, 10);
  try {
    const running = sandbox.run({
      argv: leaving(ledger, end),
      workspace,
      timeoutMs: job.timeoutMs ?? 60_000,
      killGraceMs: 200,
      signal: controller.signal,
    });
    if (job.cancel) {
      await until(() => sleeps.length === 2, 30_000, 'both sleeps to start');
      controller.abort(new Error('cancelled by the test'));
    }
    const outcome = await running.catch((err: unknown) => err);
    // A sleep the watch did not see yet and that still runs (a pid of the ledger is never reused this soon).
    for (const pid of ledgerPids(ledger)) {
      const record = sleeps.some((r) => r.pid === pid) ? null : processRecord(pid);
      if (record) sleeps.push(record);
      if (record) recorded.push(record);
    }
    return { outcome, sleeps, started: ledgerPids(ledger).length };
  } finally {
    clearInterval(watch);
  }
}

async function expectAllGone(sleeps: ProcessRecord[]): Promise<void> {
  await until(() => !sleeps.some(stillRunning), 10_000, 'the sleeps to die').catch(() => {});
  expect(
    sleeps.filter(stillRunning).map((r) => `${r.pid} ${r.command}`),
    'processes the command left that outlived it',
  ).toEqual([]);
}

describe.each(['none', 'container'] as const)('%s', (driver) => {
  it('success: what the command left behind is gone when run returns', async () => {
    const { outcome, sleeps, started } = await runLeaving(driver, 'exit 0');
    expect(outcome).toMatchObject({ exitCode: 0 });
    expect(started).toBe(2);
    await expectAllGone(sleeps);
  });

  it('failure: the same', async () => {
    const { outcome, sleeps, started } = await runLeaving(driver, 'exit 1');
    expect(outcome).toMatchObject({ exitCode: 1 });
    expect(started).toBe(2);
    await expectAllGone(sleeps);
  });

  it('timeout: the command ignores SIGTERM (so do the sleeps), and all of it goes', async () => {
    // 8 s: time enough for the sleeps to start on a loaded machine before the timeout (checked below).
    const { outcome, sleeps } = await runLeaving(driver, 'trap "" TERM; sleep 1000', { timeoutMs: 8_000 });
    expect(outcome).toMatchObject({ code: 'COMMAND_TIMEOUT' });
    expect(sleeps).toHaveLength(2);
    await expectAllGone(sleeps);
  }, 30_000);

  it('cancel: all of it goes', async () => {
    const { outcome, sleeps } = await runLeaving(driver, 'sleep 1000', { cancel: true });
    expect((outcome as Error).message).toBe('cancelled by the test');
    expect(sleeps).toHaveLength(2);
    await expectAllGone(sleeps);
  });
});
