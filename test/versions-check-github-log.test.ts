/**
 * `rmapp versions check` builds the GitHub side of the service (to register the GitHub workflows) with
 * the service's masked logger, as `serve`, `worker` and `run` do. It built it without one, so whatever
 * the GitHub client (Octokit) logged went to stderr through the plain fallback (`github: …`), unmasked: a
 * configured token or key quoted in a warning was printed in clear.
 *
 * The command runs in this process, with the service module's `githubRuntime` wrapped to keep what it
 * built (and to stop the command there: the check itself is test/versions.test.ts's); the client's log
 * is then written to as Octokit writes to it.
 */
import { Command } from 'commander';
import { afterEach, expect, it, vi } from 'vitest';
import { MASK } from '../src/rmapp/masking.ts';
import type { GitHubRuntime } from '../src/rmapp/service.ts';

/** A configured token no pattern knows (not `ghp_…`): masked only as a configured secret. */
const TOKEN = 'plain-personal-token-7f3a9c2e1b5d';
const STOP = 'stopped after the GitHub runtime was built';
const VARIABLES = [
  'GITHUB_TOKEN',
  'GITHUB_APP_ID',
  'GITHUB_PRIVATE_KEY_PATH',
  'GITHUB_WEBHOOK_SECRET',
  'RMAPP_CONFIG',
  'RMAPP_AGENT_COMMAND',
  'RMAPP_TEST_COMMAND',
] as const;
const saved = Object.fromEntries(VARIABLES.map((name) => [name, process.env[name]]));

afterEach(() => {
  vi.doUnmock('../src/rmapp/service.ts');
  vi.resetModules();
  vi.restoreAllMocks();
  for (const name of VARIABLES) {
    if (saved[name] === undefined) delete process.env[name];
    else process.env[name] = saved[name];
  }
});

it("the GitHub client's warnings go through the masked logger", async () => {
  for (const name of VARIABLES) delete process.env[name];
  process.env.GITHUB_TOKEN = TOKEN;
  process.env.RMAPP_AGENT_COMMAND = '["true"]';
  process.env.RMAPP_TEST_COMMAND = '["true"]';
  const built: GitHubRuntime[] = [];
  vi.resetModules();
  vi.doMock('../src/rmapp/service.ts', async (importOriginal) => {
    const actual = await importOriginal<typeof import('../src/rmapp/service.ts')>();
    return {
      ...actual,
      githubRuntime: (...args: Parameters<typeof actual.githubRuntime>) => {
        built.push(actual.githubRuntime(...args));
        throw new Error(STOP);
      },
    };
  });
  const { addVersionsCommand } = await import('../src/rmapp/cli/versions-command.ts');
  const program = new Command().exitOverride().option('--workflows <module>').option('--database-url <url>');
  addVersionsCommand(program);
  await expect(program.parseAsync(['node', 'rmapp', 'versions', 'check'])).rejects.toThrow(STOP);
  expect(built).toHaveLength(1);

  let written = '';
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    written += chunk.toString();
    return true;
  });
  // As Octokit's plugins log (a deprecation, a retried request), here quoting the token.
  const github = (built[0] as GitHubRuntime).github;
  github.log.warn(`request to https://api.github.com failed with token ${TOKEN}`);
  github.log.error(`GET /user - 401 with token ${TOKEN}`);
  await new Promise((resolve) => setImmediate(resolve));
  vi.restoreAllMocks();
  expect(written, 'nothing was logged').toContain('github: ');
  expect(written, 'the log holds the configured token').not.toContain(TOKEN);
  expect(written).toContain(MASK);
});
