/**
 * What a command run under the `none` driver's guard (src/rmapp/sandbox/die-with-parent.ts) prints and
 * reports is its own, as under bubblewrap: the guard adds nothing to its output.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createSandbox } from '../src/rmapp/sandbox/index.ts';

const linux = process.platform === 'linux';
const sandbox = createSandbox({ driver: 'none' });
const workspace = mkdtempSync(join(tmpdir(), 'rmapp-guard-plumbing-'));
afterAll(() => rmSync(workspace, { recursive: true, force: true }));

const run = (argv: string[]) => sandbox.run({ argv, workspace, timeoutMs: 60_000 });

/** An executable script at `path` in the workspace that prints its file name and arguments. */
function script(path: string): void {
  mkdirSync(join(workspace, path, '..'), { recursive: true });
  writeFileSync(join(workspace, path), '#!/bin/sh\necho "ran ${0##*/} $*"\n');
  chmodSync(join(workspace, path), 0o755);
}

describe.runIf(linux)('the none driver’s guard', () => {
  it('says nothing of its own when the command is killed by a signal: its stderr is the command’s', async () => {
    // bash reported its background job's end on its own stderr, which is the command's:
    // `rmapp-guard: line 19: 123 Segmentation fault ( trap - INT QUIT; exec /usr/bin/env … )`.
    for (const [sig, code] of [
      ['SEGV', 139],
      ['KILL', 137],
      ['ABRT', 134],
    ] as const) {
      const r = await run(['bash', '-c', `echo own >&2; kill -${sig} $$`]);
      expect(r.exitCode).toBe(code);
      expect(r.stderr).toBe('own\n');
    }
  });

  it('runs the program it is given, whatever its name: the name is no option or assignment of another program', async () => {
    // The guard ran the command through `env`, which took `./tests=fast.sh` for a variable to set and ran
    // the next argument (`echo`) instead, and `-S/x` for its option -S (split a string into a command line).
    script('tests=fast.sh');
    script('-S/x');
    const assignment = await run(['./tests=fast.sh', 'echo', 'not this']);
    expect(assignment.stdout).toBe('ran tests=fast.sh echo not this\n');
    const option = await run(['-S/x', 'arg']);
    expect(option.stdout).toBe('ran x arg\n');
  });

  it.each(['cd', 'stop', 'signal_session', 'trap'])(
    'says a program named %s, a shell built-in or one of its own functions, cannot be run',
    async (name) => {
      await expect(run([name])).rejects.toMatchObject({ code: 'COMMAND_NOT_RUNNABLE' });
    },
  );

  it('hands the command exactly the environment built for it', async () => {
    const r = await run(['env']);
    expect(
      r.stdout
        .split('\n')
        .filter(Boolean)
        .map((line) => line.slice(0, line.indexOf('=')))
        .sort(),
    ).toEqual(['CI', 'HOME', 'LANG', 'PATH', 'TERM', 'TMPDIR', ...['TZ', 'LC_ALL'].filter((n) => process.env[n] !== undefined)].sort());
  });
});
