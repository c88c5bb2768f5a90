/**
 * An installation token is masked while Octokit can still send it. @octokit/auth-app keeps a minted
 * token for 59 minutes by this process's clock, whatever `expires_at` GitHub gave; and GitHub's own
 * clock says when it stops working — an hour after GitHub minted it. When GitHub's clock (a GitHub
 * Enterprise Server's) is behind this process's, `expires_at` read on this clock comes early: the list
 * of minted secrets forgot the token (ten minutes' grace after `expires_at`) while the service still
 * pushed and called the API with it, and a log line or comment quoting it in a form no token pattern
 * sees (git's `Authorization: Basic` value) carried it in clear.
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createGitHubAccess } from '../src/rmapp/github/client.ts';
import { createMasker, MASK } from '../src/rmapp/masking.ts';
import { MintedSecrets } from '../src/rmapp/minted-secrets.ts';
import { silentLogger } from '../src/persistence/logger.ts';
import { GitHubEmulator } from './helpers/github-emulator.ts';

const MINUTE = 60_000;
let emulator: GitHubEmulator | undefined;
afterEach(async () => {
  await emulator?.stop();
  emulator = undefined;
});

describe('an installation token GitHub says expires early (its clock behind ours)', () => {
  it('is masked for as long as Octokit keeps sending it', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    emulator = new GitHubEmulator();
    const baseUrl = await emulator.start();
    emulator.configureApp({ appId: 7, publicKey, installations: { 'acme/widgets': 42 } });
    const gh = emulator;
    // GitHub's clock 30 minutes behind ours: its hour of validity ends 30 minutes from now by our clock.
    gh.hook({
      method: 'POST',
      route: '/app/installations/{installation_id}/access_tokens',
      when: 'after',
      run: () => ({
        status: 201,
        data: {
          token: [...gh.installationTokens.keys()].at(-1),
          expires_at: new Date(Date.now() + 30 * MINUTE).toISOString(),
          permissions: { contents: 'write', issues: 'write', pull_requests: 'write' },
          repository_selection: 'selected',
        },
      }),
    });
    let now = Date.now();
    const minted = new MintedSecrets(() => now);
    const access = createGitHubAccess({
      baseUrl,
      app: { appId: 7, privateKey: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString() },
      minted,
      retries: 0,
      minWriteIntervalMs: 0,
      minNotifyingWriteIntervalMs: 0,
      log: silentLogger,
    });
    const token = await access.tokenForRepo('acme', 'widgets');
    expect(token).toMatch(/^ghs_/);

    // 45 minutes on: within auth-app's 59-minute cache, so the same token still goes out with every request.
    now += 45 * MINUTE;
    expect(await access.tokenForRepo('acme', 'widgets')).toBe(token);
    const basic = Buffer.from(`x-access-token:${token}`).toString('base64');
    const masker = createMasker([], { minted });
    expect(masker.text(`git push failed; extra header ${basic}`), 'the token Octokit still sends, 45 minutes after it was minted').toBe(
      `git push failed; extra header ${MASK}`,
    );
  });
});
