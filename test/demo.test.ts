/**
 * `rmapp demo --once --json` as a person runs it: a real child process in an empty folder, with no
 * GitHub settings and no DATABASE_URL. The sample agent implements the issue (the tests fail once,
 * then pass), a PR is opened, the review comment is addressed, and one JSON document says so. Chromium
 * (Debian's, via playwright-core) watches the dashboard meanwhile: the runs appear without a reload,
 * through the live stream; the README's screenshots of the list and the local GitHub are taken here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, expect, it } from 'vitest';
import { runCommand } from '../src/rmapp/process.ts';
import { BIN } from './helpers/processes.ts';
import { screenshotPath } from './helpers/screenshots.ts';

let browser: Browser | undefined;
/** The demo without --once runs until SIGTERM: a failed test must not leave it running. */
let demo: ChildProcess | undefined;
afterAll(async () => {
  if (demo && demo.exitCode === null && demo.signalCode === null) demo.kill('SIGKILL');
  await browser?.close();
});

it('runs IssueImplementation and PRReview against the local GitHub, live on the dashboard, prints the runs and the PR as JSON, and stays up until Ctrl-C', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rmapp-demo-'));
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(GITHUB_|DATABASE_URL$|RMAPP_(?!SANDBOX))/.test(name)));
  // Without --once the demo keeps its dashboard and local GitHub up after both runs until SIGTERM: the
  // pages below are read then. With --once it ended when PRReview did, and a page opened after PRReview
  // had started could find the local GitHub gone (a clean-clone CI run saw ERR_CONNECTION_REFUSED).
  const child = spawn(process.execPath, [BIN, 'demo', '--json', '--port', '0'], {
    cwd: dir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  demo = child;
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  const urls = new Promise<{ dashboard: string; github: string }>((resolve) =>
    child.stderr.on('data', (d) => {
      stderr += d;
      const dashboard = /Dashboard: +(\S+)/.exec(stderr)?.[1];
      const github = /Local GitHub: +(\S+)/.exec(stderr)?.[1];
      if (dashboard && github) resolve({ dashboard, github });
    }),
  );
  // Registered after the listener above, which appends to `stderr`.
  const bothEnded = new Promise<void>((resolve) =>
    child.stderr.on(
      'data',
      () => /both runs have ended; the dashboard and the local GitHub stay up until Ctrl-C/.test(stderr) && resolve(),
    ),
  );
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));

  // The dashboard, opened once the demo serves it: its runs appear and move on without a reload.
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox'] });
  const { dashboard, github } = await Promise.race([
    urls,
    exited.then((code) => Promise.reject(new Error(`rmapp demo exited (${code}) before serving: ${stderr}`))),
  ]);
  const page = await browser.newPage({ viewport: { width: 1400, height: 700 } });
  await page.goto(dashboard);
  await page.evaluate(() => ((globalThis as unknown as { notReloaded: boolean }).notReloaded = true));
  await page.locator('#live[data-mode="stream"]').waitFor();
  await page.locator('#runs tr:has(td:text-is("IssueImplementation")) [data-status="succeeded"]').waitFor({ timeout: 120_000 });
  // PRReview starts once the PR exists, long after the page loaded.
  await page.locator('#runs tr:has(td:text-is("PRReview"))').waitFor({ timeout: 60_000 });
  await Promise.race([bothEnded, exited.then((code) => Promise.reject(new Error(`rmapp demo exited (${code}) before Ctrl-C: ${stderr}`)))]);
  await page.locator('#runs tr:has(td:text-is("PRReview")) [data-status="succeeded"]').waitFor({ timeout: 30_000 });
  expect(await page.evaluate(() => (globalThis as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
  await page.screenshot({ path: screenshotPath('dashboard-runs.png') });
  const issue = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  await issue.goto(`${github}demo/greeter/issues/1`);
  // The progress comment, edited in place as the run went (the page reloads itself every 2 s).
  await issue.locator('.comment.bot pre', { hasText: '- [x] Open the pull request' }).waitFor({ timeout: 30_000 });
  await issue.screenshot({ path: screenshotPath('demo-local-github.png'), fullPage: true });

  expect(child.exitCode, 'the demo ended before Ctrl-C').toBe(null);
  child.kill('SIGTERM');
  const code = await exited;
  expect(code, stderr).toBe(0);
  const result = JSON.parse(stdout) as {
    runs: { id: string; workflow: string; status: string }[];
    pullRequest: { number: number; url: string };
  };
  expect(result.runs.map((r) => `${r.workflow} ${r.status}`)).toEqual(['IssueImplementation succeeded', 'PRReview succeeded']);
  expect(result.runs[0]?.id).toMatch(/^demo\/greeter\/issues\/1\//);
  expect(result.runs[1]?.id).toMatch(new RegExp(`^demo/greeter/pulls/${result.pullRequest.number}/`));
  expect(result.pullRequest.url).toBe(`${github}demo/greeter/pull/${result.pullRequest.number}`);
  expect(stderr).toContain(`rmapp demo: Pull request #${result.pullRequest.number}: ${result.pullRequest.url}`);

  // Everything it made is under .rmapp/demo/: the PGlite data, the workspaces and the git remote.
  expect(readdirSync(dir)).toEqual(['.rmapp']);
  const remote = join(dir, '.rmapp', 'demo', 'remotes', 'greeter.git');
  const log = (await runCommand(['git', 'log', '--reverse', '--format=%s', 'main..rmapp/issue-1'], { cwd: remote })).stdout
    .trim()
    .split('\n');
  expect(log).toEqual([
    'rmapp: plan for #1 (tasks/issue-1.yml)',
    'feat: greet() should say "Hello, <name>!" (#1)',
    'feat: greet() should say "Hello, <name>!" (#1)',
    'review: greet the world when no name is given, and test it',
  ]);
  expect((await runCommand(['git', 'show', 'rmapp/issue-1:greet.mjs'], { cwd: remote })).stdout).toBe(
    "export const greet = (name = 'world') => 'Hello, ' + name + '!';\n",
  );
}, 240_000); // ~35 s on a quiet machine; its waits above add up to more than the default 60 s

it("a real agent's command the demo refuses is named as --agent, not as a variable the user never set", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rmapp-demo-agent-'));
  const r = await runCommand(
    [process.execPath, BIN, 'demo', '--once', '--port', '0', '--agent', '["claude","-p","--output-format","json"]'],
    {
      cwd: dir,
      env: { PATH: process.env.PATH, HOME: dir, RMAPP_AGENT_KIND: 'claude-code' },
      inheritEnv: false,
      timeoutMs: 60_000,
    },
  );
  expect(r.exitCode, r.stderr).toBe(1);
  expect(r.stderr).toContain('--agent: agent.command has --output-format json, but agent.kind claude-code reads stream-json');
  expect(r.stderr).not.toContain('RMAPP_AGENT_COMMAND');
  // The demo's own help shows a command it accepts.
  const help = await runCommand([process.execPath, BIN, 'demo', '--help'], { cwd: dir, timeoutMs: 30_000 });
  expect(help.stdout.replace(/\s+/g, ' ')).toContain(`'["claude","-p"]' with RMAPP_AGENT_KIND=claude-code`);
});
