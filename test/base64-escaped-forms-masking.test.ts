/**
 * A secret's base64 holding `+` and `/` (a password of signs: `~`, `?`, `>` encode to them), as a
 * JSON encoder that escapes `/` writes it (`\/`: PHP's `json_encode`, some loggers) and percent-encoded in
 * a URL's query (`%2B`, `%2F`, `%3D`): the masker joined JSON's `\n` escapes but not `\/`, and knew a
 * secret URL-encoded but not its base64 URL-encoded.
 */
import { describe, expect, it } from 'vitest';
import { createMasker, MASK } from '../src/rmapp/masking.ts';

const SECRET = 'k3y~?~?>~Zq9!?';
const b64 = (text: string): string => Buffer.from(text).toString('base64');

describe('base64 with `+` and `/` in escaped forms', () => {
  const masker = createMasker([SECRET]);

  it('is masked JSON-escaped with `\\/`, and refuses a commit so written', () => {
    for (const prefix of ['a', 'ab', 'PW=a', 'PW=ab']) {
      const encoded = b64(`${prefix}${SECRET}`);
      expect(encoded, 'the control: the base64 holds a slash').toContain('/');
      const json = JSON.stringify({ out: `${encoded}\n` }).replaceAll('/', '\\/');
      const out = masker.text(json);
      expect(out, `${json} came out as ${out}`).toContain(MASK);
      expect(out.replaceAll('\\/', '/'), `${json}: its base64 is left`).not.toContain(encoded.slice(4, 16));
      expect(masker.holdsSecret(json), `the commit check misses ${json}`).toBe(true);
    }
  });

  it('is masked percent-encoded in a URL', () => {
    for (const form of [b64(SECRET), b64(SECRET).replace(/=+$/, ''), b64(`x-access-token:${SECRET}`)]) {
      const url = `https://example.com/cb?d=${encodeURIComponent(form)}&x=1`;
      const out = masker.text(url);
      expect(out, `${url} came out as ${out}`).toBe(`https://example.com/cb?d=${MASK}&x=1`);
    }
  });

  it('leaves other base64 and escaped slashes alone', () => {
    const text = JSON.stringify({ url: 'https://example.com/a/b', b64: b64('hello/world?~>') }).replaceAll('/', '\\/');
    expect(masker.text(text)).toBe(text);
  });
});
