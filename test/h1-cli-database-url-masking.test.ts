/**
 * `rmapp worker` and `rmapp run` build the GitHub side (service.ts `githubRuntime`) with the database
 * URL given on their command line (`--database-url`), so that its password is masked in what they
 * write to GitHub and refuses a commit (test/h1-pgpassword-masking.test.ts and
 * test/h1-service-secrets-in-commits.test.ts check what the runtime does with it). They built it from
 * the configuration alone: a password given only on the command line reached a comment in the clear.
 *
 * Each command runs in this process with `githubRuntime` wrapped to keep its arguments and stop the
 * command there (as test/versions-check-github-log.test.ts does).
 */
import { Command } from 'commander';
import { afterEach, expect, it, vi } from 'vitest';
import type { GitHubRuntime } from '../src/rmapp/service.ts';

const FLAG_URL = 'postgres://worker:h1-cli-flag-Passw0rd-93@127.0.0.1:1/h1_never';
const STOP = 'stopped after the GitHub runtime was built';
const VARIABLES = ['GITHUB_TOKEN', 'GITHUB_APP_ID', 'RMAPP_CONFIG', 'RMAPP_AGENT_COMMAND', 'RMAPP_TEST_COMMAND', 'DATABASE_URL'] as const;
const saved = Object.fromEntries(VARIABLES.map((name) => [name, process.env[name]]));

afterEach(() => {
  vi.doUnmock('../src/rmapp/service.ts');
  vi.resetModules();
  for (const name of VARIABLES) {
    if (saved[name] === undefined) delete process.env[name];
    else process.env[name] = saved[name];
  }
});

/** The overrides each `githubRuntime` call got, the command stopped at the first. */
async function overridesOf(
  add: (program: Command) => void,
  argv: string[],
): Promise<Parameters<typeof import('../src/rmapp/service.ts').githubRuntime>[1][]> {
  for (const name of VARIABLES) delete process.env[name];
  process.env.GITHUB_TOKEN = 'ghp_h1CliTest0123456789abcdefABCDEFghijkl';
  process.env.RMAPP_AGENT_COMMAND = '["true"]';
  process.env.RMAPP_TEST_COMMAND = '["true"]';
  const seen: Parameters<typeof import('../src/rmapp/service.ts').githubRuntime>[1][] = [];
  vi.resetModules();
  vi.doMock('../src/rmapp/service.ts', async (importOriginal) => {
    const actual = await importOriginal<typeof import('../src/rmapp/service.ts')>();
    return {
      ...actual,
      githubRuntime: (...args: Parameters<typeof actual.githubRuntime>): GitHubRuntime => {
        seen.push(args[1]);
        throw new Error(STOP);
      },
    };
  });
  const program = new Command().exitOverride().option('--workflows <module>').option('--database-url <url>');
  add(program);
  await expect(program.parseAsync(['node', 'rmapp', '--database-url', FLAG_URL, ...argv])).rejects.toThrow(STOP);
  return seen;
}

it('rmapp worker passes --database-url to githubRuntime', async () => {
  const { addWorkerCommand } = await import('../src/rmapp/cli/worker-command.ts');
  const seen = await overridesOf(addWorkerCommand, ['worker']);
  expect(seen.map((o) => o.databaseUrl)).toEqual([FLAG_URL]);
});

it('rmapp run passes --database-url to githubRuntime', async () => {
  const { addRunCommand } = await import('../src/rmapp/cli/run-command.ts');
  const seen = await overridesOf(addRunCommand, ['run', 'simple', '--repo', 'acme/widgets', '--issue', '1']);
  expect(seen.map((o) => o.databaseUrl)).toEqual([FLAG_URL]);
});
