/**
 * Adversarial: what a command starts is stopped with it. Without the sandbox's pid namespace
 * (`sandbox.driver: none`, git), a child that ignores SIGTERM and keeps the pipes open used to keep
 * `runCommand` waiting forever, even after a cancel; and a timeout past setTimeout's 2^31-1 ms used to
 * fire at once.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCommand } from '../src/rmapp/process.ts';
import { until } from './helpers/processes.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'adv-pgroup-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('cancelling stops the command and the child it forked, which ignores SIGTERM and holds stdout', async () => {
  const log = join(dir, 'child.log');
  const script = `
    const { spawn } = require('node:child_process');
    process.on('SIGTERM', () => {});
    spawn('/bin/sh', ['-c', 'trap "" TERM; while true; do echo x >> ${log}; sleep 0.05; done'], { stdio: ['ignore', 'inherit', 'inherit'] });
    console.log('started');
    setInterval(() => {}, 1000);`;
  const ac = new AbortController();
  const run = runCommand([process.execPath, '-e', script], { signal: ac.signal, killGraceMs: 200, timeoutMs: 60_000 });
  // The forked shell has written its first line (a fixed wait could end before it ran, on a loaded machine).
  await until(async () => (await readFile(log, 'utf8').catch(() => '')).length > 0, 20_000, 'the forked child to write');
  ac.abort(new Error('cancelled by the test'));
  // Without the fix this never settles (the test's own timeout fails it).
  await expect(run).rejects.toThrow('cancelled by the test');
  await sleep(100);
  const size = (await readFile(log, 'utf8')).length;
  await sleep(400);
  expect((await readFile(log, 'utf8')).length, 'the forked child is still running after the cancel').toBe(size);
}, 30_000);

it('a command that exits while a background child holds its stdout returns (the child is killed)', async () => {
  const r = await runCommand(['/bin/sh', '-c', 'sleep 60 & echo done'], { killGraceMs: 200, timeoutMs: 60_000 });
  expect(r.exitCode).toBe(0);
  expect(r.stdout).toBe('done\n');
}, 10_000);

it('a timeout longer than setTimeout can hold does not fire at once', async () => {
  const r = await runCommand(['/bin/sh', '-c', 'sleep 0.3; echo ok'], { timeoutMs: 30 * 24 * 3600_000 });
  expect(r.exitCode).toBe(0);
  expect(r.stdout).toBe('ok\n');
});

it('a command still running when the service exits is killed with it (its own process group is not left behind)', async () => {
  const pidFile = join(dir, 'orphan.pid');
  const service = `
    import { runCommand } from ${JSON.stringify(new URL('../src/rmapp/process.ts', import.meta.url).href)};
    void runCommand(['/bin/sh', '-c', 'echo $$ > ${pidFile}; exec sleep 60']);
    setTimeout(() => process.exit(0), 500);`;
  const r = await runCommand([process.execPath, '--import', 'tsx', '--input-type=module', '-e', service], { timeoutMs: 30_000 });
  expect(r.exitCode, r.stderr).toBe(0);
  const pid = Number((await readFile(pidFile, 'utf8')).trim());
  // Running (not a zombie waiting for its reaper) two seconds after the service exited.
  const running = async () => {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
    return stat !== null && !/^\d+ \(.*\) Z/.test(stat);
  };
  let alive = await running();
  for (let i = 0; i < 20 && alive; i += 1) {
    await sleep(100);
    alive = await running();
  }
  expect(alive, `the command (pid ${pid}) outlived the service`).toBe(false);
}, 20_000);
