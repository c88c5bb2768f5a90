/**
 * An App's installation token — minted per repository as the service runs, for its API calls and for
 * git's pushes, and held by no configured list — in what the service writes to GitHub and to its logs,
 * in the forms a test or a git trace prints it: base64 with and without padding, wrapped at 76 columns
 * as `base64` wraps, in git's `x-access-token:TOKEN` Basic form, in URLs (URL-safe alphabet, percent-
 * encoded) and JSON-escaped (`\n` breaks, `\/`). The GitHub-write masker (service.ts `maskGitHubWrites`)
 * and the logger's knew only the configured secrets and the token's `ghs_` shape, which no base64 has.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Octokit } from '@octokit/rest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/rmapp/config.ts';
import { createGitHubAccess, type GitHubOctokit } from '../src/rmapp/github/client.ts';
import { createLogger } from '../src/rmapp/logger.ts';
import { githubRuntime } from '../src/rmapp/service.ts';
import { appKeyPair } from './helpers/app-keys.ts';
import { GitHubEmulator } from './helpers/github-emulator.ts';

const APP_ID = 5151;
const { privateKey, publicKey } = appKeyPair();
let emulator: GitHubEmulator;
let baseUrl: string;

beforeAll(async () => {
  emulator = new GitHubEmulator('personal-token');
  baseUrl = await emulator.start();
  emulator.configureApp({ appId: APP_ID, publicKey, installations: { 'acme/widgets': 91 } });
});
afterAll(() => emulator.stop());

/** The service's GitHub access in App mode, against the emulator, without retries or write pacing. */
const appAccess = () =>
  createGitHubAccess({ baseUrl, retries: 0, minWriteIntervalMs: 0, minNotifyingWriteIntervalMs: 0, app: { appId: APP_ID, privateKey } });
const b64 = (text: string): string => Buffer.from(text).toString('base64');
const wrap76 = (text: string): string => text.replace(/(.{76})(?=.)/g, '$1\n');

/**
 * Pieces of the token's base64 that depend on its bytes alone, for each of the three alignments and in
 * both alphabets: any base64 holding the token holds one of them once line breaks, `\n` escapes and the
 * `\` of `\/` are taken out and percent-escapes decoded.
 */
function base64Traces(token: string): string[] {
  const out: string[] = [];
  for (let k = 0; k < 3; k += 1) {
    const middle = Buffer.concat([Buffer.alloc(k), Buffer.from(token)])
      .toString('base64')
      .slice(8, 28);
    out.push(middle, middle.replaceAll('+', '-').replaceAll('/', '_'));
  }
  return out;
}

/** The token or any trace of its base64 in `text`, read as a decoder would: a description, or null. */
function leaked(text: string, token: string): string | null {
  if (text.includes(token)) return 'the token as it is';
  const joined = decodeURIComponent(text.replace(/%(?![0-9A-Fa-f]{2})/g, '%25')).replace(/[\s]+|\\[nrt]|\\(?=\/)/g, '');
  const trace = base64Traces(token).find((t) => joined.includes(t));
  return trace ? `its base64 (${trace})` : null;
}

/** What a hostile test or agent prints of the token, in every form that reaches a comment or a log. */
function hostileForms(token: string): Record<string, string> {
  const env = (prefix: string) => wrap76(b64(`${prefix}GIT_TOKEN=${token}\nPATH=/usr/local/bin:/usr/bin\n`));
  return {
    'base64, padded': `token: ${b64(token)}`,
    'base64, unpadded': `token: ${b64(token).replace(/=+$/, '')}`,
    "git's Basic credential": `extraheader = ${b64(`x-access-token:${token}`)}`,
    'env | base64, wrapped at 76 (alignment 0)': env('HOME=/root\n'),
    'env | base64, wrapped at 76 (alignment 1)': env('HOME=/roots\n'),
    'env | base64, wrapped at 76 (alignment 2)': env('HOME=/rootss\n'),
    'base64 with CRLF breaks': wrap76(b64(`export T=${token}; echo done`)).replaceAll('\n', '\r\n'),
    'URL-safe base64 in a URL': `https://callback.example.com/done?state=${Buffer.from(`t=${token}`).toString('base64url')}&x=1`,
    'percent-encoded base64 in a URL': `https://example.com/?d=${encodeURIComponent(b64(`xx${token}`))}`,
    'JSON-escaped wrapped base64': JSON.stringify({ output: env('USER=ci\n') }),
    'JSON-escaped with \\/': JSON.stringify({ output: env('A=1\n') }).replaceAll('/', '\\/'),
    'in a clone URL': `fatal: could not read from https://x-access-token:${token}@github.com/acme/widgets.git`,
  };
}

/** Ordinary text that must come out as it went in. */
const ORDINARY =
  'See https://example.com/docs/setup and the example above; `hello world` in base64 is aGVsbG8gd29ybGQ= and ' +
  'the commit is 3f2a9c1d. Pushed to https://github.com/acme/widgets.git as rmapp[bot].';

describe('an installation token the service minted for a repository (App mode: no configured list holds it)', () => {
  it('is masked in a GitHub comment and a PR body in every form, and ordinary text is left as it was', async () => {
    const access = appAccess();
    // The token a push would use (workspace.ts asks for it before git runs): minted here.
    const token = await access.tokenForRepo('acme', 'widgets');
    expect(emulator.installationTokens.get(token), 'the emulator minted it').toBe(91);

    const config = await loadConfig({
      env: { GITHUB_TOKEN: 'ghp_instTokTest0123456789abcdefABCDEFghij', RMAPP_AGENT_COMMAND: 'a', RMAPP_TEST_COMMAND: 'b' },
      cwd: mkdtempSync(join(tmpdir(), 'rmapp-inst-token-')),
      requireWebhookSecret: false,
      serves: false,
    });
    const bodies: string[] = [];
    const fake = new Octokit({
      request: {
        fetch: async (_url: string, init: { body?: string }) => {
          bodies.push(String(init.body ?? ''));
          return new Response('{"id":1,"number":2}', { status: 201, headers: { 'content-type': 'application/json' } });
        },
      },
    }) as unknown as GitHubOctokit;
    const log = createLogger({ level: 'silent' });
    const { github } = githubRuntime(config, { github: fake, log });
    const forms = hostileForms(token);
    for (const [name, form] of Object.entries(forms)) {
      await github.rest.issues.createComment({ owner: 'acme', repo: 'widgets', issue_number: 1, body: `${ORDINARY}\n${form}\n` });
      await github.rest.pulls.create({ owner: 'acme', repo: 'widgets', head: 'rmapp/1', base: 'main', title: 't', body: form });
      const [comment, pr] = bodies.slice(-2).map((b) => JSON.parse(b) as { body: string });
      expect(leaked(comment?.body ?? '', token), `the comment holding the token (${name}) shows`).toBeNull();
      expect(leaked(pr?.body ?? '', token), `the PR body holding the token (${name}) shows`).toBeNull();
      expect(comment?.body, `ordinary text beside the token (${name}) was masked`).toContain(ORDINARY);
    }
  });

  it('is masked in the log lines of the logger, whatever it was built with', async () => {
    const access = appAccess();
    const lines: string[] = [];
    const stream = new PassThrough();
    stream.on('data', (d: Buffer) => lines.push(d.toString('utf8')));
    // Built before the token existed, as the service's logger is.
    const log = createLogger({ level: 'info', secrets: [], destination: stream });
    const token = await access.tokenForRepo('acme', 'widgets');
    for (const [name, form] of Object.entries(hostileForms(token))) {
      log.info({ output: form }, `tests printed (${name}): ${form}`);
      await new Promise((r) => setImmediate(r));
      const line = (lines.at(-1) ?? '').replaceAll('\\\\', '\\');
      expect(lines.length, 'a line was written').toBeGreaterThan(0);
      expect(leaked(JSON.parse(lines.at(-1) as string).msg as string, token), `the log line's message (${name}) shows`).toBeNull();
      expect(leaked(line, token), `the log line (${name}) shows`).toBeNull();
    }
    log.info(ORDINARY);
    await new Promise((r) => setImmediate(r));
    expect(JSON.parse(lines.at(-1) as string).msg, 'ordinary text was masked').toBe(ORDINARY);
  });
});
