/**
 * False refusals of the service's own credentials (helper 6): a commit refused as holding the service's
 * database password when it held no such thing — base64 that encodes only part of a short password, and
 * a number a test holds that a digits-only password happens to be. Found by reading masking.ts
 * `base64Cores` / `holdsSecret` and service-secret-sources.ts `refusesCommits`.
 */
import { describe, expect, it } from 'vitest';
import { secretFinder } from '../src/rmapp/secret-scan.ts';
import { serviceSecretSources } from '../src/rmapp/service-secret-sources.ts';

/** The commit check of a service whose database URL has this password (nothing else configured). */
function findWithPassword(password: string) {
  const config = {
    github: {},
    server: {},
    databaseUrl: `postgres://app:${encodeURIComponent(password)}@db.internal/app`,
    agent: { env: [] },
    sandbox: { env: [] },
  };
  return secretFinder(serviceSecretSources(config as never, {}));
}

const b64 = (text: string) => Buffer.from(text).toString('base64');

describe('base64 that encodes only part of a short database password', () => {
  it('does not refuse a commit (a test fixture with Basic credentials, a Kubernetes secret)', () => {
    const find = findWithPassword('password1');
    // `user:password`, `password` alone and a URL naming the database: none holds `password1`.
    for (const text of [
      `headers: { Authorization: 'Basic ${b64('user:password')}' }`,
      `data:\n  password: ${b64('password')}\n`,
      `DATABASE_URL: ${b64('DATABASE_URL=postgres://app@db/password')}`,
    ])
      expect(find(text), `refused as the database password: ${text}`).toBeNull();
    const find2 = findWithPassword('postgres1');
    const manifest = `DATABASE_URL: ${b64('DATABASE_URL=postgres://app@db/app')}`;
    expect(find2(manifest), `refused as the database password: ${manifest}`).toBeNull();
  });

  it('still refuses base64 holding the whole password, at every alignment, wrapped or URL-safe', () => {
    const find = findWithPassword('password1');
    for (const before of ['', 'x', 'xy', 'DB_PASS=', 'PGPASSWORD=']) {
      for (const after of ['', '\n', 'z', ' and more']) {
        const bytes = Buffer.from(`${before}password1${after}`);
        for (const text of [
          bytes.toString('base64'),
          bytes.toString('base64url'),
          `env: ${bytes.toString('base64').replace(/(.{4})/g, '$1\n')}`,
        ])
          expect(
            find(text),
            `not refused: base64 of ${JSON.stringify(`${before}password1${after}`)} as ${JSON.stringify(text)}`,
          ).toBeTruthy();
      }
    }
  });
});

describe('a database password of digits only', () => {
  it('does not refuse a commit adding that number (it is still masked)', () => {
    const find = findWithPassword('12345678');
    expect(find('const phone = "12345678";\n'), 'a test holding the number 12345678 was refused').toBeNull();
  });
});
