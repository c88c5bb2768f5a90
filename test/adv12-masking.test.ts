/**
 * Adversarial (today's masking changes): a credential written without a scheme kept its password in
 * clear when what followed the host was a full stop, a colon, `]`, `}`, a backtick or the `\` of an
 * escaped quote; and a child logger's own `serializers` wrote what they returned unmasked (bindings and
 * each line's fields). Ordinary text that is no credential stays as it was.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/rmapp/logger.ts';
import { createMasker, MASK } from '../src/rmapp/masking.ts';
import { secretFinder } from '../src/rmapp/secret-scan.ts';
import { urlCredentials } from '../src/rmapp/secret-variables.ts';

const masker = createMasker([]);

describe('a scheme-less credential is masked whatever follows its host', () => {
  it.each([
    ['a full stop ending a sentence', 'The proxy is alice:s3cr3tpw@proxy.example.com.'],
    ['a full stop after a port', 'Set HTTPS_PROXY to alice:s3cr3tpw@proxy.example.com:3128.'],
    ['an IPv4 address and a full stop', 'via alice:s3cr3tpw@10.0.0.1.'],
    ["an error's colon", 'alice:s3cr3tpw@proxy:3128: connect ECONNREFUSED'],
    ['a closing bracket', '[alice:s3cr3tpw@proxy.example.com]'],
    ['a closing brace', '{alice:s3cr3tpw@proxy.example.com}'],
    ['a backtick', 'run `curl -x alice:s3cr3tpw@proxy.example.com`'],
    ['an escaped quote (JSON in a string)', '{"cmd":"curl -x \\"alice:s3cr3tpw@proxy.example.com\\""}'],
    ['an exclamation mark', 'use alice:s3cr3tpw@proxy.example.com!'],
    ['an ampersand', 'alice:s3cr3tpw@proxy.example.com&next'],
  ])('%s', (_what, line) => {
    const out = masker.text(line);
    expect(out, `${line} → ${out}`).not.toContain('s3cr3tpw');
    expect(out).toContain(`alice:${MASK}@`);
  });

  it.each([
    'npm:lodash@4.17.21.',
    'image node:20@sha256:0f1e2d3c4b5a.',
    'docker pull user/image:tag@sha256:1234abcd',
    'scp user@host:path/file.',
    'git@github.com:org/repo.git.',
    'mailto:alice@example.com.',
    'email alice@example.com: delivered',
    'at file.ts:12:5@v1.2.',
    'pkg:npm/foo@1.2.3-beta.4',
  ])('leaves %s as it is', (line) => {
    expect(masker.text(line)).toBe(line);
  });
});

describe('a password holding an unencoded @ is masked whole', () => {
  const password = 'p@ssw0rdQz9';
  it.each([
    ['in a URL', `http://alice:${password}@proxy.example.com:8080/`],
    ['in a database URL', `postgres://app:${password}@db/test`],
    ['written without a scheme', `alice:${password}@proxy.example.com:8080`],
    ['as a proxy setting', `HTTPS_PROXY=alice:${password}@10.0.0.1:3128`],
    ['with a dot after its @', 'alice:p@ssw0rdQz9.example@proxy.example.com:8080'],
    ['two in one value', `HTTPS_PROXY=alice:${password}@h1.example.com:3128,bob:${password}@h2.example.com:3128`],
  ])('%s', (_what, line) => {
    const out = masker.text(line);
    expect(out, `${line} → ${out}`).not.toContain('ssw0rdQz9');
  });

  it("a query's @ after the host is not taken for the password's", () => {
    expect(masker.text('https://alice:tok3nValue@github.com?email=me@example.com')).toBe(
      `https://alice:${MASK}@github.com?email=me@example.com`,
    );
  });

  it('a variable holding it as a proxy setting gives the password to mask and to refuse in commits', () => {
    const value = `alice:${password}@10.0.0.1:3128`;
    expect(urlCredentials(value)).toContain(password);
    const find = secretFinder([{ label: 'a credential of the URL in HTTPS_PROXY', secrets: urlCredentials(value) }]);
    expect(find(`const proxyPassword = '${password}';\n`)).toBe('a credential of the URL in HTTPS_PROXY');
  });
});

/** A logger writing into a string, with `secret` configured. */
function capture(secret: string) {
  let out = '';
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out += chunk.toString();
      cb();
    },
  });
  return { log: createLogger({ level: 'info', secrets: [secret], destination }), lines: () => out.split('\n').filter(Boolean) };
}

describe("a child logger's serializers are masked", () => {
  const secret = 'SerializedSecretValue-9f8e7d';

  it('on its bindings', () => {
    const { log, lines } = capture(secret);
    log.child({ who: 1 }, { serializers: { who: () => `token ${secret}` } }).info('bound');
    const line = lines().find((l) => l.includes('"bound"')) ?? '';
    expect(line, line).toContain('"who"');
    expect(line, line).not.toContain(secret);
  });

  it("on a line's fields, a child of a child too", () => {
    const { log, lines } = capture(secret);
    log
      .child({ a: 1 })
      .child({}, { serializers: { field: () => ({ nested: [`x ${secret}`] }) } })
      .child({ b: 2 })
      .info({ field: 1 }, 'fields');
    const line = lines().find((l) => l.includes('"fields"')) ?? '';
    expect(line, line).toContain('"nested"');
    expect(line, line).not.toContain(secret);
  });
});
