/**
 * A repository's `.github/rmapp.yml` (src/rmapp/repository-config.ts) is read from its default branch —
 * never from the branch being worked on, which the agent or a pull request's author controls — and a
 * wrong file is refused with each key and its fix named.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { toErrorData } from '../src/index.ts';
import { runCommand } from '../src/rmapp/process.ts';
import { Workspaces } from '../src/rmapp/workspace.ts';
import { parseRepositoryConfig, protectedChanges } from '../src/rmapp/repository-config.ts';
import { runChecks } from '../src/rmapp/repository-commands.ts';
import { createSandbox } from '../src/rmapp/sandbox/index.ts';
import { createBareRemote } from './helpers/git-remote.ts';
import { ROOT } from './helpers/processes.ts';

it('reads the hosts from the default branch, ignores the working branch, and names a wrong file', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'rmapp-policy-'));
  const remote = await createBareRemote(tmp, 'widgets', { 'README.md': 'x\n' });
  // .github/ needs a directory: commit the file through a clone.
  const seed = join(tmp, 'seed');
  const git = (cwd: string, ...args: string[]) => runCommand(['git', '-c', 'user.name=t', '-c', 'user.email=t@x', ...args], { cwd });
  await git(tmp, 'clone', '-q', remote, seed);
  await runCommand(['mkdir', '-p', join(seed, '.github')]);
  await runCommand([
    'sh',
    '-c',
    `printf 'sandbox:\\n  network: [registry.npmjs.org, "*.pythonhosted.org"]\\n' > ${join(seed, '.github/rmapp.yml')}`,
  ]);
  await git(seed, 'add', '-A');
  await git(seed, 'commit', '-qm', 'policy');
  await git(seed, 'push', '-q', 'origin', 'HEAD:main');

  const workspaces = new Workspaces({ root: join(tmp, 'runs'), author: { name: 'rmapp', email: 'rmapp@example.com' } });
  const ws = await workspaces.prepare({ runId: 'p-1', remoteUrl: remote, branch: 'rmapp/issue-1', base: 'main' });
  // The working branch asks for more: ignored.
  await runCommand(['sh', '-c', `printf 'sandbox:\\n  network: [evil.example.com]\\n' > .github/rmapp.yml`], { cwd: ws.dir });
  await workspaces.commitAll(ws, 'widen the network');
  expect((await workspaces.repositorySettings(ws, 'main')).config.network).toEqual(['registry.npmjs.org', '*.pythonhosted.org']);
  // The same file read from the cached mirror, before any workspace exists (a command being checked).
  expect((await workspaces.repositorySettingsOf(remote)).config.network).toEqual(['registry.npmjs.org', '*.pythonhosted.org']);

  expect(parseRepositoryConfig('')).toEqual({
    setup: [],
    protectedPaths: [],
    network: [],
    limits: {},
    instructions: undefined,
    lint: undefined,
    test: undefined,
  });
  for (const [text, problem] of [
    ['sandbox:\n  network: ["bad host!"]\n', /`sandbox\.network\.0`: must be a host name/],
    ['sandbox:\n  netwrk: []\n', /`sandbox\.netwrk`: unknown setting "netwrk" \(did you mean "network"\?\)/],
    ['sandbox: [\n', /is not valid YAML/],
    ['- npm test\n', /must be a mapping of settings/],
    ['test: ""\n', /`test`: Invalid input — expected one command, e\.g\. test: npm test/],
    ['limits:\n  testTimeout: soon\n', /`limits\.testTimeout`: Invalid duration "soon"/],
    ['protectedPaths: ["../etc/passwd"]\n', /`protectedPaths\.0`: must be a path inside the repository/],
  ] as const) {
    const err = (() => {
      try {
        return parseRepositoryConfig(text);
      } catch (e) {
        return e;
      }
    })();
    expect(toErrorData(err), text).toMatchObject({ category: 'validation' });
    expect((err as Error).message, text).toMatch(problem);
  }
});

it('parses every key: commands as argv arrays or words (never a shell), durations, limits', () => {
  const config = parseRepositoryConfig(
    [
      'setup: ["npm ci", [node, scripts/seed.js, "two words"]]',
      'test: npm test -- --reporter=dot',
      'lint: [npx, eslint, .]',
      'instructions: |',
      '  Use tabs.',
      'protectedPaths: [migrations/**, "*.lock", .github/workflows]',
      'limits: { setupTimeout: 10m, testTimeout: 90s, maxTestAttempts: 5 }',
    ].join('\n'),
  );
  expect(config).toEqual({
    setup: [
      ['npm', 'ci'],
      ['node', 'scripts/seed.js', 'two words'],
    ],
    test: ['npm', 'test', '--', '--reporter=dot'],
    lint: ['npx', 'eslint', '.'],
    instructions: 'Use tabs.',
    protectedPaths: ['migrations/**', '*.lock', '.github/workflows'],
    network: [],
    limits: { setupTimeoutMs: 600_000, testTimeoutMs: 90_000, maxTestAttempts: 5 },
  });
  // A string command with shell syntax is words, not a script: `&&` is an argument.
  expect(parseRepositoryConfig('test: npm ci && npm test\n').test).toEqual(['npm', 'ci', '&&', 'npm', 'test']);
});

it('matches protected paths: ** at any depth, * and ? within a name, bare names anywhere, directories with what is below', () => {
  const globs = ['migrations/**', '*.lock', '.github/workflows', 'docs/?.md'];
  const changed = [
    'migrations/001.sql',
    'db/migrations/x.sql',
    'package.lock',
    'sub/yarn.lock',
    '.github/workflows/ci.yml',
    'docs/a.md',
    'docs/ab.md',
    'src/lock.ts',
  ];
  expect(protectedChanges(changed, globs)).toEqual([
    { path: 'migrations/001.sql', glob: 'migrations/**' },
    { path: 'package.lock', glob: '*.lock' },
    { path: 'sub/yarn.lock', glob: '*.lock' },
    { path: '.github/workflows/ci.yml', glob: '.github/workflows' },
    { path: 'docs/a.md', glob: 'docs/?.md' },
  ]);
});

it('runs the lint command after passing tests, and a failing lint is a failed check that says so', async () => {
  const sandbox = createSandbox({ driver: 'none' });
  const cwd = mkdtempSync(join(tmpdir(), 'rmapp-checks-'));
  const tests = { command: ['node', '-e', 'process.exit(1)'], timeoutMs: 20_000, sandbox };
  const settings = (lint: string[] | undefined) => ({
    config: { ...parseRepositoryConfig('test: [node, -e, "console.log(\'tests ok\')"]\n'), lint },
    instructionFiles: [],
  });
  // The repository's test command replaced the service's failing one.
  expect(await runChecks(tests, settings(undefined), { cwd })).toEqual({ passed: true, output: 'tests ok\n' });
  const failed = await runChecks(tests, settings(['node', '-e', "console.log('src/a.ts: no-console'); process.exit(1)"]), { cwd });
  expect(failed.passed).toBe(false);
  expect(failed.output).toBe(
    "The tests passed, but the lint command `node -e console.log('src/a.ts: no-console'); process.exit(1)` of .github/rmapp.yml failed:\n\nsrc/a.ts: no-console\n",
  );
  expect((await runChecks(tests, settings(['node', '-e', '0']), { cwd })).passed).toBe(true);
});

it("the README's .github/rmapp.yml example is a valid file", () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const example = /```yaml\n(# \.github\/rmapp\.yml\n[\s\S]*?)```/.exec(readme)?.[1];
  expect(example, 'the README has no .github/rmapp.yml example').toBeDefined();
  const config = parseRepositoryConfig(example as string);
  expect(config.setup).toHaveLength(2);
  expect(config.protectedPaths).toEqual(['.github/**', 'migrations/*.sql', '*.lock']);
  expect(config.limits).toEqual({ setupTimeoutMs: 600_000, testTimeoutMs: 900_000, maxTestAttempts: 2 });
});
