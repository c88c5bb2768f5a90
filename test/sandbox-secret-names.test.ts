/**
 * The values of `sandbox.env` and `agent.env` variables named as secrets are masked wherever the
 * service writes (a test printing its environment is quoted in the failure comment) and refuse a
 * commit. Common short names — `DB_PASS`, `SMTP_PWD`, `GH_PAT`, `SENTRY_DSN` — are secrets too.
 */
import { describe, expect, it } from 'vitest';
import { sandboxSecretsOf, secretsOf, type RmappConfig } from '../src/rmapp/config.ts';
import { createMasker } from '../src/rmapp/masking.ts';

const configWith = (names: string[]) => ({ github: {}, server: {}, agent: { env: [] }, sandbox: { env: names } }) as unknown as RmappConfig;

describe('secrets the sandbox holds, by name', () => {
  const env = {
    DB_PASS: 'hunter2-db-pass',
    SMTP_PWD: 'smtp-pwd-value-9',
    GH_PAT: 'pat-value-1234567',
    SENTRY_DSN: 'https://abcdef0123456789@o1.ingest.sentry.io/42',
    PWD: '/srv/rmapp',
    PASSIVE_MODE: 'enabled-passive',
    NODE_ENV: 'test',
  };

  it('masks the values of DB_PASS, SMTP_PWD, GH_PAT and SENTRY_DSN in what the service writes', () => {
    const config = configWith(Object.keys(env));
    const masked = createMasker(secretsOf(config, env)).text(
      `DB_PASS=${env.DB_PASS} SMTP_PWD=${env.SMTP_PWD} GH_PAT=${env.GH_PAT} dsn ${env.SENTRY_DSN}`,
    );
    for (const name of ['DB_PASS', 'SMTP_PWD', 'GH_PAT'] as const) expect(masked).not.toContain(env[name]);
    expect(masked).not.toContain('abcdef0123456789');
  });

  it('leaves names that are no secrets alone (PWD, PASSIVE_MODE, NODE_ENV)', () => {
    const secrets = sandboxSecretsOf(configWith(Object.keys(env)), env);
    expect(secrets).not.toContain(env.PWD);
    expect(secrets).not.toContain(env.PASSIVE_MODE);
    expect(secrets).not.toContain(env.NODE_ENV);
  });
});
