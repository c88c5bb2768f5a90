/** `rmapp run <template> --repo … --issue n`: one workflow in the foreground with live progress, as a real child process. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCommand } from '../src/rmapp/process.ts';
import { createGitHubWorld, type GitHubWorld } from './helpers/github-world.ts';
import { runRmapp } from './helpers/processes.ts';

let world: GitHubWorld;
let env: Record<string, string | undefined>;

beforeAll(async () => {
  world = await createGitHubWorld();
  const tmp = mkdtempSync(join(tmpdir(), 'rmapp-cli-run-'));
  env = {
    GITHUB_TOKEN: 't0ken',
    GITHUB_API_URL: world.emulator.url,
    GITHUB_WEBHOOK_SECRET: undefined,
    RMAPP_GIT_URL: world.remote.replace('widgets.git', '{repo}.git'),
    RMAPP_AGENT_COMMAND: JSON.stringify(world.deps.agent.command),
    RMAPP_TEST_COMMAND: JSON.stringify(world.deps.tests.command),
    RMAPP_WORKSPACE_ROOT: join(tmp, 'ws'),
    RMAPP_DATA_DIR: join(tmp, 'pgdata'),
    DATABASE_URL: undefined,
  };
});
afterAll(async () => world?.stop());

it('runs a template in the foreground, printing each state and step, and exits 0 with the PR', async () => {
  world.emulator.issues.set('acme/widgets#31', { title: 'CLI run', body: 'PLAN do it\nWRITE impl.txt right' });
  const r = await runRmapp(['run', 'simple', '--repo', 'acme/widgets', '--issue', '31'], env);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  for (const line of ['→ analyzing', '→ planning', '→ implementing', '  implement (attempt 1)…', '→ testing', '→ creatingPR', '→ complete'])
    expect(r.stdout).toContain(line);
  expect(r.stdout).toMatch(/succeeded/);
  expect((world.emulator.pulls.get('acme/widgets') ?? []).filter((p) => p.head === 'rmapp/issue-31')).toHaveLength(1);
}, 120_000);

it('--json prints one JSON object per line; a local clone is the git remote; a failing run exits 1', async () => {
  const clone = join(mkdtempSync(join(tmpdir(), 'rmapp-clone-')), 'widgets');
  await runCommand(['git', 'clone', '-q', world.remote, clone]);
  await runCommand(['git', 'remote', 'set-url', 'origin', 'https://github.com/acme/widgets.git'], { cwd: clone });
  world.emulator.issues.set('acme/widgets#32', {
    title: 'Never passes',
    body: 'PLAN try\nWRITE impl.txt wrong\nIF_FAILED WRITE impl.txt still-wrong',
  });
  const r = await runRmapp(['run', 'simple', '--repo', clone, '--issue', '32', '--max-attempts', '2', '--json'], env);
  expect(r.code).toBe(1);
  const lines = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { event: string; state?: string; run?: { status: string; error: { category: string } } });
  expect(lines.filter((l) => l.event === 'state').map((l) => l.state)).toEqual([
    'analyzing',
    'planning',
    'openingDraftPR',
    'implementing',
    'testing',
    'implementing',
    'testing',
    'reportingFailure',
    'failed',
  ]);
  const last = lines.at(-1);
  expect(last?.event).toBe('finished');
  expect(last?.run?.status).toBe('failed');
  expect(last?.run?.error.category).toBe('test_failure');
  const branch = await runCommand(['git', 'rev-parse', '--verify', 'refs/heads/rmapp/issue-32'], { cwd: clone });
  expect(branch.exitCode).toBe(0);
});

it('names a bad template or repository', async () => {
  const bad = await runRmapp(['run', 'rocket', '--repo', 'acme/widgets', '--issue', '1'], env);
  expect(bad.code).toBe(1);
  expect(bad.stderr).toMatch(/Unknown template "rocket": use one of simple, feature, bugfix, docs/);
  const repo = await runRmapp(['run', 'simple', '--repo', 'not a repo', '--issue', '1'], env);
  expect(repo.stderr).toMatch(/--repo not a repo: use owner\/name/);
});
