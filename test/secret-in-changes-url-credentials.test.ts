/**
 * A commit the agent makes is refused when what it adds holds a credential of a URL the sandbox was
 * given, not only the whole value of a variable whose name says it is a secret. `MIRROR=https://<token>@…`
 * or `PIP_INDEX_URL=https://…/simple/?token=<token>` say nothing in their names: their credentials were
 * masked in logs, but an agent told to write the URL (or the token alone, or `env | base64`) into a file
 * had it committed and pushed. The refusal names the file and which variable's secret it found, never
 * the secret. Through the service's own wiring (service.ts `githubRuntime`), on real git.
 */
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toErrorData } from '../src/index.ts';
import { loadConfig, sandboxSecretSources, sandboxSecretsOf, secretsOf } from '../src/rmapp/config.ts';
import { createLogger } from '../src/rmapp/logger.ts';
import { githubRuntime } from '../src/rmapp/service.ts';
import { createBareRemote } from './helpers/git-remote.ts';

const MIRROR_TOKEN = 'mirrortok3n0123456789abcdef';
const DB_PASSWORD = 'hunter2-in-a-url';
const QUERY_TOKEN = 'pypiqu3rytoken987654321';
const AGENT_KEY = 'sk-ant-api03-THEAGENTKEYinTHISTEST0123456789';
const env = {
  GITHUB_TOKEN: 'ghp_servicetoken0123456789abcdefABCDEF',
  RMAPP_TEST_COMMAND: 'npm test',
  RMAPP_AGENT_COMMAND: 'my-agent',
  RMAPP_AGENT_ENV: 'ANTHROPIC_API_KEY',
  RMAPP_SANDBOX_ENV: 'MIRROR,TEST_DB_URL,PIP_INDEX_URL,LOCAL_DB_URL',
  ANTHROPIC_API_KEY: AGENT_KEY,
  MIRROR: `https://ci-bot:${MIRROR_TOKEN}@mirror.example.com/repo.git`,
  TEST_DB_URL: `postgres://app:${DB_PASSWORD}@db.internal:5432/test`,
  PIP_INDEX_URL: `https://pypi.example.com/simple/?token=${QUERY_TOKEN}`,
  // Its password is its user: no credential (it would refuse every change naming the database).
  LOCAL_DB_URL: 'postgres://postgres:postgres@localhost:5432/test',
};
const SECRETS = [MIRROR_TOKEN, DB_PASSWORD, QUERY_TOKEN, AGENT_KEY];

const tmp = mkdtempSync(join(tmpdir(), 'rmapp-url-credentials-'));
// The service reads the variables it passes from its own environment (service.ts `githubRuntime`).
const PASSED = ['ANTHROPIC_API_KEY', 'MIRROR', 'TEST_DB_URL', 'PIP_INDEX_URL', 'LOCAL_DB_URL'] as const;
const saved = Object.fromEntries(PASSED.map((k) => [k, process.env[k]]));
beforeAll(() => {
  for (const k of PASSED) process.env[k] = env[k];
});
afterAll(() => {
  for (const k of PASSED)
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
});
let n = 0;
async function workspace() {
  n += 1;
  const config = await loadConfig({
    env: { ...env, RMAPP_WORKSPACE_ROOT: join(tmp, `runs${n}`) },
    cwd: tmp,
    requireWebhookSecret: false,
    serves: false,
  });
  const { workspaces } = githubRuntime(config, { log: createLogger({ secrets: secretsOf(config) }) });
  const remote = await createBareRemote(tmp, `r${n}`, { 'README.md': 'hello\n' });
  const ws = await workspaces.prepare({ runId: `url-${n}`, remoteUrl: remote, branch: 'rmapp/issue-1', base: 'main' });
  return { workspaces, ws };
}

describe('a commit adding a credential of a URL the sandbox was given', () => {
  it.each([
    ['the mirror URL as it is', 'notes.md', `clone from ${env.MIRROR}\n`, 'a credential of the URL in MIRROR (sandbox.env'],
    ['the token of the mirror URL alone', 'config/token.txt', `${MIRROR_TOKEN}\n`, 'a credential of the URL in MIRROR (sandbox.env'],
    ['the database password alone', 'db.env', `PGPASSWORD=${DB_PASSWORD}\n`, 'a credential of the URL in TEST_DB_URL (sandbox.env'],
    [
      'a token in a URL query',
      'pip.conf',
      `[global]\nindex-url = ${env.PIP_INDEX_URL}\n`,
      'a credential of the URL in PIP_INDEX_URL (sandbox.env',
    ],
    [
      'env | base64',
      'env.b64',
      `${Buffer.from(`MIRROR=${env.MIRROR}\n`).toString('base64')}\n`,
      'a credential of the URL in MIRROR (sandbox.env',
    ],
    ['the agent’s key', 'key.txt', `${AGENT_KEY}\n`, 'the value of ANTHROPIC_API_KEY (agent.env)'],
  ])('%s is refused, naming the file and the variable, never the secret', async (_how, file, content, label) => {
    const { workspaces, ws } = await workspace();
    const before = await workspaces.head(ws);
    mkdirSync(join(ws.dir, file, '..'), { recursive: true });
    writeFileSync(join(ws.dir, file), content);
    const err = await workspaces.commitAll(ws, 'rmapp: attempt 1').catch((e: unknown) => e);
    expect(toErrorData(err), `the commit of ${file}`).toMatchObject({ code: 'SECRET_IN_CHANGES', category: 'validation' });
    const message = (err as Error).message;
    expect(message).toContain(file);
    expect(message).toContain(label);
    expect(message, 'how to fix it').toContain('pass it to the tests another way');
    for (const secret of SECRETS) expect(message, 'the message shows a secret').not.toContain(secret);
    expect(JSON.stringify(toErrorData(err).details), 'the details show a secret').not.toMatch(new RegExp(SECRETS.join('|')));
    expect(await workspaces.head(ws), 'a commit was made').toBe(before);
    expect(readdirSync(ws.dir).sort(), 'the attempt was discarded').toEqual(['.git', 'README.md']);
  });

  it('a file named after the mirror token is refused, naming its name', async () => {
    const { workspaces, ws } = await workspace();
    writeFileSync(join(ws.dir, MIRROR_TOKEN), 'x\n');
    const err = await workspaces.commitAll(ws, 'rmapp: attempt 1').catch((e: unknown) => e);
    expect(toErrorData(err).code).toBe('SECRET_IN_CHANGES');
    expect((err as Error).message).toContain('in the name of ');
    expect((err as Error).message).toContain('MIRROR (sandbox.env');
  });

  it('the URLs without their credentials, a URL whose password is its user, and a URL of no configured secret are committed', async () => {
    const { workspaces, ws } = await workspace();
    writeFileSync(
      join(ws.dir, 'README.md'),
      [
        'hello',
        'mirror: https://mirror.example.com/repo.git (user ci-bot)',
        'db: postgres://app@db.internal:5432/test',
        'local: postgres://postgres:postgres@localhost:5432/test',
        'fixture: https://someone:not-a-configured-secret@example.com/?token=also-not-configured',
        '',
      ].join('\n'),
    );
    const { committed } = await workspaces.commitAll(ws, 'rmapp: docs');
    expect(committed).toBe(true);
  });

  it('the sandbox secrets are the whole values of secret-named variables and the credentials of every URL', async () => {
    const config = await loadConfig({ env, cwd: tmp, requireWebhookSecret: false, serves: false });
    expect(new Set(sandboxSecretsOf(config, env))).toEqual(new Set(SECRETS));
    expect(sandboxSecretSources(config, env).map((s) => s.label.split(' (')[0])).toEqual([
      'the value of ANTHROPIC_API_KEY',
      'a credential of the URL in MIRROR',
      'a credential of the URL in TEST_DB_URL',
      'a credential of the URL in PIP_INDEX_URL',
    ]);
  });
});
