/**
 * Workspaces with real git against a local bare "remote", the coding agent as a real external command
 * (a scripted one), and the test runner. Untrusted text never reaches a shell.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { runAgent, runTests } from '../src/rmapp/agent-runner.ts';
import { runCommand } from '../src/rmapp/process.ts';
import { checkBranchName, Workspaces } from '../src/rmapp/workspace.ts';
import { toErrorData } from '../src/index.ts';
import { ROOT } from './helpers/processes.ts';
import { testSandbox } from './helpers/sandbox.ts';

const AGENT = ['node', join(ROOT, 'src/rmapp/demo/scripted-agent.mjs')];
let tmp: string;
let remote: string;
let workspaces: Workspaces;
const git = async (cwd: string, ...args: string[]) => (await runCommand(['git', ...args], { cwd })).stdout.trim();

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'rmapp-ws-'));
  remote = join(tmp, 'remote.git');
  await runCommand(['git', 'init', '-q', '--bare', '-b', 'main', remote]);
  const seed = join(tmp, 'seed');
  await runCommand(['git', 'clone', '-q', remote, seed]);
  writeFileSync(join(seed, 'README.md'), '# widgets\n');
  await runCommand(['git', '-c', 'user.name=t', '-c', 'user.email=t@x', 'commit', '-q', '--allow-empty', '-m', 'init'], { cwd: seed });
  await git(seed, 'add', '-A');
  await runCommand(['git', '-c', 'user.name=t', '-c', 'user.email=t@x', 'commit', '-q', '-m', 'readme'], { cwd: seed });
  await git(seed, 'push', '-q', 'origin', 'HEAD:main');
  workspaces = new Workspaces({ root: join(tmp, 'runs'), author: { name: 'rmapp', email: 'rmapp@example.com' } });
});

it('prepares a workspace on the run branch, commits once per change, pushes, and resumes it as left', async () => {
  const ws = await workspaces.prepare({ runId: 'run-1', remoteUrl: remote, branch: 'rmapp/issue-1', base: 'main' });
  expect(await git(ws.dir, 'rev-parse', '--abbrev-ref', 'HEAD')).toBe('rmapp/issue-1');
  expect(readFileSync(join(ws.dir, 'README.md'), 'utf8')).toBe('# widgets\n');
  writeFileSync(join(ws.dir, 'fix.txt'), 'fixed\n');
  const message = 'Fix #1: "quotes" $(touch pwned) `and` ; rm -rf /';
  const first = await workspaces.commitAll(ws, message);
  const again = await workspaces.commitAll(ws, message);
  expect(first.committed).toBe(true);
  // The re-run finds the commit the first made (by its subject), so it can still report it.
  expect(again).toEqual({ committed: false, sha: first.sha, earlier: first.sha });
  expect((await workspaces.commitAll(ws, 'another message')).earlier).toBeNull();
  expect(await git(ws.dir, 'log', '-1', '--format=%s')).toBe(message);
  expect(existsSync(join(ws.dir, 'pwned'))).toBe(false);
  await workspaces.push(ws);
  await workspaces.push(ws); // nothing new: a no-op
  expect(await git(remote, 'rev-parse', 'refs/heads/rmapp/issue-1')).toBe(first.sha);
  expect(await git(remote, 'rev-list', '--count', 'refs/heads/rmapp/issue-1')).toBe('3');

  const resumed = await workspaces.prepare({ runId: 'run-1', remoteUrl: remote, branch: 'rmapp/issue-1', base: 'main' });
  expect(resumed.dir).toBe(ws.dir);
  expect(await git(resumed.dir, 'rev-parse', 'HEAD')).toBe(first.sha);

  // Another run on the same branch (a PR's head) starts from what the remote has.
  const other = await workspaces.prepare({ runId: 'run-2', remoteUrl: remote, branch: 'rmapp/issue-1', base: 'main' });
  expect(readFileSync(join(other.dir, 'fix.txt'), 'utf8')).toBe('fixed\n');
  await workspaces.remove(other);
  expect(existsSync(other.dir)).toBe(false);
});

it('rejects branch names git would take as options or refuse', async () => {
  for (const bad of ['--upload-pack=touch pwned', 'a..b', 'has space', '']) {
    await expect(checkBranchName(bad)).rejects.toThrow(/not a usable branch name/);
  }
  await expect(workspaces.prepare({ runId: 'run-3', remoteUrl: remote, branch: '-x', base: 'main' })).rejects.toThrow(
    /not a usable branch name/,
  );
});

it('runs the agent with the prompt on stdin in the workspace; untrusted text is never a shell command', async () => {
  const ws = await workspaces.prepare({ runId: 'run-4', remoteUrl: remote, branch: 'rmapp/issue-4', base: 'main' });
  const prompt = 'Issue: $(touch pwned) `touch pwned2`; rm -rf ~\nWRITE impl.txt implemented';
  const result = await runAgent({ command: AGENT, timeoutMs: 10_000, sandbox: testSandbox }, { cwd: ws.dir, prompt });
  expect(JSON.parse(result.stdout)).toMatchObject({ result: 'done', promptBytes: prompt.length });
  expect(readFileSync(join(ws.dir, 'impl.txt'), 'utf8')).toBe('implemented\n');
  expect(existsSync(join(ws.dir, 'pwned'))).toBe(false);
  expect(existsSync(join(ws.dir, 'pwned2'))).toBe(false);
});

it('an agent that fails is category agent; one that runs too long is category timeout; abort cancels it', async () => {
  const failed = await runAgent({ command: AGENT, timeoutMs: 10_000, sandbox: testSandbox }, { cwd: tmp, prompt: 'FAIL 3' }).catch(
    (e: unknown) => e,
  );
  expect(toErrorData(failed)).toMatchObject({ category: 'agent', code: 'AGENT_FAILED' });
  expect((failed as Error).message).toMatch(/exited with 3: the agent gave up/);
  const slow = await runAgent({ command: AGENT, timeoutMs: 300, sandbox: testSandbox }, { cwd: tmp, prompt: 'SLEEP 10000' }).catch(
    (e: unknown) => e,
  );
  expect(toErrorData(slow)).toMatchObject({ category: 'timeout', code: 'COMMAND_TIMEOUT' });
  const controller = new AbortController();
  const pending = runAgent(
    { command: AGENT, timeoutMs: 10_000, sandbox: testSandbox },
    { cwd: tmp, prompt: 'SLEEP 10000', signal: controller.signal },
  ).catch((e: unknown) => e);
  controller.abort();
  expect(toErrorData(await pending).category).toBe('cancelled');
  const missing = await runAgent(
    { command: ['no-such-agent-binary'], timeoutMs: 1_000, sandbox: testSandbox },
    { cwd: tmp, prompt: '' },
  ).catch((e: unknown) => e);
  expect(toErrorData(missing)).toMatchObject({ category: 'permanent', code: 'COMMAND_NOT_RUNNABLE' });
});

it("runs the repository's tests: failures are a result with their output", async () => {
  const ok = await runTests({ command: ['node', '-e', 'console.log("12 passed")'], timeoutMs: 10_000, sandbox: testSandbox }, { cwd: tmp });
  expect(ok).toMatchObject({ passed: true, exitCode: 0 });
  const bad = await runTests(
    { command: ['node', '-e', 'console.error("1 failed"); process.exit(1)'], timeoutMs: 10_000, sandbox: testSandbox },
    { cwd: tmp },
  );
  expect(bad).toMatchObject({ passed: false, exitCode: 1 });
  expect(bad.output).toContain('1 failed');
});

it('test output that holds NUL bytes, or a character cut in half by the size limit, is kept as storable text', async () => {
  // 64 KiB of emoji after a NUL: the kept tail starts inside a surrogate pair unless the cut is repaired.
  const script = 'process.stdout.write("a\\u0000b\\n" + "😀".repeat(40000) + "x"); process.exit(1)';
  const result = await runTests({ command: ['node', '-e', script], timeoutMs: 10_000, sandbox: testSandbox }, { cwd: tmp });
  expect(result.passed).toBe(false);
  expect(result.output).not.toContain('\0');
  expect(result.output, 'a lone surrogate is left in the output').not.toMatch(
    /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/,
  );
  const nul = await runTests(
    { command: ['node', '-e', 'process.stdout.write("before\\u0000after")'], timeoutMs: 10_000, sandbox: testSandbox },
    { cwd: tmp },
  );
  expect(nul.output).toBe('before\uFFFDafter');
});
