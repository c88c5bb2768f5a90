/**
 * A service started by a launcher that leaves descriptors open (a pipe, a log file, a socket without
 * close-on-exec) must not hand them to the sandboxed command: prlimit and bwrap pass on whatever they
 * are given. The service here is a real Node process started by a shell that left fd 100 open on a host
 * file (Node marks the low descriptors it is given close-on-exec at start-up, not one that high); its sandboxed command
 * lists its own descriptors and tries to write into fd 100.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { removeTree } from '../src/rmapp/workspace-access.ts';

const sandboxModule = new URL('../src/rmapp/sandbox/index.ts', import.meta.url).href;

describe('descriptors the service inherited', () => {
  it('reach no sandboxed command (bubblewrap driver)', async () => {
    const workspace = await mkdtemp(join(tmpdir(), 'rmapp-fds-'));
    const hostFile = `${workspace}-launcher.log`;
    try {
      await writeFile(hostFile, '');
      // The command prints the descriptors it holds (the shell's listing of them is fd 3) and writes into fd 100.
      const command = 'for f in /proc/self/fd/*; do echo "${f##*/}"; done; echo leaked >&100 && echo "wrote into fd 100"; true';
      const service = `
        import { createSandbox } from ${JSON.stringify(sandboxModule)};
        const sandbox = createSandbox({ driver: 'bubblewrap' });
        const r = await sandbox.run({ argv: ['/bin/bash', '-c', ${JSON.stringify(command)}], workspace: ${JSON.stringify(workspace)}, timeoutMs: 30_000 });
        process.stdout.write(JSON.stringify(r));`;
      const launcher = [
        '-c',
        'exec 100>>"$0"; exec "$@"',
        hostFile,
        process.execPath,
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        service,
      ];
      const child = spawn('/bin/bash', launcher, { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(code, err).toBe(0);
      const result = JSON.parse(out) as { exitCode: number; stdout: string; stderr: string };
      expect(result.exitCode, result.stderr).toBe(0);
      const held = result.stdout
        .split('\n')
        .filter((line) => /^\d+$/.test(line))
        .map(Number);
      // 0, 1, 2 and the shell's own listing at most: nothing of the service's launcher.
      const foreign = held.filter((fd) => fd > 2 && fd !== 3);
      expect(foreign, `descriptors the sandboxed command held: ${held.join(', ')}`).toEqual([]);
      expect(result.stdout, "the sandboxed command wrote into the service launcher's file").not.toContain('wrote into fd 100');
      expect(await readFile(hostFile, 'utf8')).toBe('');
    } finally {
      await removeTree(workspace);
      await removeTree(hostFile);
    }
  });
});
