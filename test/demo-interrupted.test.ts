/**
 * Ctrl-C in `rmapp demo` while its runs work: the process ended without a word. It now stops as `start
 * --wait` does (running steps get the demo's grace, a second Ctrl-C ends at once) and says which run did
 * not finish, that nothing resumes it (its local GitHub ended with the demo), and how to look at it —
 * a command that works once the demo is gone.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { BIN } from './helpers/processes.ts';

const dir = mkdtempSync(join(tmpdir(), 'rmapp-demo-stop-'));
const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(GITHUB_|DATABASE_URL$|RMAPP_(?!SANDBOX))/.test(name)));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `rmapp <args>` in the demo's folder, to its end. */
function rmapp(args: string[], extra: Record<string, string> = {}) {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: dir, env: { ...env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { child, exited, stdout: () => stdout, stderr: () => stderr };
}

it('Ctrl-C while a run works says that it did not finish, why nothing resumes it, and how to look at it', async () => {
  const demo = rmapp(['demo', '--port', '0']);
  const started = await new Promise<string | null>((resolve) => {
    demo.child.stderr.on('data', () => {
      const id = /IssueImplementation started: \S+\/runs\/(\S+)/.exec(demo.stderr())?.[1];
      if (id) resolve(decodeURIComponent(id));
    });
    void demo.exited.then(() => resolve(null));
  });
  expect(started, `the run did not start: ${demo.stderr()}`).not.toBeNull();
  const id = started as string;
  demo.child.kill('SIGINT');
  expect(await demo.exited, demo.stderr()).toBe(130);
  const said = demo
    .stderr()
    .split('\n')
    .filter((l) => /SIGINT/.test(l) || /nothing resumes/.test(l));
  expect(said, demo.stderr()).toEqual([
    'rmapp demo: SIGINT, stopping: running steps finish (up to 5 s), then the demo stops with its runs where they are; SIGINT again stops at once.',
    expect.stringMatching(
      new RegExp(`^rmapp demo: stopped by SIGINT; run ${id} \\(IssueImplementation\\) did not finish \\(it was (running|waiting|pending)`),
    ),
    `rmapp demo: nothing resumes it: the demo's runs work against its local GitHub, which stopped with it. \`rmapp demo\` starts over (it empties .rmapp/demo/); until then \`RMAPP_DATA_DIR=.rmapp/demo/pgdata rmapp runs show ${id}\` shows how far it got.`,
  ]);
  // The command it names works, in the demo's folder, once the demo is gone.
  const show = rmapp(['runs', 'show', id], { RMAPP_DATA_DIR: '.rmapp/demo/pgdata' });
  expect(await show.exited, show.stderr()).toBe(0);
  expect(show.stdout()).toContain(id);
}, 180_000);
