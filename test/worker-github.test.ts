/**
 * Extra `rmapp worker` processes of a service: with the GitHub settings in their environment they run
 * the GitHub workflows, keep the progress comments and clean workspaces — here a run started by
 * another process (as `rmapp serve` would) on Postgres is executed entirely by a worker process.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/index.ts';
import { loadConfig, secretsOf } from '../src/rmapp/config.ts';
import { createLogger } from '../src/rmapp/logger.ts';
import { marker } from '../src/rmapp/github/writes.ts';
import { githubRuntime } from '../src/rmapp/service.ts';
import { createGitHubWorld, type GitHubWorld } from './helpers/github-world.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { killAll, spawnRmapp, until, type Spawned } from './helpers/processes.ts';

let world: GitHubWorld;
let testDb: TestDatabase;
let engine: Engine;
let worker: Spawned;
let env: Record<string, string | undefined>;

beforeAll(async () => {
  world = await createGitHubWorld();
  testDb = await createTestDatabase();
  const tmp = mkdtempSync(join(tmpdir(), 'rmapp-worker-gh-'));
  env = {
    DATABASE_URL: testDb.url,
    GITHUB_TOKEN: 't0ken',
    GITHUB_API_URL: world.emulator.url,
    GITHUB_WEBHOOK_SECRET: undefined,
    RMAPP_HOST: '0.0.0.0', // a worker serves no HTTP: no dashboard token needed
    RMAPP_GIT_URL: world.remote.replace('widgets.git', '{repo}.git'),
    RMAPP_AGENT_COMMAND: JSON.stringify(world.deps.agent.command),
    RMAPP_TEST_COMMAND: JSON.stringify(world.deps.tests.command),
    RMAPP_WORKSPACE_ROOT: join(tmp, 'ws'),
  };
  // The process that starts runs (like `rmapp serve`) knows the same registry but executes nothing.
  const config = await loadConfig({ env, cwd: tmp, requireWebhookSecret: false, serves: false });
  const runtime = githubRuntime(config, { log: createLogger({ secrets: secretsOf(config) }) });
  engine = createEngine({ database: testDb.url, workflows: runtime.registry.workflows });
  runtime.registry.bind(engine);
  // Succeeded runs kept 2 days: shorter than the 3 days in which webhook deliveries are accepted.
  worker = spawnRmapp(['worker', '--poll-ms', '100', '--retain-succeeded', '2d'], env);
});
afterAll(async () => {
  killAll();
  await engine?.stop();
  await testDb?.drop();
  await world?.stop();
});

it('a worker process with the GitHub settings runs an issue workflow to its PR and keeps its progress comment', async () => {
  world.emulator.issues.set('acme/widgets#51', { title: 'From a worker', body: 'PLAN do\nWRITE impl.txt right' });
  const id = await engine.start(
    'IssueImplementation',
    { owner: 'acme', repo: 'widgets', issueNumber: 51 },
    { runId: 'acme/widgets/issues/51/w1' },
  );
  const run = await engine.waitFor(id, { timeoutMs: 90_000 });
  expect(run.status, worker.output()).toBe('succeeded');
  expect((world.emulator.pulls.get('acme/widgets') ?? []).filter((p) => p.head === 'rmapp/issue-51')).toHaveLength(1);
  await until(
    () =>
      (world.emulator.comments.get('acme/widgets#51') ?? []).some(
        (c) => c.body.includes(marker(`${id}/progress`)) && c.body.includes('✅ Done'),
      ),
    20_000,
    'the worker to write the progress comment',
  );
  expect(worker.output()).toMatch(/IssueImplementation@/);
  // A copy of a delivery sent again once its run is pruned would start the work again: the operator is told.
  expect(worker.output()).toMatch(/finished runs kept 2d, less than the 73h in which GitHub webhook deliveries are accepted/);
});
