/**
 * The container driver, against a fake `docker` CLI that records what it is asked (this machine has
 * no container daemon): the isolation flags, the workspace and its read-only `.git`, variables passed
 * by name only (never a value in argv), the limits, no network, and the container removed afterwards.
 */
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { createSandbox } from '../src/rmapp/sandbox/index.ts';
import { ROOT } from './helpers/processes.ts';

it('runs docker with a read-only root, no capabilities, no network, limits, the workspace and variables by name', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'rmapp-container-'));
  const workspace = join(tmp, 'ws');
  mkdirSync(join(workspace, '.git'), { recursive: true });
  const log = join(tmp, 'docker.log');
  const saved = {
    PATH: process.env.PATH,
    FAKE_DOCKER_LOG: process.env.FAKE_DOCKER_LOG,
    AGENT_KEY: process.env.AGENT_KEY,
    GITHUB_TOKEN: process.env.GITHUB_TOKEN,
  };
  Object.assign(process.env, {
    PATH: `${join(ROOT, 'test/fixtures/fake-container')}:${process.env.PATH}`,
    FAKE_DOCKER_LOG: log,
    AGENT_KEY: 'the-agent-key-value',
    GITHUB_TOKEN: 'ghp_service_token_value',
  });
  try {
    const sandbox = createSandbox({
      driver: 'container',
      image: 'node:20',
      env: ['FAKE_DOCKER_LOG'],
      limits: { memoryBytes: 512 * 1024 ** 2, processes: 100, fileBytes: 1024 ** 2, outputBytes: 4096 },
    });
    await sandbox.check();
    const r = await sandbox.run({ argv: ['npm', 'test'], workspace, timeoutMs: 10_000, env: ['AGENT_KEY'] });
    expect(r.stdout).toContain('ran in the fake container');
    const calls = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { argv: string[]; passed: [string, string | null][] });
    const run = calls.find((c) => c.argv[0] === 'run');
    expect(run, 'docker run was called').toBeTruthy();
    const argv = run?.argv ?? [];
    const has = (...seq: string[]) => argv.some((_, i) => seq.every((s, j) => argv[i + j] === s));
    for (const seq of [
      ['--rm'],
      ['--network', 'none'],
      ['--read-only'],
      ['--cap-drop', 'ALL'],
      ['--security-opt', 'no-new-privileges'],
      ['--memory', String(512 * 1024 ** 2)],
      ['--pids-limit', '100'],
      ['-v', `${workspace}:/workspace`],
      ['-v', `${join(workspace, '.git')}:/workspace/.git:ro`],
      ['-w', '/workspace'],
    ]) {
      expect(has(...seq), `docker run ${seq.join(' ')}`).toBe(true);
    }
    expect(argv.slice(-3)).toEqual(['node:20', 'npm', 'test']);
    expect(JSON.stringify(argv), 'a value in argv').not.toContain('the-agent-key-value');
    expect(run?.passed).toContainEqual(['AGENT_KEY', 'the-agent-key-value']);
    expect(run?.passed.map(([name]) => name)).not.toContain('GITHUB_TOKEN');
    expect(JSON.stringify(calls), 'the service token reached docker').not.toContain('ghp_service_token_value');
    const name = argv[argv.indexOf('--name') + 1];
    expect(
      calls.filter((c) => c.argv[0] === 'rm').map((c) => c.argv),
      'the container is removed',
    ).toContainEqual(expect.arrayContaining([name]));
  } finally {
    for (const [k, v] of Object.entries(saved))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  }
});
