/**
 * A credential written without a scheme, as proxy settings take it (`HTTPS_PROXY=alice:s3cr3t@10.0.0.1:8080`,
 * `user:pass@proxy:3128`), in a variable the sandbox is given (`sandbox.env`, `agent.env`): its password is
 * masked as a URL's is — by value (secret-variables.ts `urlCredentials`, fed to the masker as the service
 * and the CLI feed it) and where it stands (masking.ts). Only `scheme://user:password@` was read: a test
 * that printed its proxy settings, or the password alone, showed it in clear. Ordinary values that look a
 * little alike (`git@github.com:org/repo.git`, `a:b`, `mailto:…`, `npm:pkg@1.2.3`) are no credential.
 */
import { describe, expect, it } from 'vitest';
import { createMasker, MASK } from '../src/rmapp/masking.ts';
import { urlCredentials, variableSecrets } from '../src/rmapp/secret-variables.ts';

/** The masker of a service whose `sandbox.env` names these variables. */
const maskerFor = (env: Record<string, string>) => createMasker(variableSecrets(Object.keys(env), env));

describe('a credential without a scheme in a variable the sandbox is given', () => {
  it.each([
    ['a proxy with a port', 'HTTPS_PROXY', 'alice:s3cr3tProxy@10.0.0.1:8080', 's3cr3tProxy'],
    ['a proxy by name and port', 'HTTP_PROXY', 'user:pr0xyPass@proxy:3128', 'pr0xyPass'],
    ['a proxy with a domain name', 'ALL_PROXY', 'build:c0rpPassw0rd@proxy.corp.example.com', 'c0rpPassw0rd'],
    ['NAME=value inside the value', 'PROXY_SETTINGS', 'HTTPS_PROXY=alice:s3cr3tProxy@10.0.0.1:8080', 's3cr3tProxy'],
    ['a bracketed IPv6 host', 'HTTPS_PROXY', 'alice:v6Passw0rd@[fd00::1]:8080', 'v6Passw0rd'],
    ['two, comma-separated', 'PROXIES', 'a:firstPass1@p1.example:1,b:secondPass2@p2.example:2', 'secondPass2'],
  ])('%s: its password is masked alone, in the value and in base64', (_name, variable, value, password) => {
    expect(urlCredentials(value), `credentials of ${value}`).toContain(password);
    const masker = maskerFor({ [variable]: value });
    const out = masker.text(`password: ${password}\n${variable}=${value}\n${Buffer.from(`${variable}=${value}\n`).toString('base64')}`);
    expect(out, `masked output of ${value}`).not.toContain(password);
    expect(out).toContain(MASK);
  });

  it('the user and the host stay readable', () => {
    const out = maskerFor({ HTTPS_PROXY: 'alice:s3cr3tProxy@10.0.0.1:8080' }).text('proxy alice@10.0.0.1:8080 refused');
    expect(out).toBe('proxy alice@10.0.0.1:8080 refused');
  });

  it('a short password (under 6 characters) is masked where it stands, as a URL’s is', () => {
    // Values under 6 characters are not masked by value; a URL's password that short is masked by the
    // URL pattern where it stands, and so now is one without a scheme.
    const masker = createMasker([]);
    expect(masker.text('export HTTPS_PROXY=alice:pw1@10.0.0.1:8080')).toBe(`export HTTPS_PROXY=alice:${MASK}@10.0.0.1:8080`);
    expect(masker.text('curl -x "user:pass@proxy:3128" https://example.com')).toBe(`curl -x "user:${MASK}@proxy:3128" https://example.com`);
  });

  it.each([
    ['an scp-like git remote (no password)', 'git@github.com:org/repo.git'],
    ['a pair without a host', 'a:b'],
    ['a key:value pair', 'mode:fast'],
    ['a mail address as a URI', 'mailto:alice.smith@example.com'],
    ['a SIP address', 'sip:operator1@pbx.example.com'],
    ['an npm alias with a version', 'npm:lodash-es@4.17.21'],
    ['an image by digest', 'node:20@sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0'],
    ['a user and host without a password', 'deploy@build.example.com'],
    ['a Windows-like path', 'C:\\Users\\builder@home'],
    ['a time', 'at 12:30@noon'],
  ])('%s is no credential', (_name, value) => {
    expect(urlCredentials(value), `credentials of ${value}`).toEqual([]);
    expect(createMasker([]).text(value), `${value} masked`).toBe(value);
    expect(maskerFor({ V: value }).text(`value: ${value}`)).toBe(`value: ${value}`);
  });

  it('a password that is its own user is masked where it stands, not by value', () => {
    // As for URLs: masked by value, `proxy` went from every word the tests printed.
    const masker = maskerFor({ HTTP_PROXY: 'proxy:proxy@10.0.0.9:3128' });
    expect(masker.text('via proxy:proxy@10.0.0.9:3128, see proxy.conf')).toBe(`via proxy:${MASK}@10.0.0.9:3128, see proxy.conf`);
  });
});
