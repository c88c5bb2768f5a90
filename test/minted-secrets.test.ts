/**
 * The list of secrets the service mints as it runs (minted-secrets.ts): every masker reads it, a token
 * is masked while it can be valid and a grace period after, then forgotten, and the installation
 * clients' own requests put their token on it (github/client.ts `createGitHubAccess`), not only a push's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGitHubAccess } from '../src/rmapp/github/client.ts';
import { createMasker, MASK } from '../src/rmapp/masking.ts';
import { DEFAULT_MINTED_LIFETIME_MS, MINTED_SECRET_GRACE_MS, MintedSecrets, mintedSecrets } from '../src/rmapp/minted-secrets.ts';
import { appKeyPair } from './helpers/app-keys.ts';
import { GitHubEmulator } from './helpers/github-emulator.ts';

const TOKEN = 'ghs_0f3a9c7d1e5b2a4c6e8f0a1b3c5d7e9f1a2b';
const B64 = Buffer.from(TOKEN).toString('base64');

describe('a minted token in a masker built before it was minted', () => {
  it('is masked in every form until it expires and the grace period ends, then forgotten', () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const minted = new MintedSecrets(() => now);
    const masker = createMasker(['configured-s3cret-value'], { minted });
    expect(masker.text(`t=${B64}`), 'before it was minted (the control)').toBe(`t=${B64}`);
    minted.add(TOKEN, '2026-01-01T01:00:00Z');
    expect(masker.text(`t=${B64}`), 'base64, padded').toBe(`t=${MASK}`);
    expect(masker.text(`x ${Buffer.from(`x-access-token:${TOKEN}`).toString('base64')}`), "git's Basic form").toBe(`x ${MASK}`);
    expect(masker.text('configured-s3cret-value'), 'the configured secret still').toBe(MASK);
    now = Date.parse('2026-01-01T01:00:00Z') + MINTED_SECRET_GRACE_MS - 1;
    expect(masker.text(`t=${B64}`), 'within the grace period').toBe(`t=${MASK}`);
    now += 2;
    expect(minted.secrets(), 'forgotten after it').toEqual([]);
    expect(masker.text(`t=${B64}`), 'masked after the grace period').toBe(`t=${B64}`);
    expect(masker.text('configured-s3cret-value'), 'the configured secret after the token went').toBe(MASK);
  });

  it('lasts an hour when GitHub gives no expiry, and keeps the later end when minted again', () => {
    let now = 1_000_000;
    const minted = new MintedSecrets(() => now);
    minted.add(TOKEN);
    minted.add(TOKEN, now + 60_000);
    now += DEFAULT_MINTED_LIFETIME_MS + MINTED_SECRET_GRACE_MS - 1;
    expect(minted.secrets()).toEqual([TOKEN]);
    now += 2;
    expect(minted.secrets()).toEqual([]);
  });

  it('holdsSecret (the commit check) reads the configured secrets only', () => {
    const minted = new MintedSecrets();
    minted.add(TOKEN);
    expect(createMasker([], { minted }).holdsSecret(TOKEN)).toBe(false);
  });
});

describe("an installation client's own requests", () => {
  const APP_ID = 6161;
  const { privateKey, publicKey } = appKeyPair();
  let emulator: GitHubEmulator;
  let baseUrl: string;
  beforeAll(async () => {
    emulator = new GitHubEmulator('personal-token');
    baseUrl = await emulator.start();
    emulator.configureApp({ appId: APP_ID, publicKey, installations: { 'acme/widgets': 17 } });
  });
  afterAll(() => emulator.stop());

  it('put the token they carry on the process list (the default) or the one given', async () => {
    const own = new MintedSecrets();
    const options = { baseUrl, retries: 0, minWriteIntervalMs: 0, minNotifyingWriteIntervalMs: 0, app: { appId: APP_ID, privateKey } };
    const github = await createGitHubAccess({ ...options, minted: own }).githubForRepo('acme', 'widgets');
    await github.rest.issues.get({ owner: 'acme', repo: 'widgets', issue_number: 1 }).catch(() => {});
    const minted = [...emulator.installationTokens.keys()];
    expect(minted).toHaveLength(1);
    expect(own.secrets(), 'the request’s token').toEqual(minted);
    const other = await createGitHubAccess(options).githubForRepo('acme', 'widgets');
    await other.rest.issues.get({ owner: 'acme', repo: 'widgets', issue_number: 1 }).catch(() => {});
    const second = [...emulator.installationTokens.keys()].find((t) => !minted.includes(t)) as string;
    expect(mintedSecrets.secrets(), 'the process list').toContain(second);
    expect(createMasker([]).text(Buffer.from(second).toString('base64')), 'a masker made with no list').toBe(MASK);
  });
});
