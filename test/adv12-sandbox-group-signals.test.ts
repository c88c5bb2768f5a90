/**
 * Adversarial (today's bubblewrap exec check, die-with-parent.ts EXEC_CHECK): the bash that starts the
 * command inside the sandbox shares its process group. A command that signalled its own group — `kill 0`
 * in a script's clean-up, `process.kill(0, 'SIGTERM')` — and had trapped the signal killed that bash too,
 * and bwrap ended the sandbox at once: status 143, the command cut off mid-way. Before the exec check
 * the group was bwrap's pid 1 (which ignores such signals) and the command, which went on.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createSandbox } from '../src/rmapp/sandbox/index.ts';

const sandbox = createSandbox({ driver: 'bubblewrap' });
let workspace = '';
beforeAll(async () => {
  workspace = await mkdtemp(join(tmpdir(), 'adv12-group-signals-'));
});
afterAll(async () => {
  await rm(workspace, { recursive: true, force: true });
});

it.each([
  ['TERM, ignored', 'trap "" TERM; kill 0; echo after; exit 0', 0, 'after\n'],
  ['TERM, trapped', 'trap "echo got-term" TERM; kill -TERM 0; sleep 0.2; echo after; exit 5', 5, 'got-term\nafter\n'],
  ['HUP, trapped', 'trap "echo got-hup" HUP; kill -HUP 0; sleep 0.2; echo after; exit 3', 3, 'got-hup\nafter\n'],
  ['USR1, trapped', 'trap "echo got-usr1" USR1; kill -USR1 0; sleep 0.2; echo after; exit 4', 4, 'got-usr1\nafter\n'],
])('a command that sends its own process group %s goes on and ends with its own status', async (_what, script, status, output) => {
  const r = await sandbox.run({ argv: ['/bin/bash', '-c', script], workspace, timeoutMs: 30_000 });
  expect({ status: r.exitCode, stdout: r.stdout, stderr: r.stderr }).toEqual({ status, stdout: output, stderr: '' });
});

it("the status is the command's own also when it exits the moment its signal reaches the exec check (20 runs)", async () => {
  const statuses: (number | null)[] = [];
  for (let i = 0; i < 20; i += 1) {
    const r = await sandbox.run({ argv: ['/bin/bash', '-c', 'trap "" TERM; kill -TERM 0; exit 5'], workspace, timeoutMs: 30_000 });
    statuses.push(r.exitCode);
  }
  expect(statuses).toEqual(Array(20).fill(5));
});

it('a command killed by the signal it sends its group still reports 128 + its number', async () => {
  const r = await sandbox.run({ argv: ['/bin/bash', '-c', 'kill -INT 0; sleep 5; echo not-reached'], workspace, timeoutMs: 30_000 });
  expect({ status: r.exitCode, stdout: r.stdout }).toEqual({ status: 130, stdout: '' });
});

it('the command starts with no signal ignored or blocked (the exec check ignores them, the command does not inherit that)', async () => {
  const r = await sandbox.run({ argv: ['/bin/grep', '-E', '^Sig(Ign|Blk)', '/proc/self/status'], workspace, timeoutMs: 30_000 });
  expect(r.stdout).toBe('SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n');
});
