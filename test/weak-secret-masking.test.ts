/**
 * A weak secret — a 6- or 7-character `PGPASSWORD` such as `exampl`, a word, a short number — is masked
 * only where it stands as a whole token (masking.ts `isWeakSecret`): masked anywhere, `exampl` turned
 * every `example.com` into `[REDACTED].com`. A strong secret is still masked wherever it stands, and a
 * weak one wherever it is a value: after `=`, between `:` and `@` in a URL, quoted, at a line's edge.
 */
import { describe, expect, it } from 'vitest';
import { createMasker, MASK } from '../src/rmapp/masking.ts';
import { secretFinder } from '../src/rmapp/secret-scan.ts';

describe('a weak secret (PGPASSWORD=exampl)', () => {
  const masker = createMasker(['exampl'], { minted: null });

  it('is masked where it stands as a value', () => {
    const cases: Record<string, string> = {
      'an assignment': 'PGPASSWORD=exampl',
      'a URL': 'postgres://app:exampl@db.internal:5432/x',
      'a JSON string': '{"password":"exampl"}',
      'a sentence': 'the password is exampl.',
      'alone on a line': 'exampl',
      'next to an underscore': 'DB_exampl_PW',
      'in single quotes': "psql -c 'exampl'",
      'percent-encoded inside a URL': 'https://a.test/?next=https%3A%2F%2Fdb%2F%3Fpassword%3Dexampl%26x%3D1',
      'after a JSON-escaped line break': JSON.stringify({ output: 'password:\nexampl\n' }),
      'after a JSON \\u escape': '"\\u0022exampl\\u0022"',
      'after an ANSI colour code': '\u001b[31mexampl\u001b[0m',
    };
    for (const [where, text] of Object.entries(cases)) {
      const out = masker.text(text);
      expect(out.includes('exampl'), `${where}: ${JSON.stringify(text)} came out as ${JSON.stringify(out)}`).toBe(false);
      expect(out, where).toContain(MASK);
    }
  });

  it('is not masked inside an ordinary word', () => {
    const ordinary = [
      'See https://example.com/docs for an example.',
      'Examples: counterexample, examples, exampled',
      'mail admin@example.org',
      'exampl2 and 1exampl are other words',
    ];
    for (const text of ordinary) expect(masker.text(text), `over-masked: ${JSON.stringify(text)}`).toBe(text);
  });

  it('refuses a commit only where it stands as a whole token, as it is masked', () => {
    const find = secretFinder([{ label: 'the value of DB_PW (sandbox.env)', secrets: ['exampl'] }]);
    expect(find('password: exampl\n'), 'a commit adding the password').toBe('the value of DB_PW (sandbox.env)');
    expect(find('see https://example.com\n'), 'a commit naming example.com').toBeNull();
  });
});

describe('one rule for every weak secret', () => {
  it('a word or a short number is masked as a whole token; a strong secret anywhere', () => {
    const masker = createMasker(['postgres', '12345678', 'hunter22', 'Zq9-x7Lp'], { minted: null });
    expect(masker.text('postgresql://app:postgres@db/x')).toBe(`postgresql://app:${MASK}@db/x`);
    expect(masker.text('call 123456789 or 12345678')).toBe(`call 123456789 or ${MASK}`);
    expect(masker.text('xhunter22x and aZq9-x7Lpb'), 'a strong secret inside a word').toBe(`x${MASK}x and a${MASK}b`);
  });
});
