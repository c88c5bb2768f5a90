/**
 * The egress proxy's socket folder (`/run/rmapp` inside) is the sandbox's to write, on the host under
 * tmpdir. A command that left a tree there deeper than PATH_MAX made the sandbox's clean-up (Node's `rm`,
 * which works by full paths) fail with ENAMETOOLONG: the command's result was replaced by that error —
 * quoting the folder's host path — and the folder stayed on the host's disk for good. The workspace's
 * removal already falls back to `rm -rf` for this (workspace-access.ts `removeTree`).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createSandbox } from '../src/rmapp/sandbox/index.ts';
import { plantedUnderTmp } from './helpers/sandbox.ts';

const root = mkdtempSync(join(tmpdir(), 'sb-socket-dir-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("the egress proxy's socket folder after a command", () => {
  it('is removed, and the result kept, when the command left a tree deeper than PATH_MAX there', async () => {
    const sandbox = createSandbox({ driver: 'bubblewrap', network: ['example.com'] });
    const top = `deep-${randomUUID()}`;
    const name = 'd'.repeat(50);
    const script = `cd /run/rmapp && mkdir ${top} && cd ${top} && for i in $(seq 1 120); do mkdir ${name} && cd ${name} || exit 1; done; echo made`;
    const result = await sandbox
      .run({ argv: ['/bin/bash', '-c', script], workspace: mkdtempSync(join(root, 'ws-')), timeoutMs: 60_000 })
      .then(
        (r) => `exit ${r.exitCode}: ${r.stdout.trim()}`,
        (err: Error) => `rejected: ${err.message.slice(0, 200)}`,
      );
    expect(result, 'sandbox/index.ts replaced the result with its clean-up error').toBe('exit 0: made');
    expect(plantedUnderTmp('rmapp-net-', top), 'the socket folder left on the host').toBeNull();
  });
});
