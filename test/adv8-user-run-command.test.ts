/**
 * `rmapp run` as a new user types it (README "Running one workflow from the terminal"): `--max-attempts`
 * took anything `Number()` reads — `0` was dropped for the default without a word, `abc` and `1.5` failed
 * as the workflow's input without naming the option — and Ctrl-C killed the process with the run still
 * leased by it, saying nothing of the run (test/adv8-user-start-wait-interrupt.test.ts for `start --wait`).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.ts';
import { killAll, runRmapp, spawnRmapp, until } from './helpers/processes.ts';

/** GitHub settings whose API is a closed port: the run's first step retries until it is stopped. */
const UNREACHABLE_GITHUB = {
  GITHUB_TOKEN: 'ghp_adv8TestOnlyToken0000',
  GITHUB_API_URL: 'http://127.0.0.1:1/api/v3',
  RMAPP_AGENT_COMMAND: 'cat',
  RMAPP_TEST_COMMAND: 'true',
  RMAPP_SANDBOX: 'none',
};

describe('rmapp run', () => {
  let db: TestDatabase | null = null;
  afterAll(async () => {
    killAll();
    await db?.drop();
  });

  it.each(['0', 'abc', '1.5', '11'])('refuses --max-attempts %s naming the option and its range', async (value) => {
    const r = await runRmapp(['run', 'simple', '--repo', 'acme/widgets', '--issue', '1', '--max-attempts', value], {
      GITHUB_TOKEN: '',
      GITHUB_APP_ID: '',
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`option '--max-attempts <n>' argument '${value}' is invalid`);
    expect(r.stderr).toContain('from 1 to 10');
  });

  it('hands its run over on SIGINT and names it', async () => {
    db = await createTestDatabase('fix2_adv8_run');
    const run = spawnRmapp(['run', 'simple', '--repo', 'acme/widgets', '--issue', '1'], { ...UNREACHABLE_GITHUB, DATABASE_URL: db.url });
    await until(() => run.output().includes('analyze (attempt 1)'), 60_000, 'the first step to start');
    const runId = /run (\S+): simple on acme\/widgets#1/.exec(run.output())?.[1];
    expect(runId).toBeDefined();
    run.child.kill('SIGINT');
    const signalled = Date.now();
    const code = await run.exited;
    // Within the grace (10 s) and the second stopped-exit.ts allows, not after GitHub retries long over.
    expect(Date.now() - signalled).toBeLessThan(20_000);
    expect(code, run.output()).toBe(130);
    expect(run.output()).toContain(`run ${runId} did not finish here`);
    expect(run.output()).toContain(`rmapp runs watch ${runId}`);
  }, 180_000);
});
