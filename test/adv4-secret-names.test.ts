/**
 * The variables the service passes into the sandbox whose names say they hold a secret are masked and
 * refuse a commit (config.ts `sandboxSecretsOf`); those whose names only say where one is, or name the
 * git author, are not: masking their values and refusing every commit that names them broke a setup.
 */
import { describe, expect, it } from 'vitest';
import { sandboxSecretsOf, type RmappConfig } from '../src/rmapp/config.ts';

/** The sandbox secrets of a configuration passing `name` (with a value long enough to be masked) to the tests. */
function secretsPassing(name: string): string[] {
  const config = { agent: { env: [] }, sandbox: { env: [name] } } as unknown as RmappConfig;
  return sandboxSecretsOf(config, { [name]: 'value-of-the-variable' });
}

describe('secret variable names', () => {
  it.each(['GPG_PASSPHRASE', 'SSH_PRIVATE', 'CLIENT_CERT', 'ANDROID_SIGNING', 'GCP_CREDS', 'ADMIN_PW', 'dbPass', 'githubPat'])(
    '%s is a secret',
    (name) => {
      expect(secretsPassing(name)).toEqual(['value-of-the-variable']);
    },
  );

  it.each(['GIT_AUTHOR_NAME', 'GIT_AUTHOR_EMAIL', 'XAUTHORITY', 'SSH_AUTH_SOCK', 'POSTGRES_PASSWORD_FILE', 'KEY_FILE'])(
    '%s is not a secret',
    (name) => {
      expect(secretsPassing(name)).toEqual([]);
    },
  );

  it('keeps the names it knew', () => {
    for (const name of [
      'ANTHROPIC_API_KEY',
      'NPM_TOKEN',
      'PGPASSWORD',
      'DB_PASS',
      'SMTP_PWD',
      'GH_PAT',
      'SENTRY_DSN',
      'db_pass',
      'PASS',
      'HTTP_AUTHORIZATION',
      'BASIC_AUTH',
      'OAUTH_CLIENT',
    ])
      expect(secretsPassing(name)).toHaveLength(1);
    for (const name of ['PWD', 'PATH', 'NODE_PATH', 'PASSIVE_MODE', 'HOME', 'JAVA_HOME']) expect(secretsPassing(name)).toEqual([]);
  });
});
