/** The workspace sweep: what no run needs goes (succeeded, cancelled, pruned runs; failed ones after a while), the rest stays. */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/index.ts';
import { sweepWorkspaces } from '../src/rmapp/service.ts';
import { Workspaces } from '../src/rmapp/workspace.ts';
import { createGitHubWorld, type GitHubWorld } from './helpers/github-world.ts';
import { hangingWorkflow } from './helpers/durability-workflows.ts';
import { failingWorkflow, sequenceWorkflow } from './helpers/workflows.ts';
import { until } from './helpers/processes.ts';

let world: GitHubWorld;
let engine: Engine;
let workspaces: Workspaces;

beforeAll(async () => {
  world = await createGitHubWorld();
  workspaces = new Workspaces({
    root: join(mkdtempSync(join(tmpdir(), 'rmapp-sweep-')), 'ws'),
    author: { name: 'rmapp', email: 'rmapp@example.com' },
  });
  engine = createEngine({
    database: { url: '', dataDir: 'memory://' },
    workflows: [sequenceWorkflow(1), failingWorkflow(), hangingWorkflow()],
    pollMs: 50,
  });
  await engine.startWorker();
});
afterAll(async () => {
  await engine?.stop({ graceMs: 500 });
  await world?.stop();
});

it('removes the workspaces of succeeded, cancelled and unknown runs, keeps running and recently failed ones', async () => {
  const succeeded = await engine.start('test.sequence', {}, { runId: 'acme/widgets/issues/1/a' });
  const failed = await engine.start('test.fails', {}, { runId: 'acme/widgets/issues/2/b' });
  const running = await engine.start('test.hanging', {}, { runId: 'acme/widgets/issues/3/c' });
  const cancelled = await engine.start('test.hanging', {}, { runId: 'acme/widgets/issues/4/d' });
  await engine.waitFor(succeeded, { timeoutMs: 20_000 });
  await engine.waitFor(failed, { timeoutMs: 20_000 });
  await until(async () => (await engine.get(cancelled)).status === 'running', 20_000, 'the run to start');
  await engine.cancel(cancelled);
  const ids = [succeeded, failed, running, cancelled, 'pruned/run/1'];
  for (const runId of ids) await workspaces.prepare({ runId, remoteUrl: world.remote, branch: 'rmapp/x', base: 'main' });

  const first = await sweepWorkspaces(engine, workspaces, 60_000);
  expect(first.removed.sort()).toEqual([cancelled, 'pruned/run/1', succeeded].sort());
  expect(first.kept).toBe(2);
  expect(existsSync(workspaces.dirOf(failed))).toBe(true);
  expect(existsSync(workspaces.dirOf(running))).toBe(true);

  // Past the time failed runs keep theirs.
  const later = await sweepWorkspaces(engine, workspaces, 0);
  expect(later.removed).toEqual([failed]);
  expect(existsSync(workspaces.dirOf(running))).toBe(true);
});
