/**
 * The `none` driver's guard (src/rmapp/sandbox/die-with-parent.ts) follows what moved to a process
 * group of its own without leaving the command's session. GNU `timeout` does that to every command it
 * runs (it makes itself a group leader, to kill its own group), as does a shell with job control
 * (`set -m`) to each background job: `timeout 600 npm test` is an ordinary test command, and what it
 * started outlived the step at its end, at its timeout or cancel, and when the worker was SIGKILLed.
 *
 * Each command prints `LEFT <pid> <start time>` for a process it leaves behind; the test then checks
 * /proc, by pid and start time (test/helpers/process-tree.ts), that it no longer runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createSandbox } from '../src/rmapp/sandbox/index.ts';
import { killSurvivors, stillRunning, type ProcessRecord } from './helpers/process-tree.ts';
import { ROOT, until } from './helpers/processes.ts';

const linux = process.platform === 'linux';
const sandbox = createSandbox({ driver: 'none' });
const workspace = mkdtempSync(join(tmpdir(), 'rmapp-guard-session-'));
const recorded: ProcessRecord[] = [];
const services: ChildProcess[] = [];

afterEach(() => {
  killSurvivors(recorded.splice(0));
  for (const s of services.splice(0)) s.kill('SIGKILL');
});
afterAll(() => rmSync(workspace, { recursive: true, force: true }));

/**
 * bash that starts `sleep 1000` in the background, its output sent away (so nothing waits for it),
 * and prints `LEFT <pid> <start time>` for it (field 22 of its /proc stat).
 */
const LEAVE_SLEEP = 'sleep 1000 >/dev/null 2>&1 & read -r -a f </proc/$!/stat; echo "LEFT $! ${f[21]}"';

/** The processes named by the `LEFT` lines of `text`. */
function leftIn(text: string): ProcessRecord[] {
  return [...text.matchAll(/^LEFT (\d+) (\d+)$/gm)].map((m) => ({ pid: Number(m[1]), start: m[2] as string, command: 'sleep 1000' }));
}

/** Collects what a command prints, recording each process it says it left. */
function watcher() {
  let out = '';
  let resolveFirst: () => void = () => {};
  const first = new Promise<void>((r) => (resolveFirst = r));
  return {
    first,
    onStdout: (chunk: Buffer) => {
      out += chunk.toString();
      const left = leftIn(out).filter((r) => !recorded.some((x) => x.pid === r.pid));
      recorded.push(...left);
      if (recorded.length) resolveFirst();
    },
  };
}

describe.runIf(linux)('the none driver follows a command into the process groups of its session', () => {
  it.each([
    ['GNU timeout', ['timeout', '300', 'bash', '-c', LEAVE_SLEEP]],
    ['a shell with job control', ['bash', '-c', `set -m; ${LEAVE_SLEEP}`]],
  ])('%s: what it left in the background ends with the command', async (_name, argv) => {
    const w = watcher();
    const result = await sandbox.run({ argv, workspace, timeoutMs: 120_000, onStdout: w.onStdout });
    expect(result.exitCode).toBe(0);
    expect(recorded).toHaveLength(1);
    expect(recorded.filter(stillRunning)).toEqual([]);
  });

  it('cancelled: the group timeout made ends with it', async () => {
    const w = watcher();
    const controller = new AbortController();
    void w.first.then(() => controller.abort());
    const run = sandbox.run({
      argv: ['timeout', '300', 'bash', '-c', `${LEAVE_SLEEP}; wait`],
      workspace,
      timeoutMs: 120_000,
      signal: controller.signal,
      onStdout: w.onStdout,
    });
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    expect(recorded).toHaveLength(1);
    await until(() => !recorded.some(stillRunning), 10_000, 'the cancelled command’s sleep to end');
  });

  it('cancelled, the command ignoring SIGTERM past its grace period: what it moved to another group ends too', async () => {
    const w = watcher();
    const controller = new AbortController();
    void w.first.then(() => controller.abort());
    const run = sandbox.run({
      // Neither the command nor what timeout runs ends on SIGTERM: only the guard's kill ends them.
      argv: ['bash', '-c', `trap '' TERM; timeout 300 bash -c 'trap "" TERM; ${LEAVE_SLEEP}; wait' & wait`],
      workspace,
      timeoutMs: 120_000,
      signal: controller.signal,
      killGraceMs: 200,
      onStdout: w.onStdout,
    });
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    expect(recorded).toHaveLength(1);
    await until(() => !recorded.some(stillRunning), 10_000, 'the sleep of a command that ignored SIGTERM to end');
  });

  it('the service SIGKILLed: the group timeout made dies with it', async () => {
    const service = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(ROOT, 'test/fixtures/sandbox-service.ts'),
        'none',
        JSON.stringify(['timeout', '300', 'bash', '-c', `${LEAVE_SLEEP}; wait`]),
        '{}',
        workspace,
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    services.push(service);
    let out = '';
    service.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    await until(() => leftIn(out).length > 0, 30_000, 'the command to start its sleep');
    recorded.push(...leftIn(out));
    expect(recorded.filter(stillRunning)).toHaveLength(1);
    service.kill('SIGKILL');
    await until(() => !recorded.some(stillRunning), 10_000, 'the sleep to die with the service');
  });
});
