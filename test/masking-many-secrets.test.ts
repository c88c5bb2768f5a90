/**
 * The masker searches every form of every secret at once (masking.ts `FormIndex`, `SecretIndex`), at a
 * cost near-independent of how many secrets there are, and follows the minted list by its changes
 * (minted-secrets.ts `changesSince`): bench/README.md, "thirty-sixth session". It must mask exactly as
 * the masker before it did, which searched each form in turn — kept as the reference
 * (test/helpers/masking-reference.ts). Random and hostile texts (every form of the secrets, cut,
 * wrapped, overlapping, next to the mask, NUL bytes, lone surrogates, long runs) and random secret
 * sets (weak and strong, prefixes of one another, drawn from few characters so that they overlap),
 * with tokens minted, forgotten and minted again: the same output, value copies and commit checks.
 */
import { describe, expect, it } from 'vitest';
import { createMasker, isWeakSecret, MASK } from '../src/rmapp/masking.ts';
import { MintedSecrets } from '../src/rmapp/minted-secrets.ts';
import { createMasker as createReference } from './helpers/masking-reference.ts';
import { hasShownForms, masksAtLeast } from './helpers/masks-at-least.ts';
import { generator, type Random } from './helpers/seeded-random.ts';

const ALPHABETS = [
  'ab',
  'abAB12',
  'abcdefghijklmnopqrstuvwxyz',
  'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789',
  'aA1=+/_-',
  'a[]REDACT',
  'a"\\/&<>\'é\u0000\n ',
  '0123456789',
  'aé\u0301ö漢😀',
];

const chars = (r: Random, alphabet: string, n: number): string => {
  const units = [...alphabet];
  let out = '';
  for (let i = 0; i < n; i += 1) out += r.pick(units);
  return out;
};

/** A secret set: weak words and numbers, strong values, tokens, prefixes and overlaps of one another. */
function secretSet(r: Random, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i += 1) {
    const kind = r.int(8);
    if (kind === 0 && out.length) out.push((r.pick(out) + chars(r, 'abc12', 1 + r.int(6))).slice(0, 40));
    else if (kind === 6 && r.int(2)) out.push(MASK.slice(1 + r.int(9)) + chars(r, 'ab1-', 3 + r.int(4)));
    else if (kind === 7 && out.length) {
      // One of the same length overlapping another: which is masked first decides the output.
      const s = r.pick(out);
      const k = 1 + r.int(Math.max(1, s.length - 2));
      out.push(s.slice(k) + chars(r, '-_1aZ', k));
    } else if (kind === 1 && out.length) {
      const s = r.pick(out);
      out.push(s.slice(r.int(Math.max(1, s.length - 6))));
    } else if (kind === 2) out.push(`ghs_${chars(r, ALPHABETS[3] as string, 36)}`);
    else if (kind === 3) out.push(chars(r, r.pick(['abcdefghij', '0123456789', 'ABCDEFabcdef']), 6 + r.int(6)));
    else out.push(chars(r, r.pick(ALPHABETS), 4 + r.int(r.int(4) === 0 ? 60 : 20)));
  }
  return out;
}

/**
 * `a` followed by what of `b` comes after an end of the mask `b` starts with: once `a` is masked, the
 * text holds `b` where it did not before.
 */
function afterMask(a: string, b: string): string {
  for (let k = 1; k < MASK.length; k += 1) if (b.startsWith(MASK.slice(k))) return a + b.slice(MASK.length - k);
  return a + b;
}

/** `a` and `b` written overlapping where `b` starts with an end of `a`, else one after the other. */
function overlapped(a: string, b: string): string {
  for (let k = 1; k < a.length; k += 1) if (b.startsWith(a.slice(k))) return a + b.slice(a.length - k);
  return a + b;
}

/** Every form a secret travels in, as the masker knows them, and cut or disguised. */
function formsOf(r: Random, s: string): string {
  const b64 = Buffer.from(s).toString('base64');
  const forms = [
    s,
    b64,
    b64.replace(/=+$/, ''),
    Buffer.from(`x-access-token:${s}`).toString('base64'),
    Buffer.from(`K=${s}\n`).toString('base64'),
    Buffer.from(`${'x'.repeat(r.int(3))}${s}`).toString('base64url'),
    Buffer.from(s).toString('hex'),
    Buffer.from(s).toString('hex').toUpperCase(),
    JSON.stringify(s).slice(1, -1),
    JSON.stringify(s).slice(1, -1).replaceAll('/', '\\/'),
    (() => {
      try {
        return encodeURIComponent(s);
      } catch {
        return s;
      }
    })(),
    s.slice(0, 8 + r.int(Math.max(1, s.length - 8))),
    s.slice(-(8 + r.int(Math.max(1, s.length - 8)))),
    [...s].join(r.pick([' ', '\n', '\u200b', '\x1b[31m'])),
    s.toUpperCase(),
    s.replaceAll('\n', '\\n'),
  ];
  const form = r.pick(forms);
  if (r.int(4) === 0 && form.length > 4) {
    const at = 1 + r.int(form.length - 1);
    return `${form.slice(0, at)}${r.pick(['\n', '\r\n  ', '\\n', ' '])}${form.slice(at)}`;
  }
  return form;
}

/** A hostile text: secrets' forms between random characters, the mask and its pieces, edges, marks. */
function textFor(r: Random, secrets: readonly string[]): string {
  let out = '';
  const parts = 1 + r.int(8);
  for (let i = 0; i < parts; i += 1) {
    const kind = r.int(10);
    if (kind < 3 && secrets.length) out += formsOf(r, r.pick(secrets));
    else if (kind === 3 && secrets.length) out += (r.int(2) ? overlapped : afterMask)(r.pick(secrets), r.pick(secrets));
    else if (kind === 4) out += r.pick([MASK, MASK.slice(0, 1 + r.int(9)), MASK.slice(r.int(9)), '\n… 123 characters left out …\n']);
    else if (kind === 5) out += r.pick(['\u0000', '\ud800', '\udc00x', '😀', 'e\u0301', '%3D', '\\u0022', '\x1b[0m', '"', '\\']);
    else if (kind === 6) out += r.pick(['pw=', ' ', '\n', 'https://u:', '@host ', 'Authorization: Basic ', 'x-access-token:']);
    else if (kind === 7 && r.int(20) === 0) out += chars(r, r.pick(ALPHABETS), 2_000 + r.int(20_000));
    else out += chars(r, r.pick(ALPHABETS), r.int(12));
  }
  return out;
}

const encodable = (s: string): boolean => {
  try {
    encodeURIComponent(s);
    return true;
  } catch {
    return false;
  }
};

/**
 * The two maskers agree on `input` (or the masker masks more where its later passes apply:
 * test/helpers/masks-at-least.ts), or the failure names the seed, the secrets and the text.
 */
function agree(
  label: string,
  now: ReturnType<typeof createMasker>,
  before: ReturnType<typeof createReference>,
  input: string,
  secrets: readonly string[],
): void {
  let want: string;
  try {
    want = before.text(input);
  } catch (error) {
    expect(() => now.text(input), `${label}: the reference threw ${String(error)}`).toThrow();
    return;
  }
  expect(masksAtLeast(input, now.text(input), want, hasShownForms(secrets)), `${label}: text ${JSON.stringify(input.slice(0, 400))}`).toBe(
    null,
  );
}

describe('the masker with every form filed at once', () => {
  it('masks random and hostile texts exactly as searching each form in turn did (configured secrets)', () => {
    for (let seed = 1; seed <= 200; seed += 1) {
      const r = generator(seed);
      const secrets = secretSet(r, r.int(r.int(3) === 0 ? 40 : 8));
      const label = `seed ${seed}, secrets ${JSON.stringify(secrets)}`;
      let before: ReturnType<typeof createReference>;
      try {
        before = createReference(secrets, { minted: null });
      } catch {
        // A secret URL-encoding refuses (a lone surrogate): the reference throws, this masker does not
        // (secret-forms.ts `urlEncoded`). Such a strong secret is left nowhere in what it gives; a text
        // in which those secrets alone mask nothing is masked as the reference masks it for the others.
        const now = createMasker(secrets, { minted: null });
        const refused = secrets.filter((s) => !encodable(s));
        const reference = createReference(secrets.filter(encodable), { minted: null });
        const refusedAlone = createMasker(refused, { minted: null });
        const none = createMasker([], { minted: null });
        for (let i = 0; i < 30; i += 1) {
          const input = textFor(r, secrets);
          const out = now.text(input);
          for (const s of refused)
            if (!isWeakSecret(s))
              expect(out.includes(s), `${label}: ${JSON.stringify(s)} left in ${JSON.stringify(out.slice(0, 400))}`).toBe(false);
          now.holdsSecret(input);
          if (refusedAlone.text(input) === none.text(input)) agree(label, now, reference, input, secrets);
        }
        continue;
      }
      const now = createMasker(secrets, { minted: null });
      for (let i = 0; i < 30; i += 1) {
        const input = textFor(r, secrets);
        agree(label, now, before, input, secrets);
        expect(now.holdsSecret(input), `${label}: holdsSecret ${JSON.stringify(input.slice(0, 400))}`).toBe(before.holdsSecret(input));
      }
      const value = { token: 'x', list: [textFor(r, secrets), { [textFor(r, secrets)]: textFor(r, secrets) }] };
      const [got, want] = [now.value(value), before.value(value)].map((v) => JSON.stringify(v)) as [string, string];
      expect(masksAtLeast(JSON.stringify(value), got, want, hasShownForms(secrets)), `${label}: value`).toBe(null);
    }
  });

  it('masks exactly as before while tokens are minted, forgotten and minted again', () => {
    for (let seed = 1001; seed <= 1080; seed += 1) {
      const r = generator(seed);
      let clock = 1_000_000;
      const minted = new MintedSecrets(() => clock);
      const configured = secretSet(r, r.int(4));
      // Not a minted secret URL-encoding refuses (a lone surrogate): the reference threw once on it and
      // then kept its old forms; this masker masks it (test/minted-lone-surrogate-masking.test.ts).
      const pool = [...secretSet(r, 5 + r.int(30)), ...configured.slice(0, 1)].filter(encodable);
      const label = `seed ${seed}, configured ${JSON.stringify(configured)}`;
      let before: ReturnType<typeof createReference>;
      try {
        before = createReference(configured, { minted });
      } catch {
        continue;
      }
      const now = createMasker(configured, { minted });
      for (let step = 0; step < 40; step += 1) {
        const action = r.int(4);
        if (action <= 1) for (let k = r.int(4); k >= 0; k -= 1) minted.add(r.pick(pool), clock + r.int(5) * 600_000);
        else if (action === 2) clock += r.int(3) * 600_000;
        // A masker that looks only now and then: it catches up by many changes at once.
        if (r.int(3) === 0) continue;
        const input = textFor(r, [...pool, ...configured]);
        agree(`${label}, step ${step}, minted ${JSON.stringify(minted.secrets())}`, now, before, input, [
          ...configured,
          ...minted.secrets(),
        ]);
      }
    }
  });

  it('masks exactly as before after the minted list dropped the changes a masker had not read', () => {
    let clock = 0;
    const minted = new MintedSecrets(() => clock);
    const now = createMasker(['configured-s3cret-value'], { minted });
    const before = createReference(['configured-s3cret-value'], { minted });
    const token = (i: number): string => `ghs_${String(i).padStart(36, '0')}`;
    minted.add(token(0), 10_000_000);
    const kept = Buffer.from(token(0)).toString('base64');
    expect(now.text(kept)).toBe(MASK);
    // Thousands of changes unread: tokens minted and forgotten while the masker was not used.
    for (let i = 1; i < 3_000; i += 1) {
      minted.add(token(i), clock + 1);
      clock += 1_000_000;
    }
    minted.add(token(1), clock + 10_000);
    for (const input of [kept, token(1), token(2), Buffer.from(`x-access-token:${token(1)}`).toString('base64'), token(0).slice(-20)])
      expect(now.text(input), input).toBe(before.text(input));
  });

  it('reads the minted list by its changes: minting 1,000 tokens one by one does not read the whole list each time', () => {
    class CountedSecrets extends MintedSecrets {
      wholeReads = 0;
      override secrets(): string[] {
        this.wholeReads += 1;
        return super.secrets();
      }
      override entries(): ReturnType<MintedSecrets['entries']> {
        this.wholeReads += 1;
        return super.entries();
      }
    }
    const minted = new CountedSecrets();
    const masker = createMasker(['configured-s3cret-value'], { minted });
    const tokens = Array.from({ length: 1_000 }, (_, i) => `ghs_${String(i).padStart(36, '7')}`);
    for (const token of tokens) {
      minted.add(token);
      expect(masker.text(`t=${Buffer.from(token).toString('base64')}`), token).toBe(`t=${MASK}`);
    }
    expect(masker.text(tokens.join(' ')), 'every token').toBe(tokens.map(() => MASK).join(' '));
    expect(minted.wholeReads, 'times the whole list was read (each read rebuilt every form of every token)').toBeLessThanOrEqual(1);
  });
});
