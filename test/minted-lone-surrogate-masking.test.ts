/**
 * An installation token holding a lone UTF-16 surrogate — GitHub's token endpoint, an emulator or a
 * hostile proxy answered `"token": "ghs_…\ud800…"` — is no valid Unicode, and `encodeURIComponent`
 * throws on it: every masker (the logger's, the API's, the GitHub writes') built its URL-encoded form
 * and threw on every use until the token expired, so no log line, API answer or comment could be
 * written. The masker masks it as it is and in every form that can be made of it (secret-forms.ts
 * `urlEncoded`, `wellFormed`), other secrets as before; the minting side warns once, naming no secret text.
 */
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGitHubAccess } from '../src/rmapp/github/client.ts';
import { createLogger } from '../src/rmapp/logger.ts';
import { createMasker, MASK } from '../src/rmapp/masking.ts';
import { MintedSecrets } from '../src/rmapp/minted-secrets.ts';
import { appKeyPair } from './helpers/app-keys.ts';
import { GitHubEmulator } from './helpers/github-emulator.ts';

const APP_ID = 6262;
const { privateKey, publicKey } = appKeyPair();
const CONFIGURED = 'configured-s3cret-value';
const b64 = (text: string): string => Buffer.from(text).toString('base64');
const hex = (text: string): string => Buffer.from(text).toString('hex');

/** The token with U+FFFD for each lone surrogate, as UTF-8 output read back shows it. */
const replaced = (text: string): string => Buffer.from(text).toString('utf8');

/** Lines holding `secret` in each form it travels in (URL-encoded as `URLSearchParams` writes a lone surrogate). */
function linesHolding(secret: string): Record<string, string> {
  return {
    raw: `push failed with ${secret} on it`,
    'U+FFFD in its place': `read back: ${replaced(secret)} (end)`,
    'in a query': `GET https://example.com/cb?${new URLSearchParams({ state: secret }).toString()}`,
    'JSON-escaped': JSON.stringify({ token: secret }),
    base64: `token: ${b64(secret)}`,
    "git's Basic credential": `extraheader = AUTHORIZATION: basic ${b64(`x-access-token:${secret}`)}`,
    'env | base64': b64(`HOME=/root\nGIT_TOKEN=${secret}\n`),
    hex: `dump ${hex(secret)}`,
    'spaced, upper-cased': [...secret.toUpperCase()].join(' '),
  };
}

/** What of `secret` shows in `text`: its text, with U+FFFD, its base64 or hex, or null. */
function shows(text: string, secret: string): string | null {
  for (const [name, form] of Object.entries({
    raw: secret,
    replaced: replaced(secret),
    base64: b64(secret).slice(4, 28),
    'base64 of its Basic credential': b64(`x-access-token:${secret}`).slice(20, 44),
    hex: hex(secret).slice(8, 40),
    'its last 16': secret.slice(-16),
    'its first 16': secret.slice(0, 16),
  }))
    if (text.includes(form)) return name;
  return null;
}

describe('a minted token holding a lone surrogate', () => {
  const lone = 'ghs_Lw9nR6cV1kP3\ud800sY7uE5aH0oFiZq8m2Jd0bX4t';
  const ordinary = 'ghs_Qm2Jd0bX4tLw9nR6cV1kP3sY7uE5aH0oFiZq8';

  it('is masked in every form, other secrets as before, and the masker never throws (MintedSecrets directly)', () => {
    const minted = new MintedSecrets();
    const masker = createMasker([CONFIGURED], { minted });
    expect(masker.text(`a ${CONFIGURED}`)).toBe(`a ${MASK}`);
    minted.add(lone);
    minted.add(ordinary);
    for (const secret of [lone, ordinary, CONFIGURED])
      for (const [name, line] of Object.entries(linesHolding(secret))) {
        const out = masker.text(line);
        expect(shows(out, secret), `${JSON.stringify(secret)} ${name}: ${JSON.stringify(out)}`).toBeNull();
      }
    // The three in one line, and in an API answer's value.
    const all = `${lone} ${ordinary} ${CONFIGURED} ${b64(lone)}`;
    expect(masker.text(all)).toBe([MASK, MASK, MASK, MASK].join(' '));
    expect(masker.value({ [lone]: [all], note: 'ok' })).toEqual({ [MASK]: [[MASK, MASK, MASK, MASK].join(' ')], note: 'ok' });
    // Text that holds none of them comes out as it went in.
    expect(masker.text('nothing secret here: https://example.com/?q=%EF%BF%BD')).toBe(
      'nothing secret here: https://example.com/?q=%EF%BF%BD',
    );
  });

  it('configured, builds a masker that masks it and answers the commit check', () => {
    const weakToo = 'ab\udc00cde';
    const masker = createMasker([lone, weakToo, CONFIGURED], { minted: null });
    expect(masker.text(`x ${lone} y ${weakToo} z ${CONFIGURED}`)).toBe(`x ${MASK} y ${MASK} z ${MASK}`);
    expect(masker.holdsSecret(`env: ${b64(`T=${lone}`)}`)).toBe(true);
    expect(masker.holdsSecret(`q=${new URLSearchParams({ t: lone }).toString()}`)).toBe(true);
    expect(masker.holdsSecret('nothing')).toBe(false);
  });

  describe('minted through the App auth code against the emulator', () => {
    let emulator: GitHubEmulator;
    let baseUrl: string;
    beforeAll(async () => {
      emulator = new GitHubEmulator('personal-token');
      baseUrl = await emulator.start();
      emulator.configureApp({ appId: APP_ID, publicKey, installations: { 'acme/widgets': 92 } });
    });
    afterAll(() => emulator.stop());

    it('is masked in log lines and values, and the minting side warns once without the token', async () => {
      emulator.hook({
        method: 'POST',
        route: '/app/installations/{installation_id}/access_tokens',
        when: 'before',
        run: () => ({
          status: 201,
          data: { token: lone, expires_at: new Date(Date.now() + 3_600_000).toISOString(), permissions: {}, repository_selection: 'all' },
        }),
      });
      const warnings: string[] = [];
      const minted = new MintedSecrets();
      const access = createGitHubAccess({
        baseUrl,
        retries: 0,
        minWriteIntervalMs: 0,
        minNotifyingWriteIntervalMs: 0,
        app: { appId: APP_ID, privateKey },
        minted,
        log: { warn: (m: unknown, s?: string) => void warnings.push(String(s ?? m)), error: () => {} },
      });
      const token = await access.tokenForRepo('acme', 'widgets');
      expect(token, 'the token as GitHub (the hook) answered it').toBe(lone);
      expect(await access.tokenForRepo('acme', 'widgets')).toBe(lone);
      expect(minted.secrets()).toEqual([lone]);
      expect(warnings, 'one warning for the token, however often it is used').toHaveLength(1);
      expect(warnings[0]).toMatch(/lone UTF-16 surrogate/);
      expect(shows(warnings[0] as string, lone), 'the warning names the token').toBeNull();
      for (let k = 0; k + 8 <= lone.length; k += 1) expect(warnings[0]).not.toContain(lone.slice(k, k + 8));

      // The service's maskers read the process's list; this one is given the test's.
      const masker = createMasker([CONFIGURED], { minted });
      for (const secret of [lone, CONFIGURED])
        for (const [name, line] of Object.entries(linesHolding(secret)))
          expect(shows(masker.text(line), secret), `${JSON.stringify(secret)} ${name}`).toBeNull();

      // A logger (masking with the process's list): the token added there, as the default access does.
      const lines: string[] = [];
      const stream = new PassThrough();
      stream.on('data', (d: Buffer) => lines.push(d.toString('utf8')));
      const log = createLogger({ level: 'info', secrets: [CONFIGURED], destination: stream });
      const processAccess = createGitHubAccess({
        baseUrl,
        retries: 0,
        app: { appId: APP_ID, privateKey },
        log: { warn: () => {}, error: () => {} },
      });
      emulator.hook({
        method: 'POST',
        route: '/app/installations/{installation_id}/access_tokens',
        when: 'before',
        run: () => ({ status: 201, data: { token: lone, expires_at: new Date(Date.now() + 3_600_000).toISOString() } }),
      });
      expect(await processAccess.tokenForRepo('acme', 'widgets')).toBe(lone);
      for (const [name, line] of Object.entries({ ...linesHolding(lone), configured: `pw ${CONFIGURED}` })) {
        log.info({ output: line }, `tests printed (${name}): ${line}`);
        await new Promise((r) => setImmediate(r));
        const written = lines.at(-1) as string;
        expect(JSON.parse(written).msg, `the log line (${name})`).toMatch(/^tests printed/);
        expect(shows(JSON.parse(written).msg as string, lone), `the log line (${name}) shows the token`).toBeNull();
        expect(written, `the log line (${name}) shows the configured secret`).not.toContain(CONFIGURED);
      }
    });
  });
});
