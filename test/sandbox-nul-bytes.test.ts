/**
 * A NUL byte in a sandboxed command's argument or environment cannot reach the program (they are C
 * strings). Spawning it failed with Node's raw TypeError, which named the *guard's* argument index
 * (`args[10]` under the `none` driver, `args[99]` under bubblewrap) and quoted the value. Now the
 * command fails with COMMAND_NOT_RUNNABLE naming the command's own argument (or the variable), before
 * anything is started for it — under every driver, and for the steps that run the agent and the tests.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { toErrorData } from '../src/index.ts';
import { runAgent, runTests } from '../src/rmapp/agent-runner.ts';
import { runCommand } from '../src/rmapp/process.ts';
import { createSandbox, type SandboxDriver } from '../src/rmapp/sandbox/index.ts';
import { ROOT } from './helpers/processes.ts';

const tmp = mkdtempSync(join(tmpdir(), 'rmapp-nul-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const workspace = mkdtempSync(join(tmp, 'ws-'));

/** What a rejection says: its error data, and that it is rmapp's own error rather than spawn's TypeError. */
async function failure(pending: Promise<unknown>) {
  const err = await pending.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, 'the command ran').not.toBeNull();
  expect((err as Error).name, (err as Error).message).not.toBe('TypeError');
  return { data: toErrorData(err), message: (err as Error).message };
}

describe('a NUL byte in a sandboxed command', () => {
  const drivers: SandboxDriver[] = ['none', 'bubblewrap'];
  it.each(drivers)('under %s: argument 2 is named, the value is not quoted', async (driver) => {
    const sandbox = createSandbox({ driver });
    const { data, message } = await failure(sandbox.run({ argv: ['echo', 'fine', 'sec\0ret-part'], workspace, timeoutMs: 30_000 }));
    expect(data).toMatchObject({ code: 'COMMAND_NOT_RUNNABLE', category: 'permanent' });
    expect(message).toContain('argument 2 of the command');
    expect(message).toContain('NUL byte');
    expect(message, 'the guard’s own argument index').not.toMatch(/args\[\d+\]/);
    expect(message, 'the value').not.toContain('ret-part');
  });

  it('under container: refused before docker is asked to run anything', async () => {
    const log = join(tmp, 'docker.log');
    const saved = { PATH: process.env.PATH, FAKE_DOCKER_LOG: process.env.FAKE_DOCKER_LOG };
    Object.assign(process.env, { PATH: `${join(ROOT, 'test/fixtures/fake-container')}:${process.env.PATH}`, FAKE_DOCKER_LOG: log });
    try {
      const sandbox = createSandbox({ driver: 'container', image: 'node:20', env: ['FAKE_DOCKER_LOG'] });
      const { data, message } = await failure(sandbox.run({ argv: ['npm', 'test', '--', 'a\0b'], workspace, timeoutMs: 30_000 }));
      expect(data.code).toBe('COMMAND_NOT_RUNNABLE');
      expect(message).toContain('argument 3 of the command');
      const calls = existsSync(log) ? readFileSync(log, 'utf8') : '';
      expect(calls, 'docker was run').not.toContain('"run"');
    } finally {
      for (const [k, v] of Object.entries(saved))
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    }
  });

  it('in a variable passed to it: the variable is named', async () => {
    // process.env cuts a value at its NUL, but reads a *name* up to it: `PATH\0x` is passed as PATH's value.
    const sandbox = createSandbox({ driver: 'none', env: ['PATH\0x'] });
    const { data, message } = await failure(sandbox.run({ argv: ['true'], workspace, timeoutMs: 30_000 }));
    expect(data.code).toBe('COMMAND_NOT_RUNNABLE');
    expect(message).toContain('the name of the environment variable that starts "PATH"');
  });

  it('given to runCommand directly: the argument or the variable is named', async () => {
    const arg = await failure(runCommand(['git', 'log', 'a\0b']));
    expect(arg.data.code).toBe('COMMAND_NOT_RUNNABLE');
    expect(arg.message).toContain('Could not run git: argument 2 of the command');
    const env = await failure(runCommand(['env'], { env: { TOKEN: 'x\0y' }, inheritEnv: false }));
    expect(env.data.code).toBe('COMMAND_NOT_RUNNABLE');
    expect(env.message).toContain('the value of the environment variable TOKEN');
    expect(env.message).not.toContain('x\0y');
  });

  it('fails the agent’s and the tests’ steps with that error, the agent’s transcript ended', async () => {
    const sandbox = createSandbox({ driver: 'bubblewrap' });
    const agent = await failure(runAgent({ command: ['node', '-e', '1\0'], timeoutMs: 30_000, sandbox }, { cwd: workspace, prompt: 'hi' }));
    expect(agent.data).toMatchObject({ code: 'COMMAND_NOT_RUNNABLE', category: 'permanent' });
    expect(agent.message).toContain('argument 2 of the command');
    const tests = await failure(runTests({ command: ['npm', 'test', '\0'], timeoutMs: 30_000, sandbox }, { cwd: workspace }));
    expect(tests.data).toMatchObject({ code: 'COMMAND_NOT_RUNNABLE', category: 'permanent' });
    expect(tests.message).toContain('argument 2 of the command');
  });
});
