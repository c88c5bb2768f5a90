/**
 * `rmapp runs watch` of a run that has not finished says who can run it. On the embedded store the watch
 * holds the store (PGlite serves one process), so no worker can: it waited for ever printing nothing (an
 * outside tester), and is now refused naming what works. On Postgres a pending run waits for a worker,
 * which is said once while the watch goes on.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { killAll, runRmapp, spawnRmapp, TEST_WORKFLOWS, until } from './helpers/processes.ts';
import { durabilityWorkflows } from './helpers/durability-workflows.ts';
import { createEngine } from '../src/state_machine/engine.ts';
import { silentLogger } from '../src/persistence/logger.ts';
import { shellWord } from '../src/rmapp/cli/shell-word.ts';

/** `rmapp` as the CLI prints it for a command line that gave `--workflows` (shell-word.ts `rmappCommand`). */
const RMAPP_W = `rmapp --workflows ${shellWord(TEST_WORKFLOWS)}`;

const dir = mkdtempSync(join(tmpdir(), 'rmapp-watch-who-'));
let testDb: TestDatabase;
beforeAll(async () => {
  testDb = await createTestDatabase();
});
afterEach(() => killAll());
afterAll(async () => {
  await testDb.drop();
  rmSync(dir, { recursive: true, force: true });
});

it('on the embedded store, watching a run not finished is refused at once, naming what works; a finished one is shown', async () => {
  const env = { DATABASE_URL: '', RMAPP_DATA_DIR: join(dir, 'store') };
  const rmapp = (...args: string[]) => runRmapp(['--workflows', TEST_WORKFLOWS, ...args], env);
  expect((await rmapp('start', 'test.sequence', '{}', '--id', 'r-pending')).code).toBe(0);
  // Before, this never ended: the watch is spawned so that the test fails rather than hangs with it.
  const watch = spawnRmapp(['--workflows', TEST_WORKFLOWS, 'runs', 'watch', 'r-pending'], env);
  const ended = await Promise.race([
    watch.exited,
    until(() => false, 30_000, 'runs watch to end: it went on waiting for a run no worker can run while it holds the store'),
  ]);
  expect({ ended, output: watch.output() }).toEqual({
    ended: 1,
    output:
      'rmapp: Run r-pending is pending, and on the embedded store no worker can run it while this command holds the store: run it ' +
      `with \`${RMAPP_W} worker\` and then \`rmapp runs show r-pending\`, start runs with \`${RMAPP_W} start --wait\` to follow them as they run, ` +
      'or set DATABASE_URL to a Postgres that workers and `runs watch` can share.\n',
  });
  const done = await rmapp('start', 'test.sequence', '{}', '--id', 'r-done', '--wait');
  expect(done.code, done.stderr).toBe(0);
  const watched = await rmapp('runs', 'watch', 'r-done');
  expect(watched.code, watched.stderr).toBe(0);
  expect(watched.stdout).toContain('→ done');
  expect(watched.stdout).toMatch(/Status\s+succeeded/);
}, 120_000);

it('the commands the refusal names can be pasted: an id starting with - after --, and a waiting run is told of runs send', async () => {
  // An outside tester: the advice `rmapp runs show -lead` failed with "unknown option '-lead'", and a
  // run waiting for an event was not told that `runs send` is what it waits for.
  const store = join(dir, 'dash-store');
  const engine = createEngine({ database: { url: '', dataDir: store }, workflows: durabilityWorkflows(), logger: silentLogger });
  const id = await engine.start('test.approval', { timeoutMs: 3_600_000 }, { runId: '-lead' });
  await engine.startWorker();
  await until(async () => (await engine.get(id)).status === 'waiting', 30_000, 'the run to wait for its approval');
  await engine.stop();
  const env = { DATABASE_URL: '', RMAPP_DATA_DIR: store };
  const rmapp = (...args: string[]) => runRmapp(['--workflows', TEST_WORKFLOWS, ...args], env);
  expect(await rmapp('runs', 'watch', '--', '-lead')).toEqual({
    code: 1,
    stdout: '',
    stderr:
      'rmapp: Run -lead is waiting, and on the embedded store no worker can run it while this command holds the store: it waits for an event ' +
      `(send it with \`rmapp runs send -- -lead '{"type":"…"}'\`) or a timer, which a worker runs: run it with \`${RMAPP_W} worker\` and then ` +
      `\`rmapp runs show -- -lead\`, start runs with \`${RMAPP_W} start --wait\` to follow them as they run, or set DATABASE_URL to a Postgres ` +
      'that workers and `runs watch` can share.\n',
  });
  // As printed, they work.
  const shown = await rmapp('runs', 'show', '--', '-lead');
  expect(shown.code, shown.stderr).toBe(0);
  expect(shown.stdout).toMatch(/^Run {7}-lead\n/);
  const sent = await rmapp('runs', 'send', '--', '-lead', '{"type":"approve","by":"ada"}');
  expect(sent, sent.stderr).toEqual({ code: 0, stdout: 'Sent approve to -lead.\n', stderr: '' });
}, 120_000);

it('on Postgres, watching a pending run says it waits for a worker, and follows it once one takes it', async () => {
  const env = { DATABASE_URL: testDb.url };
  const id = (await runRmapp(['--workflows', TEST_WORKFLOWS, 'start', 'test.sequence', '{}'], env)).stdout.trim();
  const watch = spawnRmapp(['--workflows', TEST_WORKFLOWS, 'runs', 'watch', id, '--poll-ms', '50'], env);
  await until(
    () => watch.output().includes(`rmapp: run ${id} is pending: waiting for a worker on this database to take it.\n`),
    30_000,
    'the pending line',
  );
  spawnRmapp(['--workflows', TEST_WORKFLOWS, 'worker', '--poll-ms', '100'], env);
  expect(await watch.exited, watch.output()).toBe(0);
  expect(watch.output()).toMatch(/Status\s+succeeded/);
}, 120_000);
