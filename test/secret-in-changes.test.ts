/**
 * The agent holds its own API key, and a prompt-injected agent can write it into a file: with no
 * network at all, the service's own commit and push would carry it to GitHub. A commit whose added
 * lines (or file names) hold one of the service's secrets, whole or in a form the masker knows, is
 * refused and the attempt discarded; a fixture shaped like a token, which is no secret of the
 * service's, is committed as it is.
 */
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { toErrorData } from '../src/index.ts';
import { generateKeyPairSync } from 'node:crypto';
import { loadConfig, sandboxSecretsOf } from '../src/rmapp/config.ts';
import { createMasker } from '../src/rmapp/masking.ts';
import { AddedSecretScanner } from '../src/rmapp/secret-scan.ts';
import { Workspaces } from '../src/rmapp/workspace.ts';
import { createBareRemote } from './helpers/git-remote.ts';

const KEY = 'sk-ant-api03-THISISTHEAGENTKEY0123456789abcdefXYZ';
const masker = createMasker([KEY]);

describe('commitAll refuses changes that hold a secret', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'rmapp-secret-scan-'));
  let n = 0;
  async function workspace() {
    n += 1;
    const remote = await createBareRemote(tmp, `r${n}`, { 'README.md': 'hello\n' });
    const workspaces = new Workspaces({
      root: join(tmp, `runs${n}`),
      author: { name: 'rmapp', email: 'rmapp@example.com' },
      mask: masker.text,
      holdsSecret: masker.holdsSecret,
    });
    const ws = await workspaces.prepare({ runId: `scan-${n}`, remoteUrl: remote, branch: 'rmapp/issue-1', base: 'main' });
    return { workspaces, ws };
  }
  const env = `HOME=/home/agent\nAGENT_API_KEY=${KEY}\nPATH=/usr/bin\n`;
  const wrap = (s: string, width: number) => `${s.match(new RegExp(`.{1,${width}}`, 'g'))?.join('\n')}\n`;

  it.each([
    ['the key as it is', 'notes.txt', `my key is ${KEY}\n`],
    ['env | base64', 'notes.txt', wrap(Buffer.from(env).toString('base64'), 76)],
    ['env | xxd -p', 'dump.hex', wrap(Buffer.from(env).toString('hex'), 60)],
    ['in a binary file', 'blob.bin', Buffer.concat([Buffer.from([0, 1, 2, 255]), Buffer.from(KEY), Buffer.from([0])]).toString('latin1')],
    ['in a line starting with "++ "', 'x.diff', `++ ${KEY}\n`],
  ])('%s', async (_how, file, content) => {
    const { workspaces, ws } = await workspace();
    const before = await workspaces.head(ws);
    writeFileSync(join(ws.dir, 'ok.ts'), 'export const ok = 1;\n');
    writeFileSync(join(ws.dir, file), content, file.endsWith('.bin') ? 'latin1' : 'utf8');
    const err = await workspaces.commitAll(ws, 'rmapp: attempt 1').catch((e: unknown) => e);
    expect(toErrorData(err), `the commit of ${file}`).toMatchObject({ code: 'SECRET_IN_CHANGES', category: 'validation' });
    expect((err as Error).message).toContain(file);
    expect((err as Error).message).not.toContain(KEY);
    expect(await workspaces.head(ws), 'a commit was made').toBe(before);
    expect(readdirSync(ws.dir).sort(), 'the attempt was discarded').toEqual(['.git', 'README.md']);
  });

  it.each([
    ['named after the key', KEY],
    // git's diff header quotes a tab or a non-ASCII byte: the name is read as git stores it.
    ['spelling the key out with tabs', [...KEY].join('\t')],
    ['spelling the key out with no-break spaces', [...KEY].join('\u00a0')],
  ])('a file %s', async (_how, name) => {
    const { workspaces, ws } = await workspace();
    mkdirSync(join(ws.dir, 'keys'));
    writeFileSync(join(ws.dir, 'keys', name), 'x\n');
    const err = await workspaces.commitAll(ws, 'rmapp: attempt 1').catch((e: unknown) => e);
    expect(toErrorData(err).code).toBe('SECRET_IN_CHANGES');
    expect((err as Error).message).not.toContain(KEY);
  });

  it('a fixture shaped like a token, a URL password, and the key removed again are committed', async () => {
    const { workspaces, ws } = await workspace();
    writeFileSync(
      join(ws.dir, 'fixture.ts'),
      `export const token = 'ghp_${'a'.repeat(36)}';\nexport const url = 'postgres://u:hunter22@db/x';\n`,
    );
    const { committed } = await workspaces.commitAll(ws, 'rmapp: fixtures');
    expect(committed).toBe(true);
  });
});

it("the scanner finds a secret whose wrapped form straddles a window's edge, fed in chunks cut anywhere", () => {
  const scanner = new AddedSecretScanner(masker.holdsSecret);
  const header = 'diff --git a/big.txt b/big.txt\n--- /dev/null\n+++ b/big.txt\n@@ -0,0 +1,9 @@\n';
  // 30 characters short of the 1 MiB window, then the key's base64 in lines of 20: the window is
  // checked after the second of them, in the middle of the key, and its end checked again with the rest.
  const padding = `+${'x'.repeat(1024 * 1024 - 31)}\n`;
  const wrapped = Buffer.from(`K=${KEY}`)
    .toString('base64')
    .match(/.{1,20}/g)
    ?.map((l) => `+${l}\n`)
    .join('');
  const diff = Buffer.from(header + padding + wrapped);
  for (let at = 0; at < diff.length; at += 4099) scanner.write(diff.subarray(at, at + 4099));
  expect(scanner.end()).toBe('diff --git a/big.txt b/big.txt');
  // Spelled out in hex, a digit per line after 600 blanks (~62 KB): the window's end is kept by the
  // letters and digits it holds, not its raw length, or the form straddling the edge is never whole.
  const spaced = new AddedSecretScanner(masker.holdsSecret);
  const spelled = [...Buffer.from(KEY).toString('hex')].map((d) => `+${' '.repeat(600)}${d}\n`).join('');
  spaced.write(Buffer.from(`${header}+${'x'.repeat(1024 * 1024 - 40_000)}\n${spelled}`));
  expect(spaced.end(), 'the spaced hex across the window edge').toBe('diff --git a/big.txt b/big.txt');
  // One added line of 8 MB with no break, the key at its end: read as it comes, window by window (the
  // partial line was joined to each chunk: quadratic, 5 s for 32 MB).
  const long = new AddedSecretScanner(masker.holdsSecret);
  const line = Buffer.from(`${header}+${'z'.repeat(8 * 1024 * 1024)}${KEY}`);
  for (let at = 0; at < line.length; at += 65_536) long.write(line.subarray(at, at + 65_536));
  expect(long.end(), 'the key at the end of one long line').toBe('diff --git a/big.txt b/big.txt');
  // A removed line holding the key is not what a commit adds.
  const removed = new AddedSecretScanner(masker.holdsSecret);
  removed.write(Buffer.from(`${header.replace('+1 @@', '+0 @@')}-${KEY}\n`));
  expect(removed.end(), 'a removed line').toBeNull();
  const clean = new AddedSecretScanner(masker.holdsSecret);
  clean.write(Buffer.from(`${header}+${'y'.repeat(3 * 1024 * 1024)}\n`));
  expect(clean.end()).toBeNull();
});

it("only the sandbox's secret-named variables count, and a key's PEM lines alone are no secret", async () => {
  const env = {
    GITHUB_TOKEN: 'ghp_x',
    GITHUB_WEBHOOK_SECRET: 'a-long-secret',
    RMAPP_TEST_COMMAND: 'npm test',
    DATABASE_URL: 'postgres://app:postgres@db/app',
    RMAPP_AGENT_COMMAND: 'my-agent',
    RMAPP_AGENT_ENV: 'ANTHROPIC_API_KEY,ANTHROPIC_BASE_URL',
    RMAPP_SANDBOX_ENV: 'NPM_TOKEN,JAVA_HOME,AWS_SECRET_ACCESS_KEY',
    ANTHROPIC_API_KEY: KEY,
    ANTHROPIC_BASE_URL: 'https://llm-proxy.internal.example',
    NPM_TOKEN: 'npm_0123456789abcdefghij',
    JAVA_HOME: '/usr/lib/jvm/java-17-openjdk-amd64',
    AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  };
  const config = await loadConfig({ env, cwd: mkdtempSync(join(tmpdir(), 'rmapp-scan-config-')), requireWebhookSecret: false });
  // The database password (`postgres`) and plain settings would refuse every change naming them.
  expect(sandboxSecretsOf(config, env).sort()).toEqual([env.AWS_SECRET_ACCESS_KEY, KEY, env.NPM_TOKEN].sort());
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const withKey = createMasker([pem]);
  for (const text of ['-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----', 'The file holds an RSA private key.'])
    expect(withKey.holdsSecret(text), JSON.stringify(text)).toBe(false);
  expect(withKey.holdsSecret(`key: |\n${pem.replace(/^/gm, '  ')}`), 'the key itself, indented').toBe(true);
});
