/**
 * A secret holding a lone surrogate reaches the masker with U+FFFD in its place once it went through
 * UTF-8 (a child's output, a git trace, a log file read back): that form is masked whole
 * (src/rmapp/secret-forms.ts `formsOf`), and so must its pieces cut off at a text's edge be, as the
 * secret's own are (src/rmapp/masking.ts, "a cut-off head or tail at a string's edge").
 */
import { describe, expect, it } from 'vitest';
import { createMasker } from '../src/rmapp/masking.ts';
import { MintedSecrets } from '../src/rmapp/minted-secrets.ts';

const SECRET = 'abcd-efgh-\uD800-ijkl-mnop';
const REPLACED = 'abcd-efgh-\uFFFD-ijkl-mnop';

describe('a secret holding a lone surrogate, cut off at an edge in its U+FFFD form', () => {
  it('is masked at the end and at the start of a text, as the secret itself is', () => {
    const masker = createMasker([SECRET], { minted: null });
    expect(masker.text(`out: ${SECRET.slice(0, 14)}`)).toBe('out: [REDACTED]');
    expect(masker.text(`out: ${REPLACED.slice(0, 14)}`)).toBe('out: [REDACTED]');
    expect(masker.text(`${REPLACED.slice(-13)} end`)).toBe('[REDACTED] end');
  });

  it('is masked for a minted token too, and no longer once the token is forgotten', () => {
    let clock = 0;
    const minted = new MintedSecrets(() => clock);
    const masker = createMasker([], { minted });
    minted.add(SECRET, 10);
    expect(masker.text(`${REPLACED.slice(-13)} end`)).toBe('[REDACTED] end');
    expect(masker.text(`out: ${REPLACED.slice(0, 14)}`)).toBe('out: [REDACTED]');
    clock = 10 + 10 * 60_000;
    expect(masker.text(`out: ${REPLACED.slice(0, 14)}`)).toBe(`out: ${REPLACED.slice(0, 14)}`);
  });
});

describe("a secret holding a newline and a lone surrogate, in its U+FFFD form with the newline as '\\n'", () => {
  it('is masked, as the form with the surrogate is', () => {
    // A backslash makes the JSON forms escape it too, so none of them is this form.
    const secret = '!\\@#\n$%^\uD800&*()ab';
    const masker = createMasker([secret], { minted: null });
    const escaped = secret.replaceAll('\n', '\\n');
    expect(masker.text(`x ${escaped} y`)).toBe('x [REDACTED] y');
    expect(masker.text(`x ${escaped.replace('\uD800', '\uFFFD')} y`)).toBe('x [REDACTED] y');
  });
});
