/**
 * A commit the agent's work makes is refused when what it adds holds one of the service's OWN
 * credentials — its GitHub token, its App's private key, the installation token git pushes with, its
 * webhook secret, its dashboard token, its database password (of DATABASE_URL, of `--database-url`, or
 * PGPASSWORD) — as one holding a secret of agent.env / sandbox.env is. The sandbox is never given them,
 * but one that reached the agent some other way was committed and pushed as it was. The refusal names
 * what kind of secret and where (file and line), never the value. Short or dictionary values refuse
 * nothing (they are still masked). Through the service's own wiring (service.ts `githubRuntime`), on
 * real git.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toErrorData } from '../src/index.ts';
import { loadConfig, secretsOf } from '../src/rmapp/config.ts';
import { createLogger } from '../src/rmapp/logger.ts';
import { githubRuntime } from '../src/rmapp/service.ts';
import { refusesCommits, serviceSecretSources } from '../src/rmapp/service-secret-sources.ts';
import { Workspaces } from '../src/rmapp/workspace.ts';
import { createBareRemote } from './helpers/git-remote.ts';

const GITHUB_TOKEN = 'ghp_h1ServiceToken0123456789abcdefABCDEFgh';
const WEBHOOK_SECRET = 'wh-h1-9f8e7d6c5b4a';
const DASHBOARD_TOKEN = 'dash-h1-0a1b2c3d4e5f6a7b';
const DB_PASSWORD = 'db-h1-Pa55word!x';
const PG_PASSWORD = 'pg-h1-envPassw0rd';
const FLAG_DB_PASSWORD = 'flag-h1-cliPassw0rd';
const INSTALLATION_TOKEN = 'ghs_h1InstallationToken0123456789abcdefAB';
const PRIVATE_KEY = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
const KEY_BODY = PRIVATE_KEY.split('\n')
  .filter((l) => l && !l.startsWith('-----'))
  .join('');
const ALL = [GITHUB_TOKEN, WEBHOOK_SECRET, DASHBOARD_TOKEN, DB_PASSWORD, PG_PASSWORD, FLAG_DB_PASSWORD, INSTALLATION_TOKEN, KEY_BODY];

const baseEnv = {
  RMAPP_TEST_COMMAND: 'npm test',
  RMAPP_AGENT_COMMAND: 'my-agent',
  GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
  RMAPP_DASHBOARD_TOKEN: DASHBOARD_TOKEN,
  DATABASE_URL: `postgres://rmapp:${encodeURIComponent(DB_PASSWORD)}@db.internal:5432/rmapp`,
};
const tmp = mkdtempSync(join(tmpdir(), 'rmapp-h1-own-secrets-'));
// serviceSecretSources reads PGPASSWORD from the service's environment, as the service does.
const savedPg = process.env.PGPASSWORD;
beforeAll(() => {
  process.env.PGPASSWORD = PG_PASSWORD;
});
afterAll(() => {
  if (savedPg === undefined) delete process.env.PGPASSWORD;
  else process.env.PGPASSWORD = savedPg;
});

let n = 0;
async function workspace(env: Record<string, string> = { GITHUB_TOKEN }, databaseUrl?: string) {
  n += 1;
  const config = await loadConfig({
    env: { ...baseEnv, ...env, RMAPP_WORKSPACE_ROOT: join(tmp, `runs${n}`) },
    cwd: tmp,
    requireWebhookSecret: false,
    serves: false,
  });
  const { workspaces } = githubRuntime(config, { log: createLogger({ secrets: secretsOf(config) }), databaseUrl });
  const remote = await createBareRemote(tmp, `r${n}`, { 'README.md': 'hello\n' });
  const ws = await workspaces.prepare({ runId: `h1-${n}`, remoteUrl: remote, branch: 'rmapp/issue-1', base: 'main' });
  return { workspaces, ws, remote };
}

/** Commits `files` and expects the refusal: its message and details, and that nothing was committed. */
async function expectRefused(
  made: Awaited<ReturnType<typeof workspace>>,
  files: Record<string, string | Buffer>,
  expected: { label: string; where: string },
  message = 'rmapp: attempt 1',
) {
  const { workspaces, ws } = made;
  const before = await workspaces.head(ws);
  for (const [file, content] of Object.entries(files)) writeFileSync(join(ws.dir, file), content);
  const err = await workspaces.commitAll(ws, message).catch((e: unknown) => e);
  const data = toErrorData(err);
  expect(data, `the commit of ${Object.keys(files).join(', ')}`).toMatchObject({ code: 'SECRET_IN_CHANGES', category: 'validation' });
  const text = (err as Error).message;
  expect(text, 'what kind of secret').toContain(expected.label);
  expect(text, 'where').toContain(expected.where);
  expect(text, 'what to do').toContain('rotate it');
  for (const secret of ALL) {
    expect(text, 'the message shows a secret').not.toContain(secret);
    expect(JSON.stringify(data), 'the error data shows a secret').not.toContain(secret);
  }
  expect(await workspaces.head(ws), 'a commit was made').toBe(before);
  expect(readdirSync(ws.dir).sort(), 'the attempt was discarded').toEqual(['.git', 'README.md']);
  return data;
}

describe("a commit adding one of the service's own credentials", () => {
  it('the GitHub token on line 3 is refused, naming the token, the file and the line', async () => {
    const data = await expectRefused(
      await workspace(),
      { 'notes.md': `one\ntwo\nexport GH=${GITHUB_TOKEN}\nfour\n` },
      { label: "the service's own GitHub token (github.token, GITHUB_TOKEN)", where: 'notes.md, line 3' },
    );
    expect(data.details).toMatchObject({ file: 'notes.md', line: 3, lastLine: 3 });
  });

  it('the token split across two lines of a string concatenation is refused, naming both lines', async () => {
    const half = GITHUB_TOKEN.length >> 1;
    await expectRefused(
      await workspace(),
      { 'split.ts': `// a\nconst t =\n  "${GITHUB_TOKEN.slice(0, half)}" +\n  "${GITHUB_TOKEN.slice(half)}";\n` },
      { label: 'GitHub token', where: 'split.ts, lines 3–4' },
    );
  });

  it('the token inside a binary file (NUL bytes around it) is refused', async () => {
    const bytes = Buffer.concat([Buffer.from([0, 1, 2, 0xff, 0xfe, 0]), Buffer.from(GITHUB_TOKEN), Buffer.from([0, 0, 0x89, 0x50])]);
    await expectRefused(await workspace(), { 'blob.bin': bytes }, { label: 'GitHub token', where: 'blob.bin, line 1' });
  });

  it('a file named after the token is refused, naming its name', async () => {
    await expectRefused(await workspace(), { [GITHUB_TOKEN]: 'x\n' }, { label: 'GitHub token', where: 'in the name of ' });
  });

  it('a directory named after the token, a symlink pointing at it, and the token re-cased are refused', async () => {
    let made = await workspace();
    mkdirSync(join(made.ws.dir, `cache-${GITHUB_TOKEN}`));
    await expectRefused(made, { [`cache-${GITHUB_TOKEN}/x.txt`]: 'x\n' }, { label: 'GitHub token', where: 'in the name of cache-' });
    made = await workspace();
    // git stores a symlink's target as its content: an added line without a line break.
    symlinkSync(`../../${GITHUB_TOKEN}`, join(made.ws.dir, 'link'));
    await expectRefused(made, {}, { label: 'GitHub token', where: 'link, line 1' });
    made = await workspace();
    await expectRefused(
      made,
      { 'upper.txt': `TOKEN=${GITHUB_TOKEN.toUpperCase()}\n` },
      { label: 'GitHub token', where: 'upper.txt, line 1' },
    );
  });

  it('the token in a commit message is masked: the commit is made, the token is not in it', async () => {
    const { workspaces, ws } = await workspace();
    writeFileSync(join(ws.dir, 'ok.md'), 'fine\n');
    const { committed, sha } = await workspaces.commitAll(
      ws,
      `rmapp: attempt 1\n\nthe agent said: token ${GITHUB_TOKEN} and ${INSTALLATION_TOKEN}`,
    );
    expect(committed).toBe(true);
    const body = execFileSync('git', ['-C', ws.dir, 'log', '-1', '--format=%B', sha], { encoding: 'utf8' });
    expect(body).toContain('[REDACTED]');
    for (const secret of ALL) expect(body, 'the commit message holds a secret').not.toContain(secret);
  });

  it('the line is that of the new file: a change to line 7 of a tracked file, and a line past the first MiB window', async () => {
    const made = await workspace();
    const { workspaces, ws } = made;
    const ten = Array.from({ length: 10 }, (_, i) => `line ${i + 1}`);
    writeFileSync(join(ws.dir, 'ten.md'), `${ten.join('\n')}\n`);
    await workspaces.commitAll(ws, 'rmapp: ten lines');
    ten[1] = 'changed 2';
    ten[6] = `token ${GITHUB_TOKEN}`;
    const big = `${Array.from({ length: 200_000 }, (_, i) => `filler ${i}`).join('\n')}\nthe token: ${GITHUB_TOKEN}\n`;
    writeFileSync(join(ws.dir, 'ten.md'), `${ten.join('\n')}\n`);
    let err = await workspaces.commitAll(ws, 'rmapp: attempt 1').catch((e: unknown) => e);
    expect(toErrorData(err).details).toMatchObject({ file: 'ten.md', line: 7, lastLine: 7 });
    writeFileSync(join(ws.dir, 'big.txt'), big);
    err = await workspaces.commitAll(ws, 'rmapp: attempt 2').catch((e: unknown) => e);
    expect(toErrorData(err).details, 'past the first window').toMatchObject({ file: 'big.txt', line: 200_001, lastLine: 200_001 });
  });

  it('the webhook secret, base64-encoded, is refused', async () => {
    await expectRefused(
      await workspace(),
      { 'env.b64': `${Buffer.from(`GITHUB_WEBHOOK_SECRET=${WEBHOOK_SECRET}\n`).toString('base64')}\n` },
      { label: "the service's own webhook secret", where: 'env.b64, line 1' },
    );
  });

  it('the dashboard token, hex-dumped over lines, is refused', async () => {
    const hex = Buffer.from(DASHBOARD_TOKEN).toString('hex');
    await expectRefused(
      await workspace(),
      { 'dump.txt': `${hex.slice(0, 20)}\n${hex.slice(20)}\n` },
      { label: "the service's own dashboard token", where: 'dump.txt, lines 1–2' },
    );
  });

  it("DATABASE_URL's password is refused", async () => {
    await expectRefused(
      await workspace(),
      { 'db.env': `PGHOST=db.internal\nPASSWORD=${DB_PASSWORD}\n` },
      { label: "the service's own database password (of databaseUrl", where: 'db.env, line 2' },
    );
  });

  it('PGPASSWORD is refused', async () => {
    await expectRefused(
      await workspace(),
      { 'conf.ini': `[db]\npassword = ${PG_PASSWORD}\n` },
      { label: "the service's own database password (PGPASSWORD)", where: 'conf.ini, line 2' },
    );
  });

  it('the password of --database-url (given to githubRuntime, not in DATABASE_URL) is refused', async () => {
    await expectRefused(
      await workspace({ GITHUB_TOKEN }, `postgres://worker:${FLAG_DB_PASSWORD}@other-db:5432/rmapp`),
      { 'x.txt': `${FLAG_DB_PASSWORD}\n` },
      { label: "the service's own database password", where: 'x.txt, line 1' },
    );
  });

  it("the App's private key is refused whole, and its base64 body alone rewrapped at 76 columns", async () => {
    const app = { GITHUB_APP_ID: '12345', GITHUB_PRIVATE_KEY: PRIVATE_KEY };
    await expectRefused(
      await workspace(app),
      { 'key.pem': PRIVATE_KEY },
      { label: "the service's own GitHub App private key", where: 'key.pem' },
    );
    const rewrapped = (KEY_BODY.match(/.{1,76}/g) ?? []).join('\n');
    await expectRefused(
      await workspace(app),
      { 'body.txt': `junk\n${rewrapped}\n` },
      { label: "the service's own GitHub App private key", where: 'body.txt, lines 2–' },
    );
  });

  it('the installation token git pushes with (minted at run time, in no configuration) is refused', async () => {
    const remote = await createBareRemote(tmp, 'installation', { 'README.md': 'hello\n' });
    const workspaces = new Workspaces({
      root: join(tmp, 'installation-runs'),
      author: { name: 'rmapp', email: 'rmapp@example.com' },
      // As service.ts asks the App for the repository's installation token.
      token: async (url) => (url.startsWith('https://github.example/') ? INSTALLATION_TOKEN : undefined),
    });
    const ws = await workspaces.prepare({ runId: 'h1-installation', remoteUrl: remote, branch: 'rmapp/issue-1', base: 'main' });
    // The workspace as a run on GitHub has it: its remote is https (the token is asked for https remotes only).
    await expectRefused(
      { workspaces, ws: { ...ws, remoteUrl: 'https://github.example/o/r.git' }, remote },
      { 'leak.txt': `x-access-token:${INSTALLATION_TOKEN}\n` },
      { label: "the service's own GitHub token for this repository", where: 'leak.txt, line 1' },
    );
  });
});

describe('short and dictionary values of the service refuse nothing (they are still masked)', () => {
  it('a database password `postgres`, PGPASSWORD under 8 characters and a webhook secret that is a word: a commit naming them is made', async () => {
    const saved = process.env.PGPASSWORD;
    process.env.PGPASSWORD = 'pgpw123';
    try {
      const made = await workspace({
        GITHUB_TOKEN,
        DATABASE_URL: 'postgres://app:postgres@localhost:5432/app',
        GITHUB_WEBHOOK_SECRET: 'changeme',
      });
      writeFileSync(
        join(made.ws.dir, 'README.md'),
        'hello\nRun postgres, set PGPASSWORD=pgpw123, and changeme in the webhook secret. Password fields.\n',
      );
      const { committed } = await made.workspaces.commitAll(made.ws, 'rmapp: docs');
      expect(committed, 'a commit naming a common word was refused').toBe(true);
    } finally {
      process.env.PGPASSWORD = saved;
    }
  });

  it('refusesCommits: under 8 characters or a word under 12 letters refuses nothing; a token, a key or a password with a digit does', () => {
    for (const weak of ['postgres', 'password', 'Password', 'changeme', 's3cr3t', 'pgpw123', 'abcdefghijk'])
      expect(refusesCommits(weak), weak).toBe(false);
    for (const strong of ['hunter22', 'abcdefghijkl', GITHUB_TOKEN, DB_PASSWORD, PRIVATE_KEY])
      expect(refusesCommits(strong), strong.slice(0, 12)).toBe(true);
  });

  it('serviceSecretSources lists each configured credential once, by kind, without the weak ones', async () => {
    const config = await loadConfig({
      env: { ...baseEnv, GITHUB_TOKEN },
      cwd: tmp,
      requireWebhookSecret: false,
      serves: false,
    });
    const sources = serviceSecretSources(config, { PGPASSWORD: 'short' }, `postgres://x:${FLAG_DB_PASSWORD}@h/d`);
    expect(sources.map((s) => s.label.replace(/ \(.*$/, ''))).toEqual([
      "the service's own GitHub token",
      "the service's own webhook secret",
      "the service's own dashboard token",
      "the service's own database password",
    ]);
    expect(sources.at(-1)?.secrets).toEqual([DB_PASSWORD, FLAG_DB_PASSWORD]);
  });
});
