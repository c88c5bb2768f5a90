/**
 * The service's database password in a password file (`PGPASSFILE` or `~/.pgpass`, read by libpq and
 * node-postgres when neither the URL nor PGPASSWORD gives one), and the OpenTelemetry exporters'
 * headers (`OTEL_EXPORTER_OTLP_HEADERS` and the per-signal forms: a collector's API key, percent-
 * encoded as the OTel spec says), as secrets of the service's own: masked by value wherever the service
 * writes (config.ts `secretsOf`, and so the logs, comments, API, dashboard, inspector and CLI) and
 * refusing a commit that holds them (service-secret-sources.ts `serviceSecretSources`). Only the
 * patterns caught them before: `Authorization: Bearer …` where it stood, never the key alone.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configuredSecrets, loadConfig, secretsOf } from '../src/rmapp/config.ts';
import { createMasker, MASK } from '../src/rmapp/masking.ts';
import { secretFinder } from '../src/rmapp/secret-scan.ts';
import { serviceSecretSources } from '../src/rmapp/service-secret-sources.ts';

const tmp = mkdtempSync(join(tmpdir(), 'rmapp-pgpass-otlp-'));
const PGPASS = join(tmp, 'pgpass');
// Comments, a blank line, wildcards, `\:` and `\\` escapes, a password with text after its end, a line
// whose password is its own user, and a line too short to be an entry.
writeFileSync(
  PGPASS,
  [
    '# the comment:x:y:z:n0tapw-comment-Q1',
    '*:*:*:app:p\\:ss\\\\w0rd-9Qk',
    'db.internal:5432:rmapp:worker:Wr0ker\\:Pa55-zz:ignored-after-Q2',
    'localhost:*:*:postgres:postgres',
    '',
    '\\*:5432:*:svc:svc-S3cret-77',
    'short:line:n0tanentry-Q3',
    '',
  ].join('\r\n'),
  { mode: 0o600 },
);
const PG_PASSWORDS = ['p:ss\\w0rd-9Qk', 'Wr0ker:Pa55-zz', 'svc-S3cret-77'];
const BASIC = Buffer.from('metrics-user:m3trics-Pass!').toString('base64');
const ENV = {
  PGPASSFILE: PGPASS,
  OTEL_EXPORTER_OTLP_HEADERS: 'Authorization=Bearer%20otlp-T0ken-abc123, x-honeycomb-team = hcKey9f8e7d6c5b4a ;meta',
  OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'api-key=tr%2Bace%3DKey%2F42xyz',
  OTEL_EXPORTER_OTLP_METRICS_HEADERS: `Authorization=Basic%20${encodeURIComponent(BASIC)}`,
};
const OTLP_SECRETS = ['otlp-T0ken-abc123', 'hcKey9f8e7d6c5b4a', 'tr+ace=Key/42xyz', 'tr%2Bace%3DKey%2F42xyz', BASIC, 'm3trics-Pass!'];

async function config() {
  return loadConfig({
    env: { GITHUB_TOKEN: 'ghp_pgpassOtlp0123456789abcdefABCDEFghij', RMAPP_AGENT_COMMAND: 'a', RMAPP_TEST_COMMAND: 'b' },
    cwd: tmp,
    requireWebhookSecret: false,
    serves: false,
  });
}

describe('the password file and the exporter headers, as the masker reads them', () => {
  it('every password of the file and every header value is masked, in the forms a message quotes it', async () => {
    const masker = createMasker(secretsOf(await config(), ENV));
    const quoted: Record<string, string> = {};
    for (const p of PG_PASSWORDS) {
      quoted[`a pgpass password ${JSON.stringify(p)}`] = `password authentication failed (password ${p})`;
      quoted[`${JSON.stringify(p)} base64'd`] = `echo ${Buffer.from(`PW=${p}`).toString('base64')}`;
      quoted[`${JSON.stringify(p)} URL-encoded`] = `postgres://app:${encodeURIComponent(p)}@db/x`;
    }
    for (const s of OTLP_SECRETS) quoted[`a header value ${JSON.stringify(s)}`] = `export failed: 401 for key ${s} (retrying)`;
    quoted['the header line as the SDK logs it'] = `headers: {"Authorization":"Bearer otlp-T0ken-abc123","api-key":"tr+ace=Key/42xyz"}`;
    for (const [what, text] of Object.entries(quoted)) {
      const out = masker.text(text);
      for (const s of [...PG_PASSWORDS, ...OTLP_SECRETS])
        expect(out.includes(s), `${what}: ${JSON.stringify(s)} shows in ${JSON.stringify(out)}`).toBe(false);
      expect(out, what).toContain(MASK);
    }
  });

  it('leaves alone what is no secret: comments, short lines, a password that is its own user, header names', async () => {
    const masker = createMasker(secretsOf(await config(), ENV));
    // Not `ignored-after-Q2`: libpq stops a password at its unescaped colon, but node-postgres, which the
    // service connects through, takes the rest of the line, so that text is part of a password it sends.
    const ordinary =
      'n0tapw-comment-Q1 n0tanentry-Q3 postgres://postgres@localhost Authorization x-honeycomb-team api-key Bearer Basic metrics-user';
    expect(masker.text(ordinary)).toBe(ordinary);
  });

  it('the CLI reads them too (configuredSecrets)', async () => {
    const secrets = await configuredSecrets({ env: ENV, cwd: tmp });
    for (const s of [...PG_PASSWORDS, 'otlp-T0ken-abc123', 'm3trics-Pass!']) expect(secrets, s).toContain(s);
  });

  it('a missing or unreadable file is no error, and gives nothing', async () => {
    const c = await config();
    expect(() => secretsOf(c, { PGPASSFILE: join(tmp, 'missing') })).not.toThrow();
    expect(() => secretsOf(c, { PGPASSFILE: tmp })).not.toThrow(); // a directory
  });
});

describe('the password file and the exporter headers in a commit', () => {
  it('refuse a commit that holds one, naming where it is set, never the value', async () => {
    const find = secretFinder(serviceSecretSources(await config(), ENV));
    expect(find(`PGPASSWORD='svc-S3cret-77'\n`)).toMatch(/database password \(in the password file PGPASSFILE or ~\/\.pgpass names\)/);
    expect(find(`const pw = "Wr0ker:Pa55-zz";\n`)).toMatch(/password file/);
    expect(find(`headers: { authorization: 'Bearer otlp-T0ken-abc123' }\n`)).toMatch(/OpenTelemetry exporter header/);
    expect(find(`key = ${Buffer.from('k=hcKey9f8e7d6c5b4a').toString('base64')}\n`)).toMatch(/OpenTelemetry exporter header/);
    expect(find('connect to postgres://postgres@localhost with the api-key header\n'), 'an ordinary change').toBeNull();
  });
});

describe('the password file and the exporter headers never enter the sandbox', () => {
  it('sandbox.env naming one is refused, as GITHUB_TOKEN is', async () => {
    for (const name of ['PGPASSFILE', 'OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS']) {
      const err = await loadConfig({
        env: {
          GITHUB_TOKEN: 'ghp_pgpassOtlp0123456789abcdefABCDEFghij',
          RMAPP_AGENT_COMMAND: 'a',
          RMAPP_TEST_COMMAND: 'b',
          RMAPP_SANDBOX_ENV: JSON.stringify([name]),
        },
        cwd: tmp,
        requireWebhookSecret: false,
        serves: false,
      }).then(
        () => null,
        (e: Error) => e,
      );
      expect(err?.message, `sandbox.env: [${name}] was accepted`).toMatch(/never enters the sandbox/);
    }
  });
});
