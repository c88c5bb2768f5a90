/**
 * Adversarial: a line of the agent's output that the adapter cannot take — a tool call whose input is
 * JSON nested 200,000 deep (JSON.parse reads it, JSON.stringify overflows the stack) — used to kill the
 * session with "Maximum call stack size exceeded". It is kept as text and the session goes on.
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runAgent } from '../src/rmapp/agent-runner.ts';
import { createSandbox } from '../src/rmapp/sandbox/index.ts';

let dir: string;
let agent: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'adv-output-'));
  agent = join(dir, 'deep-claude.mjs');
  await writeFile(
    agent,
    `const deep = '['.repeat(200000) + ']'.repeat(200000);
     process.stdout.write('{"type":"assistant","message":{"id":"m","content":[{"type":"tool_use","name":"x","input":' + deep + '}]}}\\n');
     process.stdout.write(JSON.stringify({ type: 'result', subtype: 'success', result: 'all done' }) + '\\n');`,
  );
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

it('a line nested too deep to handle is kept as text; the session still ends with its answer', async () => {
  const result = await runAgent(
    { kind: 'claude-code', command: [process.execPath, agent], timeoutMs: 30_000, sandbox: createSandbox({ driver: 'none' }) },
    { cwd: dir, prompt: 'task' },
  );
  expect(result.text).toBe('all done');
  expect(result.transcript.status).toBe('succeeded');
  const error = result.transcript.entries.find((e) => e.kind === 'error');
  expect(error && 'text' in error ? error.text : '').toContain('could not read a line');
  expect(result.transcript.entries.some((e) => e.kind === 'output' && e.text.startsWith('{"type":"assistant"'))).toBe(true);
});

it("an agent that fails quoting its workspace's host path does not put the service's layout in the message", async () => {
  const leaky = join(dir, 'leaky.mjs');
  await writeFile(leaky, `process.stderr.write('host workspace: ' + process.cwd() + '/src\\n'); process.exit(3);`);
  const err = await runAgent(
    { kind: 'command', command: [process.execPath, leaky], timeoutMs: 30_000, sandbox: createSandbox({ driver: 'none' }) },
    { cwd: dir, prompt: 'task' },
  ).catch((e: unknown) => e as Error);
  expect(err).toBeInstanceOf(Error);
  expect((err as Error).message).toContain('host workspace: /workspace/src');
  expect(JSON.stringify(err), 'the host path reached the error').not.toContain(dir);
  expect((err as Error).message).not.toContain(dir);
});

it("an agent that succeeds quoting its workspace's host path and their folder does not put them in its summary", async () => {
  // A summary repeating /proc/1/cmdline (bwrap's --bind <host path> /workspace) reached the PR description.
  const leaky = join(dir, 'leaky-summary.mjs');
  await writeFile(
    leaky,
    `import { dirname } from 'node:path'; process.stdout.write('done in ' + process.cwd() + ' next to ' + dirname(process.cwd()) + '/other\\n');`,
  );
  const workspace = join(dir, 'workspaces', 'acme_widgets_issues_1');
  await mkdir(workspace, { recursive: true });
  const result = await runAgent(
    { kind: 'command', command: [process.execPath, leaky], timeoutMs: 30_000, sandbox: createSandbox({ driver: 'none' }) },
    { cwd: workspace, prompt: 'task' },
  );
  expect(result.text.trim()).toBe('done in /workspace next to /workspace/../other');
  expect(result.text, 'the host path reached the summary').not.toContain(dir);
});

it('the host path is hidden under the name the kernel shows too (a symlinked workspaces root), and JSON-escaped', async () => {
  // The workspace's path as the service gave it went; its real path (the kernel resolves the link:
  // process.cwd() and /proc/self/mountinfo show it) stayed in the summary.
  const real = join(dir, 'real-root');
  await mkdir(join(real, 'acme_widgets_issues_2'), { recursive: true });
  await symlink(real, join(dir, 'linked-root'));
  const leaky = join(dir, 'leaky-real.mjs');
  await writeFile(
    leaky,
    `process.stdout.write('at ' + process.cwd() + ' ' + JSON.stringify(process.cwd()).replaceAll('/', '\\\\/') + '\\n');`,
  );
  const result = await runAgent(
    { kind: 'command', command: [process.execPath, leaky], timeoutMs: 30_000, sandbox: createSandbox({ driver: 'none' }) },
    { cwd: join(dir, 'linked-root', 'acme_widgets_issues_2'), prompt: 'task' },
  );
  expect(result.text.trim()).toBe('at /workspace "\\/workspace"');
  expect(result.text, 'the real host path reached the summary').not.toContain(dir);
});
