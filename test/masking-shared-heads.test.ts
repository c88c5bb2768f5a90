/**
 * Secrets sharing long heads (or tails) of letters and digits: the masker's check for a secret spaced
 * out, re-cased or cut ("skeleton", masking.ts `maskSkeletons`) compared every secret holding the 12
 * found with the text at each place it was found — O(secrets × text): 1,000 minted tokens sharing 30
 * characters took 33 s over 1 MiB of text holding those 30, and 2,000 ran out of heap with their spans.
 * It now finds, at each place, the one secret sharing the most with the text there by a binary search
 * among those in order (secret-index.ts `SkeletonIndex`), and masks exactly what the old masker did
 * (test/helpers/masking-reference.ts). The work is counted (secret-index.ts `skeletonWork`), not timed.
 */
import { describe, expect, it } from 'vitest';
import { createMasker } from '../src/rmapp/masking.ts';
import { MintedSecrets } from '../src/rmapp/minted-secrets.ts';
import { skeletonWork } from '../src/rmapp/secret-index.ts';
import { hasShownForms, masksAtLeast } from './helpers/masks-at-least.ts';
import { createMasker as createReference } from './helpers/masking-reference.ts';
import { generator, type Random } from './helpers/seeded-random.ts';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const chars = (r: Random, alphabet: string, n: number): string => {
  let out = '';
  for (let i = 0; i < n; i += 1) out += r.pick([...alphabet]);
  return out;
};

/** `text` disguised as the skeleton check undoes: spaced, re-cased, wrapped, coloured. */
function disguised(r: Random, text: string): string {
  const cased = r.int(2) ? text.toUpperCase() : text;
  return [...cased].join(r.pick(['', ' ', '-', '\n', '\u200b', '\x1b[31m']));
}

/** Tokens `ghs_` + 26 characters all share, + 10 of their own (no `x`: text may go on with one): 30 characters shared. */
function sharedHeadTokens(r: Random, n: number): { head: string; tokens: string[] } {
  const head = `ghs_${chars(r, ALNUM, 26)}`;
  return { head, tokens: Array.from({ length: n }, () => head + chars(r, ALNUM.replace(/x/gi, ''), 10)) };
}

/** The masker and the work its skeleton check did on `input`. */
function counted(masker: ReturnType<typeof createMasker>, input: string): { out: string; checks: number } {
  const before = skeletonWork.checks;
  const out = masker.text(input);
  return { out, checks: skeletonWork.checks - before };
}

describe('the skeleton check with secrets sharing long heads', () => {
  it('does work per place found, not per secret sharing what was found there, and masks as before', () => {
    const r = generator(7);
    const { head, tokens } = sharedHeadTokens(r, 1_000);
    const minted = new MintedSecrets();
    for (const token of tokens) minted.add(token);
    const masker = createMasker(['configured-s3cret-value'], { minted });
    // The shared 30 re-cased (a place for every token's first 12), whole tokens spaced out, cut tails.
    const parts: string[] = [];
    for (let i = 0; i < 400; i += 1) {
      const token = r.pick(tokens);
      parts.push(
        r.pick([
          `log: ${head.toUpperCase()}xyz and more`,
          `spaced: ${disguised(r, token)} end`,
          `cut: ${disguised(r, token.slice(-14))} end`,
          `cut head: ${disguised(r, token.slice(0, 20))}`,
        ]),
      );
    }
    const input = parts.join('\n');
    const places = parts.filter((p) => !p.startsWith('cut:')).length + parts.filter((p) => !p.startsWith('log:')).length;
    const { out, checks } = counted(masker, input);
    expect(out).toBe(createReference(['configured-s3cret-value'], { minted }).text(input));
    for (const token of tokens) expect(out.toLowerCase().replace(/[^a-z0-9]/g, '')).not.toContain(token.toLowerCase().slice(-12));
    // A binary search among 1,000: at most ~12 comparisons a place (the old check: 1,000 a place).
    expect(checks, `checks for about ${places} places`).toBeLessThanOrEqual(14 * places);

    // Twice the tokens sharing the same head: one more comparison a place, not twice the work.
    for (let i = 0; i < 1_000; i += 1) minted.add(head + chars(r, ALNUM, 10));
    const twice = counted(masker, input);
    expect(twice.out).toBe(createReference(['configured-s3cret-value'], { minted }).text(input));
    expect(twice.checks).toBeLessThanOrEqual(checks + 2 * places);
  });

  it('masks 1 MiB holding the shared head 30,000 times with 2,000 tokens sharing it', () => {
    const r = generator(8);
    const { head, tokens } = sharedHeadTokens(r, 2_000);
    const minted = new MintedSecrets();
    for (const token of tokens) minted.add(token);
    const masker = createMasker([], { minted });
    const line = `log: ${head.toUpperCase()}xx and more\n`;
    const input = line.repeat(Math.ceil(2 ** 20 / line.length)).slice(0, 2 ** 20);
    const places = input.split(head.toUpperCase()).length - 1;
    const { out, checks } = counted(masker, input);
    expect(out.startsWith('log: [REDACTED]xx and more\n')).toBe(true);
    expect(out.split('[REDACTED]').length - 1).toBe(places);
    expect(checks).toBeLessThanOrEqual(14 * places);
  });

  it('masks exactly as the old check did for secrets sharing heads and tails, few and many', () => {
    for (let seed = 1; seed <= 60; seed += 1) {
      const r = generator(1000 + seed);
      const alphabet = r.pick(['ab1', 'abcXYZ09', ALNUM]);
      // Groups sharing a head, groups sharing a tail, prefixes of one another; some over 64 of them.
      const heads = Array.from({ length: 1 + r.int(4) }, () => chars(r, alphabet, 12 + r.int(20)));
      const count = r.int(3) === 0 ? 70 + r.int(60) : 2 + r.int(20);
      const secrets: string[] = [];
      for (let i = 0; i < count; i += 1) {
        const kind = r.int(4);
        const own = chars(r, alphabet, r.int(16));
        if (kind === 0) secrets.push(r.pick(heads) + own);
        else if (kind === 1) secrets.push(own + r.pick(heads));
        else if (kind === 2 && secrets.length) secrets.push(r.pick(secrets).slice(0, 12 + r.int(30)));
        else secrets.push(`${r.pick(heads).slice(0, 8)}-${own}_${chars(r, alphabet, 12)}`);
      }
      const mintedCount = r.int(2) ? secrets.length >> 1 : 0;
      const minted = new MintedSecrets();
      for (const s of secrets.slice(0, mintedCount)) minted.add(s);
      const configured = secrets.slice(mintedCount);
      const now = createMasker(configured, { minted });
      const before = createReference(configured, { minted });
      for (let t = 0; t < 20; t += 1) {
        let input = '';
        for (let k = 1 + r.int(10); k > 0; k -= 1) {
          const s = r.pick(secrets);
          const piece = r.pick([
            s,
            s.slice(0, 12 + r.int(s.length)),
            s.slice(-(12 + r.int(s.length))),
            r.pick(heads),
            chars(r, alphabet, r.int(30)),
          ]);
          input += r.pick(['', ' ', 'x', '\n']) + (r.int(3) ? disguised(r, piece) : piece);
        }
        // Or more where the masker's later passes apply (test/helpers/masks-at-least.ts).
        const wrong = masksAtLeast(input, now.text(input), before.text(input), hasShownForms(secrets));
        expect(wrong, `seed ${seed}, secrets ${JSON.stringify(secrets)}: ${JSON.stringify(input)}`).toBe(null);
      }
    }
  });
});
