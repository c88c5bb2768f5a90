/**
 * `rmapp demo --once --json` as a person runs it: a real child process in an empty folder, with no
 * GitHub settings and no DATABASE_URL. The sample agent implements the issue (the tests fail once,
 * then pass), a PR is opened, the review comment is addressed, and one JSON document says so.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { runCommand } from '../src/rmapp/process.ts';
import { BIN } from './helpers/processes.ts';

it('runs IssueImplementation and PRReview against the local GitHub and prints the runs and the PR as JSON', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rmapp-demo-'));
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(GITHUB_|DATABASE_URL$|RMAPP_(?!SANDBOX))/.test(name)));
  const child = spawn(process.execPath, [BIN, 'demo', '--once', '--json', '--port', '0'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  expect(code, stderr).toBe(0);
  const result = JSON.parse(stdout) as { runs: { id: string; workflow: string; status: string }[]; pullRequest: { number: number; url: string } };
  expect(result.runs.map((r) => `${r.workflow} ${r.status}`)).toEqual(['IssueImplementation succeeded', 'PRReview succeeded']);
  expect(result.runs[0]?.id).toMatch(/^demo\/greeter\/issues\/1\//);
  expect(result.runs[1]?.id).toMatch(new RegExp(`^demo/greeter/pulls/${result.pullRequest.number}/`));
  expect(result.pullRequest.url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:\\d+/demo/greeter/pull/${result.pullRequest.number}$`));
  expect(stderr).toContain(`rmapp demo: Pull request #${result.pullRequest.number}: ${result.pullRequest.url}`);

  // Everything it made is under .rmapp/demo/: the PGlite data, the workspaces and the git remote.
  expect(readdirSync(dir)).toEqual(['.rmapp']);
  const remote = join(dir, '.rmapp', 'demo', 'remotes', 'greeter.git');
  const log = (await runCommand(['git', 'log', '--reverse', '--format=%s', 'main..rmapp/issue-1'], { cwd: remote })).stdout.trim().split('\n');
  expect(log).toEqual([
    'rmapp: plan for #1 (tasks/issue-1.yml)',
    'rmapp: greet() should say "Hello, <name>!" (#1), attempt 1',
    'rmapp: greet() should say "Hello, <name>!" (#1), attempt 2',
    expect.stringMatching(/^rmapp: address review comment \d+ by @ada$/),
  ]);
  expect((await runCommand(['git', 'show', 'rmapp/issue-1:greet.mjs'], { cwd: remote })).stdout).toBe("export const greet = (name = 'world') => 'Hello, ' + name + '!';\n");
});
