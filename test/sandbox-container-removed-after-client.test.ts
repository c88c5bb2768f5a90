/**
 * When the service dies, the container driver's guard (src/rmapp/sandbox/die-with-parent.ts) kills the
 * `docker run` client before it asks the daemon to remove the container. The other way round, a client
 * that was about to create the container did so after `rm -f` had answered that there was none, and the
 * container ran on with the agent inside it. test/fixtures/racing-container-daemon makes that
 * interleaving happen every time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { killSurvivors, processRecord, type ProcessRecord } from './helpers/process-tree.ts';
import { ROOT, until } from './helpers/processes.ts';

const linux = process.platform === 'linux';
const state = mkdtempSync(join(tmpdir(), 'rmapp-racing-docker-'));
const workspace = mkdtempSync(join(tmpdir(), 'rmapp-racing-docker-ws-'));
const services: ChildProcess[] = [];
const containers: ProcessRecord[] = [];

afterEach(() => {
  for (const s of services.splice(0)) s.kill('SIGKILL');
  killSurvivors(containers.splice(0));
});
afterAll(() => {
  rmSync(state, { recursive: true, force: true });
  rmSync(workspace, { recursive: true, force: true });
});

describe.runIf(linux)('the container driver, its service SIGKILLed while the client starts the container', () => {
  it('leaves no container: the client dies before the container is removed', async () => {
    const settings = { runtime: join(ROOT, 'test/fixtures/racing-container-daemon/docker'), image: 'node:20', env: ['FAKE_DOCKER_STATE'] };
    const service = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(ROOT, 'test/fixtures/sandbox-service.ts'),
        'container',
        JSON.stringify(['agent']),
        JSON.stringify(settings),
        workspace,
      ],
      { cwd: ROOT, env: { ...process.env, FAKE_DOCKER_STATE: state }, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    services.push(service);
    await until(() => existsSync(join(state, 'client')), 30_000, 'the docker client to start');
    service.kill('SIGKILL');
    await until(() => existsSync(join(state, 'rm-done')), 20_000, 'the guard’s docker rm -f to answer');
    const created = ['client', 'rm-looked', 'rm-done'];
    const named = readdirSync(state).filter((f) => !created.includes(f) && !f.startsWith('.'));
    for (const name of named) {
      const record = processRecord(Number(readFileSync(join(state, name), 'utf8')));
      if (record) containers.push(record);
    }
    expect(containers.map((c) => c.command)).toEqual([]);
    // Not even created: the client was dead before the daemon heard of the container's removal.
    expect(named).toEqual([]);
  });
});
