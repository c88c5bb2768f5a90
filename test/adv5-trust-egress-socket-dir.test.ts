/**
 * The egress proxy's socket folder is mounted writable into the sandbox (`/run/rmapp`), and the sandbox's
 * user is the service's own user on the host. It was made by `mkdtemp` right under /tmp: the sandbox
 * could `chmod 777` it and copy a program there with the setuid bit, and for the length of its command
 * any local user ran that program as the service's user (root, for a service running as root) — the
 * hole the workspaces' private root closes for the workspace. Now the folder sits in one of mode 0700
 * that the sandbox never sees.
 */
import { randomUUID } from 'node:crypto';
import { statSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from '../src/rmapp/process.ts';
import { createSandbox } from '../src/rmapp/sandbox/index.ts';
import { removeTree } from '../src/rmapp/workspace-access.ts';
import { plantedUnderTmp } from './helpers/sandbox.ts';

describe("the egress proxy's socket folder", () => {
  let workspace: string;
  beforeAll(async () => {
    workspace = await mkdtemp(join(tmpdir(), 'rmapp-adv5-rundir-'));
  });
  afterAll(async () => {
    await removeTree(workspace);
  });

  it('keeps a setuid file the sandbox leaves there out of other users’ reach', async () => {
    const name = `planted-${randomUUID()}`;
    // The sandboxed command: opens its socket folder to all, leaves a setuid `id` there, waits to be told.
    const script = [
      'chmod 777 /run/rmapp',
      `cp /usr/bin/id /run/rmapp/${name}`,
      `chmod 4755 /run/rmapp/${name}`,
      'i=0; while [ ! -e /run/rmapp/done ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done',
    ].join(' && ');
    const run = createSandbox({ driver: 'bubblewrap' }).run({
      argv: ['sh', '-c', script],
      workspace,
      timeoutMs: 120_000,
      network: ['example.com'],
    });
    let planted: string | null = null;
    for (let i = 0; i < 600 && !planted; i++) {
      planted = plantedUnderTmp('rmapp-net-', name);
      if (!planted) await new Promise((ok) => setTimeout(ok, 100));
    }
    try {
      expect(planted, 'the sandbox could not plant its file (the test did not run)').not.toBeNull();
      const file = planted as string;
      // Every folder from tmpdir down to the file: a local user reaches it only if each lets others through.
      const folders: string[] = [];
      for (let d = dirname(file); d.startsWith(tmpdir()) && d !== tmpdir(); d = dirname(d)) folders.push(d);
      const open = folders.every((d) => (statSync(d).mode & 0o001) !== 0);
      expect(
        open,
        `the setuid file the sandbox left in its socket folder (${file}) is reachable by every local user: ${folders.map((d) => `${d} ${(statSync(d).mode & 0o777).toString(8)}`).join(', ')}`,
      ).toBe(false);
      if (process.getuid?.() === 0) {
        // As nobody, for real: a setuid `id` run through the path says euid=0 when the hole is open.
        // `su`, not `setpriv`: setpriv keeps root's capabilities until it runs the program, so its path is looked up as root.
        const asNobody = await runCommand(['su', 'nobody', '-s', '/bin/sh', '-c', `exec '${file}'`], {
          env: { PATH: '/usr/bin:/bin' },
          inheritEnv: false,
        });
        expect(asNobody.stdout, `user nobody ran the sandbox's setuid file: ${asNobody.stdout}`).not.toMatch(/euid=0/);
      }
    } finally {
      if (planted) writeFileSync(join(dirname(planted), 'done'), '');
      await run;
    }
  });
});
