/** Configuration validation (every message names the setting and the fix) and the comment command parser. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ConfigError, gitUrlFor, loadConfig, webUrl } from '../src/rmapp/config.ts';
import { helpText, mentions, parseCommand } from '../src/rmapp/commands.ts';
import { runRmapp } from './helpers/processes.ts';

const dir = () => mkdtempSync(join(tmpdir(), 'rmapp-config-'));
const github = {
  GITHUB_TOKEN: 'ghp_x',
  GITHUB_WEBHOOK_SECRET: 'a-long-secret',
  RMAPP_AGENT_COMMAND: 'claude -p --output-format json',
  RMAPP_TEST_COMMAND: '["npm","test"]',
};

it('defaults to a local, GitHub-less configuration', async () => {
  const config = await loadConfig({ env: {}, cwd: dir() });
  expect(config.githubEnabled).toBe(false);
  expect(config.server).toMatchObject({ host: '127.0.0.1', port: 3000 });
  expect(config.botName).toBe('rmapp');
});

it('reads the environment over rmapp.config.json, with argv commands from words or JSON', async () => {
  const cwd = dir();
  writeFileSync(
    join(cwd, 'rmapp.config.json'),
    JSON.stringify({ botName: 'helper', labels: { 'rmapp:bug': 'bugfix' }, server: { port: 4000 } }),
  );
  const config = await loadConfig({ env: { ...github, PORT: '4100' }, cwd });
  expect(config.githubEnabled).toBe(true);
  expect(config.botName).toBe('helper');
  expect(config.server.port).toBe(4100);
  expect(config.labels).toEqual({ 'rmapp:bug': 'bugfix' });
  expect(config.agent.command).toEqual(['claude', '-p', '--output-format', 'json']);
  expect(config.tests.command).toEqual(['npm', 'test']);
  expect(config.docsRunTests).toBe(false);
  expect((await loadConfig({ env: { RMAPP_DOCS_RUN_TESTS: 'true' }, cwd })).docsRunTests).toBe(true);
  expect(gitUrlFor(config, 'acme', 'widgets')).toBe('https://github.com/acme/widgets.git');
  expect(gitUrlFor({ ...config, github: { ...config.github, apiUrl: 'https://ghe.example/api/v3' } }, 'a', 'b')).toBe(
    'https://ghe.example/a/b.git',
  );
});

it('names each wrong or missing setting with its variable and fix', async () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ GITHUB_TOKEN: 'x' }, /github\.webhookSecret \(env GITHUB_WEBHOOK_SECRET\): required to verify webhooks — set GITHUB_WEBHOOK_SECRET/],
    [
      { ...github, RMAPP_AGENT_COMMAND: '', GITHUB_APP_ID: '12' },
      /github\.privateKey \(env GITHUB_PRIVATE_KEY\): GITHUB_APP_ID is set but the private key is missing/,
    ],
    [{ GITHUB_WEBHOOK_SECRET: 'a-long-secret' }, /github\.token \(env GITHUB_TOKEN\): GitHub credentials are missing/],
    [{ ...github, RMAPP_TEST_COMMAND: '' }, /tests\.command \(env RMAPP_TEST_COMMAND\): required to run workflows/],
    [{ PORT: 'eighty' }, /server\.port \(env PORT\): .*— set PORT \(or `rmapp serve --port`\) to a port number/],
    [{ PORT: '0x50' }, /server\.port \(env PORT\): must be a port number written in decimal digits/],
    [{ PORT: '70000' }, /server\.port \(env PORT\): .*65535/],
    [{ RMAPP_HOST: '0.0.0.0' }, /server\.dashboardToken \(env RMAPP_DASHBOARD_TOKEN\): required when binding to 0\.0\.0\.0/],
    [{ RMAPP_LABELS: '{"x":"nope"}' }, /labels\.x \(env RMAPP_LABELS\)|labels\.x:/],
    [{ RMAPP_AGENT_TIMEOUT: '5 minutes' }, /agent\.timeout \(env RMAPP_AGENT_TIMEOUT\): Invalid duration/],
  ];
  for (const [env, message] of cases) {
    const err = await loadConfig({ env, cwd: dir() }).catch((e: unknown) => e);
    expect(err, JSON.stringify(env)).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(message);
  }
  const cwd = dir();
  writeFileSync(join(cwd, 'rmapp.config.json'), JSON.stringify({ bot: 'x' }));
  await expect(loadConfig({ env: {}, cwd })).rejects.toThrow(/unknown setting\(s\) bot/);
});

it('refuses unknown settings at any depth with "did you mean", and reports every problem at once', async () => {
  const cwd = dir();
  writeFileSync(
    join(cwd, 'rmapp.config.json'),
    JSON.stringify({ server: { prot: 3001 }, sandbox: { drivr: 'none' }, bot: 'x', github: { webhookSecret: 'a-long-secret' } }),
  );
  const err = await loadConfig({ env: { PORT: 'eighty' }, cwd }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ConfigError);
  const problems = (err as ConfigError).problems;
  const expected = [
    /^server \(in \S+rmapp\.config\.json\): unknown setting\(s\) prot \(did you mean server\.port\?\); known: host, port/,
    /^sandbox \(in \S+rmapp\.config\.json\): unknown setting\(s\) drivr \(did you mean sandbox\.driver\?\)/,
    /^\(config\) \(in \S+rmapp\.config\.json\): unknown setting\(s\) bot \(did you mean botName\?\)/,
    /^server\.port \(env PORT\): .*set PORT \(or `rmapp serve --port`\) to a port number/,
    // A check across settings, reported in the same round as the schema's problems.
    /^github\.token \(env GITHUB_TOKEN\): GitHub credentials are missing/,
  ];
  for (const pattern of expected) expect(problems).toContainEqual(expect.stringMatching(pattern));
});

it('names where a wrong value came from: the configuration file, the environment variable or the flag', async () => {
  const cwd = dir();
  const file = join(cwd, 'rmapp.config.json');
  writeFileSync(file, JSON.stringify({ server: { port: 99999 }, agent: { budget: { maxTurns: -1 } } }));
  const problemsOf = async (options: Parameters<typeof loadConfig>[0]) => {
    const err = await loadConfig({ cwd, ...options }).catch((e: unknown) => e);
    expect(err, JSON.stringify(options)).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  };
  const fromFile = await problemsOf({ env: {} });
  const port = fromFile.find((p) => p.startsWith('server.port'));
  expect(port, fromFile.join('\n')).toMatch(
    new RegExp(`^server\\.port \\(in ${file}\\): Too big.* — change it there to a port number between 1 and 65535`),
  );
  expect(port, 'a value from the file was said to come from PORT').not.toMatch(/PORT/);
  expect(fromFile, fromFile.join('\n')).toContainEqual(
    expect.stringMatching(new RegExp(`^agent\\.budget\\.maxTurns \\(in ${file}\\): Too small`)),
  );
  // The variable over the file is the variable's value, named so.
  const fromEnv = await problemsOf({ env: { PORT: '70000' } });
  expect(
    fromEnv.find((p) => p.startsWith('server.port')),
    fromEnv.join('\n'),
  ).toMatch(/^server\.port \(env PORT\): .*— set PORT/);
  // `rmapp serve --port` passes its value through PORT, and says which flag gave it.
  const fromFlag = await problemsOf({ env: { PORT: '70000' }, flags: { 'server.port': '--port' } });
  expect(
    fromFlag.find((p) => p.startsWith('server.port')),
    fromFlag.join('\n'),
  ).toMatch(/^server\.port \(--port\): .*— give --port a port number/);
});

it('rmapp serve stops with the message and no stack trace, never printing a secret', async () => {
  const r = await runRmapp(['serve'], {
    GITHUB_TOKEN: 'ghp_supersecret_value',
    RMAPP_HOST: '0.0.0.0',
    GITHUB_WEBHOOK_SECRET: undefined,
    DATABASE_URL: undefined,
  });
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/^rmapp: Invalid configuration:/);
  expect(r.stderr).toMatch(/GITHUB_WEBHOOK_SECRET/);
  expect(r.stderr).toMatch(/RMAPP_DASHBOARD_TOKEN/);
  expect(r.stderr).not.toMatch(/ghp_supersecret_value|\n\s+at /);
});

it('parses commands and answers anything else with help', () => {
  expect(parseCommand('Please @rmapp implement', 'rmapp')).toEqual({ kind: 'implement', template: 'simple', options: {} });
  expect(parseCommand('@rmapp implement bug --max-attempts 5 --approval-timeout 2d', 'rmapp')).toEqual({
    kind: 'implement',
    template: 'bugfix',
    options: { maxTestAttempts: 5, approvalTimeoutMs: 2 * 86_400_000 },
  });
  expect(parseCommand('@rmapp[bot] approve!', 'rmapp')).toEqual({ kind: 'approve' });
  expect(parseCommand('> @rmapp cancel\nthanks', 'rmapp')).toBeNull();
  expect(parseCommand('mail me at x@rmapp.dev', 'rmapp')).toBeNull();
  expect(parseCommand('@rmappish implement', 'rmapp')).toBeNull();
  // A mention inside code is not a command (GitHub does not notify for it either).
  for (const quoted of [
    'Use `@rmapp implement` on an issue to start',
    '``x `@rmapp cancel` y``',
    '```\n@rmapp implement\n```\nthanks',
    '~~~md\n@rmapp cancel\n~~~',
    '```sh\n@rmapp retry (an unclosed fence runs to the end)',
  ]) {
    expect(parseCommand(quoted, 'rmapp'), quoted).toBeNull();
    expect(mentions(quoted, 'rmapp'), quoted).toBe(false);
  }
  expect(parseCommand('`a` then @rmapp status `b`', 'rmapp')).toEqual({ kind: 'status' });
  expect(parseCommand('```\ncode\n```\n@rmapp approve', 'rmapp')).toEqual({ kind: 'approve' });
  expect(parseCommand('``` not a fence ``` @rmapp approve', 'rmapp')).toEqual({ kind: 'approve' });
  expect(parseCommand('@rmapp implement --max-attempts 99', 'rmapp')).toMatchObject({
    kind: 'help',
    reason: expect.stringMatching(/1 to 10/),
  });
  expect(parseCommand('@rmapp implement rocket', 'rmapp')).toMatchObject({ kind: 'help', reason: expect.stringMatching(/not a template/) });
  // Words that name members of every object are not templates either.
  for (const word of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
    expect(parseCommand(`@rmapp implement ${word}`, 'rmapp'), word).toMatchObject({
      kind: 'help',
      reason: expect.stringMatching(/not a template; use one of simple, feature, bugfix, docs/),
    });
  }
  for (const [word, template] of [
    ['Complex', 'feature'],
    ['FIX', 'bugfix'],
    ['documentation', 'docs'],
    ['docs', 'docs'],
  ] as const) {
    expect(parseCommand(`@rmapp implement ${word}`, 'rmapp'), word).toEqual({ kind: 'implement', template, options: {} });
  }
  expect(parseCommand('@rmapp', 'rmapp')).toEqual({ kind: 'help' });
  expect(helpText('rmapp')).toContain('@rmapp implement');
});

it('derives the web address from the API URL: github.com, Enterprise Cloud with data residency, Enterprise Server with a path', () => {
  expect(webUrl('https://api.github.com')).toBe('https://github.com');
  expect(webUrl('https://api.acme.ghe.com')).toBe('https://acme.ghe.com');
  expect(webUrl('https://ghe.example.com/api/v3')).toBe('https://ghe.example.com');
  expect(webUrl('https://example.com/github/api/v3/')).toBe('https://example.com/github');
  expect(webUrl('http://127.0.0.1:8080')).toBe('http://127.0.0.1:8080');
});
