/**
 * The indexed masker (src/rmapp/masking.ts `SecretIndex`) against the masker before it
 * (test/helpers/masking-reference.ts) while the minted list churns: tokens sharing long heads and
 * tails minted, expiring on a fake clock and minted again, enough changes that the list's log is cut
 * (minted-secrets.ts `changesSince` answers null and a masker reads the whole list), maskers made at
 * different times and used in turn, every index past the size it is searched by hash at (weak words
 * too), and texts mixing the tokens' forms, cut pieces, `[REDACTED]`, CRLF, NUL and "characters left
 * out" marks. A check found no difference; this keeps it.
 */
import { expect, it } from 'vitest';
import { createMasker, leftOutMark, type Masker } from '../src/rmapp/masking.ts';
import { MintedSecrets } from '../src/rmapp/minted-secrets.ts';
import { hasShownForms, masksAtLeast } from './helpers/masks-at-least.ts';
import { createMasker as referenceMasker } from './helpers/masking-reference.ts';

/** A seeded generator: the same texts and secrets on every run. */
function random(seed: number): { int(n: number): number; pick<T>(a: readonly T[]): T; text(n: number, alphabet: string): string } {
  let s = seed;
  const int = (n: number): number => {
    s = (Math.imul(s, 1103515245) + 12345) & 0x7fffffff;
    return Math.floor((s / 0x80000000) * n);
  };
  const pick = <T>(a: readonly T[]): T => a[int(a.length)] as T;
  return { int, pick, text: (n, alphabet) => Array.from({ length: n }, () => pick([...alphabet])).join('') };
}

/** Forms a text may carry a secret in, whole or cut. */
function carried(secret: string): string[] {
  const bytes = Buffer.from(secret);
  return [
    secret,
    bytes.toString('base64'),
    bytes.toString('base64url'),
    bytes.toString('hex'),
    encodeURIComponent(secret),
    Buffer.from(`x-access-token:${secret}`).toString('base64'),
    JSON.stringify(secret).slice(1, -1),
    secret.toUpperCase(),
    [...secret].join(' '),
    Buffer.from(`K=${secret}\n`)
      .toString('base64')
      .replace(/(.{7})/g, '$1\r\n'),
  ];
}

it('masks as the masker before the index did while minted tokens come, expire, come back and the change log is cut', () => {
  const r = random(36);
  for (const [round, alphabet] of ['ABCab12', 'ab[]RED', 'aA1-_%', 'abcdefghijklmnopqrstuvwxyz'].entries()) {
    const head = r.text(12, alphabet);
    const pool = Array.from({ length: 160 }, (_, i) =>
      i % 4 === 0
        ? `${head}${r.text(4 + r.int(10), alphabet)}`
        : i % 4 === 1
          ? `${r.text(4 + r.int(8), alphabet)}${head}`
          : i % 4 === 2
            ? r.text(6 + r.int(6), alphabet)
            : r.text(6 + r.int(30), alphabet),
    );
    const configured = [pool[0] as string, pool[2] as string];
    let now = 1_000_000;
    const minted = new MintedSecrets(() => now);
    const maskers: Masker[] = [createMasker(configured, { minted })];
    for (let step = 0; step < 120; step += 1) {
      // Many short-lived tokens: the log is cut several times a round (over twice the list plus 1,024 changes).
      for (let k = r.int(60); k > 0; k -= 1) minted.add(r.pick(pool), now + r.int(8) * 1000 - 600_000);
      now += r.int(4) * 1000;
      if (step % 15 === 0) maskers.push(createMasker(configured, { minted }));
      const masker = r.pick(maskers);
      let text = '';
      for (let p = 1 + r.int(5); p > 0; p -= 1) {
        const form = r.pick(carried(r.pick(pool)));
        const cut = r.int(4);
        text += cut === 0 ? form.slice(r.int(form.length)) : cut === 1 ? form.slice(0, r.int(form.length + 1)) : form;
        text += r.pick(['', ' ', '[REDACTED]', leftOutMark(r.int(999)), '\r\n', '\0']);
      }
      const expected = referenceMasker(configured, { minted }).text(text);
      // Or more where the masker's later passes apply (test/helpers/masks-at-least.ts).
      const wrong = masksAtLeast(text, masker.text(text), expected, hasShownForms([...configured, ...minted.secrets()]));
      expect(wrong, `round ${round} step ${step}: ${JSON.stringify({ text, minted: minted.secrets() })}`).toBe(null);
    }
  }
});

it('masks weak minted words as whole tokens as before when they are too many to search one by one', () => {
  const r = random(7);
  for (const alphabet of ['abc', 'aé', '0123']) {
    const pool = Array.from({ length: 120 }, () => r.text(6 + r.int(6), alphabet));
    const minted = new MintedSecrets(() => 0);
    for (const s of pool) if (r.int(3)) minted.add(s);
    const configured = [pool[1] as string];
    const masker = createMasker(configured, { minted });
    const reference = referenceMasker(configured, { minted });
    for (let k = 0; k < 60; k += 1) {
      let text = '';
      for (let p = r.int(8); p > 0; p -= 1)
        text += r.pick([r.pick(pool), r.text(r.int(12), alphabet), ' ', '%3D', '\\n', '[REDACTED]', '-', '\u0301', '😀']);
      expect(masker.text(text), JSON.stringify(text)).toBe(reference.text(text));
    }
  }
});
