/**
 * Attacks on the GitHub App's private key as a secret of the service's (helper 6): a key configured with
 * escaped line breaks, and its base64 body alone, reached a pushed commit or a masked line. Found by
 * reading src/rmapp/service-secret-sources.ts, config.ts `secretsOf` and masking.ts.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, secretsOf } from '../src/rmapp/config.ts';
import { createLogger } from '../src/rmapp/logger.ts';
import { createMasker } from '../src/rmapp/masking.ts';
import { runCommand } from '../src/rmapp/process.ts';
import { githubRuntime } from '../src/rmapp/service.ts';
import { cleanupsAfterAll } from './helpers/cleanups.ts';
import { createBareRemote } from './helpers/git-remote.ts';

const cleanups = cleanupsAfterAll();

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'h6-secrets-'));
  cleanups.push(() => runCommand(['rm', '-rf', dir]));
  return dir;
}

/** A GitHub App's key as GitHub gives it: PKCS#1 PEM, lines of 64. */
const KEY = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
}).privateKey;
/** Its base64 body, lines of 64, without the BEGIN and END lines. */
const BODY_LINES = KEY.split('\n').filter((l) => l && !l.startsWith('-----'));
/** The last 120 characters of the body: the private part (the first lines are the public modulus). */
const PRIVATE_TAIL = BODY_LINES.join('').slice(-120);

/** The GitHub runtime of a service configured as `env` says, with a workspace on a fresh remote. */
async function runtimeWith(env: Record<string, string>) {
  const root = tempDir();
  const config = await loadConfig({
    cwd: root,
    env: {
      RMAPP_WORKSPACE_ROOT: join(root, 'workspaces'),
      RMAPP_AGENT_COMMAND: 'true',
      RMAPP_TEST_COMMAND: 'true',
      ...env,
    },
    requireWebhookSecret: false,
    serves: false,
  });
  const runtime = githubRuntime(config, { log: createLogger({ secrets: secretsOf(config), level: 'silent' }) });
  const remote = await createBareRemote(root, 'repo', { 'README.md': '# repo\n' });
  const ws = await runtime.workspaces.prepare({ runId: 'h6-run', remoteUrl: remote, branch: 'rmapp/h6', base: 'main' });
  return { config, runtime, ws };
}

async function lastMessage(dir: string): Promise<string> {
  return (await runCommand(['git', 'log', '-1', '--format=%B'], { cwd: dir })).stdout;
}

describe('the App private key given with escaped line breaks (GITHUB_PRIVATE_KEY in a .env file)', () => {
  // Octokit reads `\n` in the key as line breaks (universal-github-app-jwt), so a key kept on one line
  // in an environment file works; the commit check and the masker took it as written, with `\n` in it.
  const escaped = KEY.trimEnd().replaceAll('\n', '\\n');

  it('refuses a commit adding the key as a PEM file', async () => {
    const { runtime, ws } = await runtimeWith({ GITHUB_APP_ID: '1', GITHUB_PRIVATE_KEY: escaped });
    writeFileSync(join(ws.dir, 'app.pem'), KEY);
    const outcome = await runtime.workspaces.commitAll(ws, 'add notes').then(
      (r) => `committed ${r.sha}`,
      (err: Error & { code?: string }) => err.code,
    );
    expect(outcome, 'the App key written as a PEM file was committed').toBe('SECRET_IN_CHANGES');
  });

  it('refuses a commit adding its base64 body alone', async () => {
    const { runtime, ws } = await runtimeWith({ GITHUB_APP_ID: '1', GITHUB_PRIVATE_KEY: escaped });
    writeFileSync(join(ws.dir, 'notes.txt'), `${BODY_LINES.join('\n')}\n`);
    const outcome = await runtime.workspaces.commitAll(ws, 'add notes').then(
      (r) => `committed ${r.sha}`,
      (err: Error & { code?: string }) => err.code,
    );
    expect(outcome, "the App key's body was committed").toBe('SECRET_IN_CHANGES');
  });

  it('masks the key as a PEM block is written (logs, comments)', () => {
    const masker = createMasker(
      secretsOf({ github: { privateKey: escaped }, server: {}, agent: { env: [] }, sandbox: { env: [] } } as never, {}),
    );
    expect(masker.text(`key:\n${BODY_LINES.join('\n')}`)).not.toContain(BODY_LINES[10]);
  });
});

describe("the App private key's base64 body alone", () => {
  it('is masked wherever the service writes (its logs, comments, API)', () => {
    const masker = createMasker(
      secretsOf({ github: { privateKey: KEY }, server: {}, agent: { env: [] }, sandbox: { env: [] } } as never, {}),
    );
    const shown = masker.text(`the agent said: ${BODY_LINES.join('')}`);
    expect(shown, 'the body, printed on one line, was not masked').not.toContain(PRIVATE_TAIL.slice(-40));
    const wrapped = masker.text(`the agent said:\n${BODY_LINES.join('\n')}\n`);
    expect(wrapped, 'the body, wrapped as PEM wraps it, was not masked').not.toContain(BODY_LINES.at(-2));
  });

  it("is not pushed in a commit's message (the agent's summary goes there)", async () => {
    const { runtime, ws } = await runtimeWith({ GITHUB_APP_ID: '1', GITHUB_PRIVATE_KEY: KEY });
    writeFileSync(join(ws.dir, 'change.txt'), 'an ordinary change\n');
    const result = await runtime.workspaces.commitAll(ws, `feat: a change\n\n${BODY_LINES.join('\n')}`).catch((err: Error) => err);
    if (result instanceof Error) return; // refused: nothing committed
    const message = await lastMessage(ws.dir);
    expect(message, "the commit's message holds the App key's body").not.toContain(BODY_LINES.at(-2));
  });
});
