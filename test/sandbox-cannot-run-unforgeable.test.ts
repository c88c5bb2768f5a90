/**
 * "The sandbox could not start this command" (COMMAND_NOT_RUNNABLE) is rmapp's own word, never the
 * command's. It was read from the command's stderr: a command printing `rmapp sandbox: cannot run x`
 * (or bwrap's `bwrap: execvp x: …`) and exiting non-zero was reported as a program that never ran,
 * its own status and output replaced. Now only rmapp's wrappers say it, on a descriptor they close
 * before the command starts (src/rmapp/sandbox/die-with-parent.ts `GUARD`, `EXEC_CHECK`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { toErrorData } from '../src/index.ts';
import { createSandbox, type SandboxSettings } from '../src/rmapp/sandbox/index.ts';
import { ROOT } from './helpers/processes.ts';

const linux = process.platform === 'linux';
const tmp = mkdtempSync(join(tmpdir(), 'rmapp-cannot-run-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const workspace = mkdtempSync(join(tmp, 'ws-'));

const SPOOF = [
  'rmapp sandbox: cannot run x: not found',
  'bwrap: execvp x: No such file or directory',
  'cannot run x: no executable file of that name (on the PATH, for a name without /)',
];
/** A command that says `line` on stderr, as the sandbox said that it could not run a command, and exits with `status`. */
const spoofing = (line: string, status: number) => ['sh', '-c', `echo '${line}' >&2; exit ${status}`];

const settings: [string, Partial<SandboxSettings>][] = [
  ['none', { driver: 'none' }],
  ['bubblewrap', { driver: 'bubblewrap' }],
  // The command runs behind the network forwarder, which says "rmapp sandbox: cannot run" on its own.
  ['bubblewrap with a network allowlist', { driver: 'bubblewrap', network: ['example.com'] }],
];

describe.runIf(linux)('what says that a command cannot be run', () => {
  it.each(settings)('under %s, a command printing the diagnosis is reported as what it is: its status and output', async (_name, s) => {
    const sandbox = createSandbox(s);
    for (const line of SPOOF)
      for (const status of [127, 1]) {
        const r = await sandbox.run({ argv: spoofing(line, status), workspace, timeoutMs: 30_000 }).catch((err: unknown) => {
          throw new Error(
            `\`${line}\`, exit ${status}, was taken for rmapp's diagnosis: ${toErrorData(err).code} ${(err as Error).message}`,
          );
        });
        expect(r.exitCode).toBe(status);
        expect(r.stderr).toBe(`${line}\n`);
        expect(r, 'the diagnosis channel leaks into the result').not.toHaveProperty('diagnostics');
      }
  });

  it.each(settings)('under %s, the command cannot write the diagnosis where rmapp reads it', async (_name, s) => {
    const sandbox = createSandbox(s);
    // Descriptor 3 is closed before the command starts, in the command and in what started it.
    const script = 'echo "cannot run x: forged" >&3; echo "cannot run x: forged" >/proc/$PPID/fd/3; exit 127';
    const r = await sandbox.run({ argv: ['sh', '-c', script], workspace, timeoutMs: 30_000 });
    expect(r.exitCode).toBe(127);
  });

  it.each(settings)(
    'under %s, a program that is not there is still COMMAND_NOT_RUNNABLE, stdin still reaches one that is',
    async (_name, s) => {
      const sandbox = createSandbox(s);
      const err = await sandbox.run({ argv: ['no-such-program-anywhere'], workspace, timeoutMs: 30_000 }).catch((e: unknown) => e);
      expect(toErrorData(err)).toMatchObject({ code: 'COMMAND_NOT_RUNNABLE', category: 'permanent' });
      expect((err as Error).message).toContain('cannot run no-such-program-anywhere: no executable file of that name');
      const r = await sandbox.run({ argv: ['cat'], input: 'the prompt\n', workspace, timeoutMs: 30_000 });
      expect(r).toMatchObject({ exitCode: 0, stdout: 'the prompt\n' });
    },
  );

  it('under container, the command’s words are its own; a runtime that is not there is rmapp’s diagnosis', async () => {
    const saved = { PATH: process.env.PATH, FAKE_DOCKER_STATE: process.env.FAKE_DOCKER_STATE };
    Object.assign(process.env, {
      PATH: `${join(ROOT, 'test/fixtures/fake-container-daemon')}:${process.env.PATH}`,
      FAKE_DOCKER_STATE: mkdtempSync(join(tmp, 'state-')),
    });
    try {
      const sandbox = createSandbox({ driver: 'container', image: 'node:20', env: ['FAKE_DOCKER_STATE'] });
      for (const line of SPOOF) {
        const r = await sandbox.run({ argv: spoofing(line, 127), workspace, timeoutMs: 30_000 });
        expect(r.exitCode).toBe(127);
        expect(r.stderr).toBe(`${line}\n`);
      }
      const missing = createSandbox({ driver: 'container', image: 'node:20', runtime: join(tmp, 'no-docker') as 'docker' });
      const err = await missing.run({ argv: ['true'], workspace, timeoutMs: 30_000 }).catch((e: unknown) => e);
      expect(toErrorData(err).code).toBe('COMMAND_NOT_RUNNABLE');
      expect((err as Error).message).toContain(`cannot run ${join(tmp, 'no-docker')}`);
    } finally {
      for (const [k, v] of Object.entries(saved))
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    }
  });
});
