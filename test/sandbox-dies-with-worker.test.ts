/**
 * What a step starts dies with the worker that started it. A real `rmapp worker` runs an issue's
 * first agent step through the `none` driver and through the `container` driver (against a fake
 * `docker` whose containers, as a real daemon's, outlive their client: this machine runs no daemon);
 * the agent command leaves a shell, a subshell and two `sleep 1000`s, and writes their pids to a
 * ledger. The worker is SIGKILLed mid-step. Every process that descended from it then (read from
 * /proc, with its start time, outside the engine) and every pid of the ledger must be gone: the
 * agent of a run that another worker takes back must not go on beside the new one, writing to its
 * workspace and spending its tokens. They were not: bubblewrap has `--die-with-parent` and a pid
 * namespace, the other two drivers had nothing.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/index.ts';
import { loadConfig, secretsOf } from '../src/rmapp/config.ts';
import { createLogger } from '../src/rmapp/logger.ts';
import { githubRuntime } from '../src/rmapp/service.ts';
import { createGitHubWorld, type GitHubWorld } from './helpers/github-world.ts';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { descendantsOf, killSurvivors, processRecord, stillRunning, type ProcessRecord } from './helpers/process-tree.ts';
import { killAll, ROOT, spawnRmapp, until } from './helpers/processes.ts';

let world: GitHubWorld;
let testDb: TestDatabase;
let engine: Engine;
let tmp: string;
let baseEnv: Record<string, string | undefined>;
/** Everything a test recorded, killed after it if still there (the check failed: nothing may leak into the next test). */
const recorded: ProcessRecord[] = [];

beforeAll(async () => {
  world = await createGitHubWorld();
  testDb = await createTestDatabase('h1_sandbox_death');
  tmp = mkdtempSync(join(tmpdir(), 'rmapp-sandbox-death-'));
  baseEnv = {
    DATABASE_URL: testDb.url,
    GITHUB_TOKEN: 't0ken',
    GITHUB_API_URL: world.emulator.url,
    GITHUB_WEBHOOK_SECRET: undefined,
    RMAPP_HOST: '0.0.0.0', // a worker serves no HTTP: no dashboard token needed
    RMAPP_GIT_URL: world.remote.replace('widgets.git', '{repo}.git'),
    RMAPP_TEST_COMMAND: JSON.stringify(['true']),
    RMAPP_WORKSPACE_ROOT: join(tmp, 'ws'),
  };
  // The process that starts runs (like `rmapp serve`) knows the same registry but executes nothing.
  const config = await loadConfig({
    env: { ...baseEnv, RMAPP_AGENT_COMMAND: 'true', RMAPP_SANDBOX: 'none' },
    cwd: tmp,
    requireWebhookSecret: false,
    serves: false,
  });
  const runtime = githubRuntime(config, { log: createLogger({ secrets: secretsOf(config) }) });
  engine = createEngine({ database: testDb.url, workflows: runtime.registry.workflows });
  runtime.registry.bind(engine);
});
afterEach(() => {
  killAll();
  killSurvivors(recorded);
});
afterAll(async () => {
  killSurvivors(recorded);
  await engine?.stop();
  await testDb?.drop();
  await world?.stop();
});

/** The agent: a shell that leaves a subshell with a sleep in it and a sleep of its own, all in the ledger, then waits. */
function agentCommand(ledger: string): string[] {
  const script = `echo $$ >> ${ledger}; (sleep 1000 & echo $! >> ${ledger}; wait) & echo $! >> ${ledger}; sleep 1000 & echo $! >> ${ledger}; wait`;
  return ['sh', '-c', script];
}

function ledgerPids(ledger: string): number[] {
  try {
    return readFileSync(ledger, 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Bubblewrap's agent sees only its workspace: its ledger is there, its pids those of its own pid namespace. */
function workspaceLedger(name: string): string {
  const root = join(tmp, 'ws');
  for (const run of existsSync(root) ? readdirSync(root) : []) if (existsSync(join(root, run, name))) return join(root, run, name);
  return join(root, name);
}

const cases = [
  // The control: bubblewrap's pid namespace and --die-with-parent (its pids are its namespace's: only /proc's tree is checked).
  { driver: 'bubblewrap', issue: 60, env: {} },
  { driver: 'none', issue: 61, env: {} },
  {
    driver: 'container',
    issue: 62,
    env: {
      RMAPP_SANDBOX_IMAGE: 'fake/image:1',
      PATH: `${join(ROOT, 'test/fixtures/fake-container-daemon')}:${process.env.PATH}`,
      // The docker client gets the sandbox's clean environment: the fake's state folder travels by name.
      RMAPP_SANDBOX_ENV: 'FAKE_DOCKER_STATE',
    },
  },
];

it.each(cases)(
  '$driver: the agent, its children and theirs die with the worker that was SIGKILLed mid-step',
  async ({ driver, issue, env }) => {
    const isolated = driver === 'bubblewrap';
    const ledgerName = `${driver}.pids`;
    const ledger = isolated ? ledgerName : join(tmp, ledgerName);
    const ledgerFile = () => (isolated ? workspaceLedger(ledgerName) : ledger);
    const state = join(tmp, `${driver}-containers`);
    mkdirSync(state);
    const worker = spawnRmapp(['worker', '--poll-ms', '100'], {
      ...baseEnv,
      RMAPP_SANDBOX: driver,
      RMAPP_AGENT_COMMAND: JSON.stringify(agentCommand(ledger)),
      FAKE_DOCKER_STATE: state,
      ...env,
    });
    world.emulator.issues.set(`acme/widgets#${issue}`, { title: 'Sleep', body: 'PLAN do\nWRITE impl.txt right' });
    await engine.start('IssueImplementation', { owner: 'acme', repo: 'widgets', issueNumber: issue });
    // The shell, its subshell, the subshell's sleep and its own sleep.
    await until(() => ledgerPids(ledgerFile()).length >= 4, 60_000, `the agent's processes to start (worker output: ${worker.output()})`);
    const workerPid = worker.child.pid as number;
    // A pid is in the ledger as soon as its shell forked it, before the child has exec'd `sleep`: its
    // command line reads `sh -c …` for that moment (on a loaded machine, long enough to be seen).
    const sleeps = () => descendantsOf(workerPid).filter((r) => r.command.startsWith('sleep 1000'));
    await until(() => sleeps().length >= 2, 30_000, 'both sleeps to run as sleep');
    const tree = descendantsOf(workerPid);
    expect(
      tree.filter((r) => r.command.startsWith('sleep 1000')),
      'both sleeps descend from the worker',
    ).toHaveLength(2);
    const ledgered = isolated ? [] : ledgerPids(ledger).map((pid) => processRecord(pid));
    recorded.push(...tree, ...ledgered.filter((r): r is ProcessRecord => r !== null));
    expect(
      ledgered.every((r) => r !== null),
      'every process of the ledger runs before the kill',
    ).toBe(true);
    if (driver === 'none') expect(tree.map((r) => r.pid)).toEqual(expect.arrayContaining(ledgerPids(ledger)));

    worker.child.kill('SIGKILL');
    await worker.exited;
    const all = [...tree, ...(ledgered as ProcessRecord[]).filter((r) => !tree.some((t) => t.pid === r.pid))];
    await until(() => !all.some(stillRunning), 15_000, 'the tree to die').catch(() => {});
    const survivors = all.filter(stillRunning).map((r) => `${r.pid} ${r.command}`);
    expect(survivors, 'processes of the step that outlived the worker').toEqual([]);
  },
  120_000,
);
