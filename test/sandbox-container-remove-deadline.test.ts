/**
 * The container driver removes its container (`docker rm -f`) after every command, and its guard does
 * when the service dies. Against a daemon that does not answer, neither had a limit that said anything:
 * the step waited as long as the client did and swallowed its failure, and the guard of a dead service
 * waited for ever. Now each gets a deadline, then the client is killed and the container named as
 * maybe left — to the service's warning hook, or by the guard on the service's own stderr. Against a
 * fake `docker` whose `rm` never answers (test/fixtures/hung-container-daemon).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createSandbox } from '../src/rmapp/sandbox/index.ts';
import { descendantsOf, killSurvivors, processRecord, stillRunning, type ProcessRecord } from './helpers/process-tree.ts';
import { ROOT, until } from './helpers/processes.ts';

const linux = process.platform === 'linux';
const HUNG = join(ROOT, 'test/fixtures/hung-container-daemon/docker');
const tmp = mkdtempSync(join(tmpdir(), 'rmapp-rm-deadline-'));
const workspace = mkdtempSync(join(tmp, 'ws-'));
const recorded: ProcessRecord[] = [];
const services: ChildProcess[] = [];
let n = 0;

afterEach(() => {
  for (const s of services.splice(0)) s.kill('SIGKILL');
  killSurvivors(recorded);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A fresh state folder for the fake daemon. */
function stateDir(): string {
  const dir = join(tmp, `state-${(n += 1)}`);
  mkdirSync(dir);
  return dir;
}

/** The `docker rm` clients the fake daemon saw, recorded (so that a survivor is killed after the test). */
function removals(state: string): ProcessRecord[] {
  const found = readdirSync(state)
    .filter((f) => f.startsWith('rm.'))
    .map((f) => ({
      pid: Number(readFileSync(join(state, f), 'utf8')),
      record: processRecord(Number(readFileSync(join(state, f), 'utf8'))),
    }));
  const records = found.map((f) => f.record).filter((r): r is ProcessRecord => r !== null);
  recorded.push(...records);
  return records;
}

describe.runIf(linux)('docker rm -f against a daemon that does not answer', () => {
  it('after a command: the step goes on with its result, the client is killed, the container is named', async () => {
    const state = stateDir();
    const warnings: { message: string; details: Record<string, unknown> }[] = [];
    const saved = process.env.FAKE_DOCKER_STATE;
    process.env.FAKE_DOCKER_STATE = state;
    try {
      const sandbox = createSandbox(
        { driver: 'container', image: 'node:20', runtime: HUNG as 'docker', env: ['FAKE_DOCKER_STATE'] },
        { removeTimeoutMs: 1_000, warn: (message, details) => warnings.push({ message, details }) },
      );
      const r = await sandbox.run({ argv: ['echo', 'the agent’s work'], workspace, timeoutMs: 60_000 });
      expect(r).toMatchObject({ exitCode: 0, stdout: 'the agent’s work\n' });
      expect(warnings, 'the warnings').toHaveLength(1);
      const container = String(warnings[0]?.details.container);
      expect(container).toMatch(/^rmapp-[0-9a-f-]{36}$/);
      expect(warnings[0]?.message).toContain(`The container ${container} may be left running`);
      expect(warnings[0]?.message).toContain(`\`${HUNG} rm -f ${container}\``);
      const clients = readdirSync(state).filter((f) => f.startsWith('rm.'));
      expect(clients, 'docker rm was run').toHaveLength(1);
      expect(
        removals(state).map((p) => p.command),
        'docker rm clients still running',
      ).toEqual([]);

      // Cancelled: the step's own error stays the cancellation, and the container is named all the same.
      const controller = new AbortController();
      const run = sandbox.run({
        argv: ['sh', '-c', 'echo started; exec sleep 300'],
        workspace,
        timeoutMs: 60_000,
        signal: controller.signal,
        killGraceMs: 200,
        onStdout: () => controller.abort(),
      });
      await expect(run).rejects.toMatchObject({ name: 'AbortError' });
      expect(warnings, 'the warnings').toHaveLength(2);
      expect(
        removals(state).map((p) => p.command),
        'docker rm clients still running',
      ).toEqual([]);
    } finally {
      if (saved === undefined) delete process.env.FAKE_DOCKER_STATE;
      else process.env.FAKE_DOCKER_STATE = saved;
    }
  });

  it('in the guard of a service that was SIGKILLed: the guard ends, and says on the service’s stderr which container may be left', async () => {
    const state = stateDir();
    const settings = { runtime: HUNG, image: 'node:20', env: ['FAKE_DOCKER_STATE'], removeTimeoutMs: 1_000 };
    const service = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(ROOT, 'test/fixtures/sandbox-service.ts'),
        'container',
        JSON.stringify(['sh', '-c', 'echo started; exec sleep 300']),
        JSON.stringify(settings),
        workspace,
      ],
      { cwd: ROOT, env: { ...process.env, FAKE_DOCKER_STATE: state }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    services.push(service);
    let out = '';
    let err = '';
    service.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    service.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    const stderrClosed = new Promise<void>((resolve) => service.stderr?.on('close', () => resolve()));
    await until(() => out.includes('started'), 30_000, `the command to start (service stderr: ${err})`);
    const tree = descendantsOf(service.pid as number);
    recorded.push(...tree);
    expect(
      tree.some((p) => p.command.startsWith('/bin/bash -c svc=$1')),
      `the guard runs: ${tree.map((p) => p.command.slice(0, 60)).join(' | ')}`,
    ).toBe(true);
    service.kill('SIGKILL');
    // The guard holds the service's stderr until it ends: its end closes the pipe.
    await stderrClosed;
    expect(err).toMatch(
      /rmapp sandbox: `.* rm -f (rmapp-[0-9a-f-]{36})` did not finish within 1 s .*: it was killed, and \1 may be left running/,
    );
    expect(
      readdirSync(state).filter((f) => f.startsWith('rm.')),
      'the guard ran docker rm',
    ).toHaveLength(1);
    // The docker rm client the guard killed is waited for too: seen while its exit was still under way
    // (its command line already empty, not yet a zombie), it was taken for a client left running on a
    // loaded machine (a full suite beside other jobs).
    await until(() => !tree.some(stillRunning) && removals(state).length === 0, 10_000, 'the guard and what it ran to end').catch(() => {});
    expect(
      tree.filter(stillRunning).map((p) => `${p.pid} ${p.command.slice(0, 80)}`),
      'still running',
    ).toEqual([]);
    expect(
      removals(state).map((p) => p.command),
      'docker rm clients still running',
    ).toEqual([]);
  });
});
