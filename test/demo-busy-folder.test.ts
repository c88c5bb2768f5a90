/**
 * A second `rmapp demo` in a folder where one is running is refused before it removes anything
 * (src/rmapp/demo/demo-folder.ts). An outside tester's second demo emptied `.rmapp/demo/` under the
 * first — its store, its git remote, its workspaces — and exited 0, while the first one's runs failed
 * with PGlite's `could not create directory "base/5": File exists` and git's `src refspec HEAD does not
 * match any`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { BIN } from './helpers/processes.ts';

const dir = realpathSync(mkdtempSync(join(tmpdir(), 'rmapp-demo-busy-')));
const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(GITHUB_|DATABASE_URL$|RMAPP_(?!SANDBOX))/.test(name)));
const started: ChildProcess[] = [];
afterAll(() => {
  // Each demo leads its own process group (its agents and tests run below it): the whole group goes.
  for (const child of started) if (child.exitCode === null && child.signalCode === null) process.kill(-(child.pid as number), 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** `rmapp demo <args>` in `dir`; resolves when it has printed `until` (true) or exited (its code). */
function demo(args: string[], until: RegExp) {
  const child = spawn(process.execPath, [BIN, 'demo', '--port', '0', ...args], {
    cwd: dir,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(child);
  let stderr = '';
  const reached = new Promise<true | number | null>((resolve) => {
    child.stderr.on('data', (d) => {
      stderr += d;
      if (until.test(stderr)) resolve(true);
    });
    child.on('exit', (code) => resolve(code));
  });
  return { child, reached, stderr: () => stderr };
}

it('a second demo in the same folder is refused naming the first, and the first one’s files are left as they were', async () => {
  const first = demo([], /Dashboard: +\S+/);
  expect(await first.reached, `the first demo did not start: ${first.stderr()}`).toBe(true);
  const home = join(dir, '.rmapp', 'demo');
  const kept = ['pgdata', 'pgdata/PG_VERSION', 'remotes/greeter.git', 'remotes/greeter.git/HEAD'];
  const inodes = () => Object.fromEntries(kept.map((p) => [p, statSync(join(home, p), { throwIfNoEntry: false })?.ino]));
  const before = inodes();
  expect(Object.values(before).every(Boolean), JSON.stringify(before)).toBe(true);

  const second = demo(['--once'], /Dashboard: +\S+/);
  const outcome = await second.reached;
  expect(outcome, `the second demo started beside the first: ${second.stderr()}`).toBe(1);
  expect(second.stderr()).toBe(
    `rmapp: The demo's folder ${home} is in use by process ${first.child.pid}. One rmapp demo runs in a folder at a time ` +
      '(a second one would empty it under the first): stop that process, or run this demo in another folder.\n',
  );
  expect(inodes(), 'files of the first demo removed or replaced by the second').toEqual(before);
  expect(first.child.exitCode, `the first demo ended: ${first.stderr()}`).toBe(null);
}, 120_000);
