/**
 * The credentials in a URL the sandbox is given under a name that says nothing of a secret
 * (`sandbox.env: [MIRROR, TEST_DB_URL]`) are masked wherever the service shows what the tests printed:
 * GitHub comments, the JSON API (the dashboard, artifacts), the logs. Only secret-NAMED variables'
 * values were masked by value, and the URL pattern knew only `user:password@` in URL form: a test that
 * printed `env` gave the token of `https://<token>@mirror…` in clear, and one that printed the parsed
 * password (or `env | base64`) the database password. End to end through `rmapp serve` (in-process),
 * as test/security-leaks.test.ts; then the CLI's own masker, and which credentials are taken from a value.
 */
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sandboxSecretsOf, secretsOf, type RmappConfig } from '../src/rmapp/config.ts';
import { base64Cores, createMasker } from '../src/rmapp/masking.ts';
import { urlCredentials, variableSecrets } from '../src/rmapp/secret-variables.ts';
import { runRmapp, until } from './helpers/processes.ts';
import { apiText, createServiceWorld, implementIssue, type ServiceWorld } from './helpers/service-world.ts';

const DASHBOARD = 'dashboard-token-url-test-0123456789';
const MIRROR_TOKEN = 'mirrortok3n0123456789abcdef';
const DB_PASSWORD = 'hunter2-in-a-url';
const VARIABLES = {
  MIRROR: `https://${MIRROR_TOKEN}@mirror.example.com/repo.git`,
  TEST_DB_URL: `postgres://app:${DB_PASSWORD}@db.internal:5432/test`,
};

let w: ServiceWorld;
const logs: string[] = [];

beforeAll(async () => {
  Object.assign(process.env, VARIABLES);
  const stream = new PassThrough();
  stream.on('data', (d: Buffer) => logs.push(d.toString('utf8')));
  // The tests print their environment, plain and base64'd, and what a test harness logs of its settings.
  const tests = [
    'echo TESTS-RAN',
    'env',
    'env | base64',
    'p=${TEST_DB_URL#*://*:}; echo "connecting to db.internal with password ${p%%@*}"',
    't=${MIRROR#*://}; echo "mirror token ${t%%@*}"',
    'exit 1',
  ].join('; ');
  w = await createServiceWorld(
    {
      RMAPP_TEST_COMMAND: JSON.stringify(['sh', '-c', tests]),
      RMAPP_SANDBOX_ENV: 'MIRROR,TEST_DB_URL',
      RMAPP_MAX_TEST_ATTEMPTS: '1',
      RMAPP_DASHBOARD_TOKEN: DASHBOARD,
    },
    { logTo: stream },
  );
  w.world.emulator.permissions.set('acme/widgets:alice', 'write');
});
afterAll(async () => {
  await w?.stop();
  for (const k of Object.keys(VARIABLES)) delete process.env[k];
});

const implement = (n: number, body: string) => implementIssue(w, n, body);
const api = (path: string) => apiText(w, path, DASHBOARD);

it('a token or password in the URL of a plainly named sandbox variable reaches no comment, API answer or log', async () => {
  const runId = await implement(71, 'PLAN write impl\nWRITE impl.txt wrong');
  const comments = () =>
    [...w.world.emulator.comments.values()]
      .flat()
      .map((c) => c.body)
      .join('\n');
  await until(() => comments().includes('TESTS-RAN'), 30_000, 'the failed tests in the progress comment');
  const apiText = [
    await api(`/api/runs/${encodeURIComponent(runId)}`),
    await api(`/api/runs/${encodeURIComponent(runId)}/artifacts/test-output`),
  ].join('\n');
  const surfaces: Record<string, string> = { 'GitHub comments': comments(), 'the JSON API': apiText, logs: logs.join('') };
  // What was printed arrives, masked where it must be (otherwise the checks below prove nothing).
  for (const shown of [
    'TESTS-RAN',
    'MIRROR=https://[REDACTED]@mirror.example.com/repo.git',
    'connecting to db.internal with password [REDACTED]',
    'mirror token [REDACTED]',
  ])
    expect(apiText.includes(shown), `the API shows "${shown}"`).toBe(true);
  for (const [where, text] of Object.entries(surfaces)) {
    for (const secret of [MIRROR_TOKEN, DB_PASSWORD]) {
      expect(text.includes(secret), `${where} hold "${secret}"`).toBe(false);
      // Base64 of the environment, wrapped at 76 columns (in JSON, `\n` escapes): the secret's aligned cores.
      const joined = text.replace(/\\n|\s/g, '');
      for (const core of base64Cores(Buffer.from(secret)))
        expect(joined.includes(core), `${where} hold "${secret}" in base64 (${core})`).toBe(false);
    }
  }
});

describe('the credentials taken from a value', () => {
  it.each([
    ['https://ghp_abc123def456ghi789@github.com/o/r.git', ['ghp_abc123def456ghi789']],
    ['postgres://app:s3cret-pw@db/test', ['s3cret-pw']],
    ['postgres://app:p%40ss%2Fword@db/test', ['p%40ss%2Fword', 'p@ss/word']],
    ['postgres://app@db/test?password=param-pw-1', ['param-pw-1']],
    ['https://0123456789abcdef0123456789abcdef@o1.ingest.sentry.io/42', ['0123456789abcdef0123456789abcdef']],
    // Several URLs in one value, blank-separated or run together.
    ['https://a:first-pw@h1 https://tok3n-second-value@h2', ['first-pw', 'tok3n-second-value']],
    ['https://a:first-pw@h1,https://b:second-pw@h2', ['first-pw', 'second-pw']],
    // A port URL cannot parse: the password as written between the user's `:` and the `@`.
    ['postgres://app:odd-port-pw@db:99999/x', ['odd-port-pw']],
    // Logins alone are no secret; no user part, no credential (an npm scope in the path is none).
    ['ssh://git@github.com/o/r.git', []],
    ['postgres://postgres@localhost/test', []],
    ['redis://default@cache:6379', []],
    ['https://registry.npmjs.org/@babel%2fcore', []],
    ['https://example.com/x', []],
    ['not a url at all', []],
  ])('%s', (value, expected) => {
    expect([...new Set(urlCredentials(value))]).toEqual(expected);
  });

  it('every value gives its URL credentials, a secret-named one its whole value; both refuse a commit', () => {
    const env = {
      MIRROR: `https://${MIRROR_TOKEN}@mirror.example.com/repo.git`,
      TEST_DB_URL: `postgres://app:${DB_PASSWORD}@db/test`,
      NPM_TOKEN: 'npm-token-value-123',
      NODE_ENV: 'test',
    };
    const names = Object.keys(env);
    expect(new Set(variableSecrets(names, env))).toEqual(new Set([MIRROR_TOKEN, DB_PASSWORD, 'npm-token-value-123']));
    const config = { github: {}, server: {}, agent: { env: [] }, sandbox: { env: names } } as unknown as RmappConfig;
    const masker = createMasker(secretsOf(config, env));
    const printed = `${DB_PASSWORD} ${Buffer.from(`MIRROR=${env.MIRROR}`).toString('base64')} ${Buffer.from(MIRROR_TOKEN).toString('hex')}`;
    const masked = masker.text(printed);
    expect(masked).not.toContain(DB_PASSWORD);
    expect(masked).not.toContain(MIRROR_TOKEN);
    expect(masked).not.toContain(Buffer.from(MIRROR_TOKEN).toString('hex'));
    // A commit adding a URL's credential is refused too (test/secret-in-changes-url-credentials.test.ts):
    // the agent could write the mirror's URL into a file that the service pushes.
    expect(new Set(sandboxSecretsOf(config, env))).toEqual(new Set([MIRROR_TOKEN, DB_PASSWORD, 'npm-token-value-123']));
  });
});

it("the CLI's masker knows the URL credentials of the variables its environment names for the sandbox", async () => {
  // A usage error quotes its argument: commander's message, masked before any command runs (no database needed).
  const r = await runRmapp(['runs', 'list', '--status', MIRROR_TOKEN], {
    ...VARIABLES,
    RMAPP_SANDBOX_ENV: 'MIRROR TEST_DB_URL',
  });
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/argument '\[REDACTED\]' is invalid/);
  expect(r.stderr).not.toContain(MIRROR_TOKEN);
});
