/**
 * What a command run under the `none` driver's guard (src/rmapp/sandbox/die-with-parent.ts) prints and
 * reports is its own, as under bubblewrap: the guard adds nothing to its output.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createSandbox } from '../src/rmapp/sandbox/index.ts';

const linux = process.platform === 'linux';
const sandbox = createSandbox({ driver: 'none' });
const workspace = mkdtempSync(join(tmpdir(), 'rmapp-guard-plumbing-'));
afterAll(() => rmSync(workspace, { recursive: true, force: true }));

const run = (argv: string[]) => sandbox.run({ argv, workspace, timeoutMs: 60_000 });

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
});
