/**
 * Secrets the masker (src/rmapp/masking.ts) let through: the head of a secret cut short right before a
 * cut mark (an error quotes a caller's value cut at 200 characters and `…`: src/state_machine/errors.ts),
 * and a secret with control, zero-width or bidirectional characters inside, once an output escaped
 * them (`\u0007` in JSON, `\x07` in the CLI's terminal-safe text) — read past now (src/rmapp/shown-text.ts).
 * Also the forms an attacker tried: every character JSON-escaped, a short secret re-cased, HTML-escaped.
 */
import { describe, expect, it } from 'vitest';
import { RunNotFoundError } from '../src/state_machine/errors.ts';
import { createMasker, MASK } from '../src/rmapp/masking.ts';
import { terminalSafe } from '../src/rmapp/cli/format.ts';

const SECRET = 'Q7mZp3Rt9XwLk2Vb8NcY4HdJ';
/** Strong (letters, digits and a `!`) and under 12 letters and digits: no skeleton. */
const SHORT = 'hunter2!x9';
const masker = createMasker([SECRET, SHORT], { minted: null });

/** Where `out` shows `secret`'s first `n` characters, or its letters and digits, in any case: the failure names it. */
function shown(out: string, secret: string, n = 8): string | null {
  const letters = out
    .replace(/\\x[0-9a-f]{2}|\\u[0-9a-f]{4}|\[U\+[0-9A-F]{4}\]/gi, '')
    .replace(/[^A-Za-z0-9]/g, '')
    .toLowerCase();
  const head = secret.slice(0, n);
  if (out.toLowerCase().includes(head.toLowerCase())) return `its head ${head}`;
  const skeleton = secret.replace(/[^A-Za-z0-9]/g, '').toLowerCase();
  return letters.includes(skeleton) ? 'its letters and digits' : null;
}

describe('a secret cut before a cut mark', () => {
  for (const n of [8, 9, 10, 11]) {
    it(`masks its first ${n} characters where an error cut the value quoting it`, () => {
      const id = `${'r'.repeat(200 - n)}${SECRET}`;
      const message = new RunNotFoundError(id).message;
      expect(message, 'the error quotes the value cut').toContain(`${SECRET.slice(0, n)}…`);
      const out = masker.text(message);
      expect(shown(out, SECRET), out).toBe(null);
      expect(out).toContain(`${MASK}…`);
      expect(out, 'the text after the cut is left').toMatch(/List runs with `rmapp runs list`\.$/);
    });
  }

  it('masks a cut head before `…`, `\\u2026` and `...` anywhere in a text, and leaves unrelated text', () => {
    for (const mark of ['…', '\\u2026', '...']) {
      const out = masker.text(`first "${SECRET.slice(0, 9)}${mark}" then "${SECRET.slice(0, 10)}${mark}" done`);
      expect(out, mark).toBe(`first "${MASK}${mark}" then "${MASK}${mark}" done`);
    }
    const plain = 'Loading… Q7mZp3R… waiting... the end…';
    expect(masker.text(plain), 'seven characters and unrelated text are left').toBe(plain);
  });
});

describe('a secret with invisible characters inside', () => {
  const disguises: [string, (s: string) => string][] = [
    ['BEL', (s) => `${s.slice(0, 4)}\x07${s.slice(4, 7)}\x07${s.slice(7)}`],
    ['an ANSI colour', (s) => `${s.slice(0, 4)}\x1b[31m${s.slice(4)}\x1b[0m`],
    ['a zero-width space', (s) => `${s.slice(0, 5)}\u200b${s.slice(5)}`],
    ['a bidirectional control', (s) => `${s.slice(0, 5)}\u202e${s.slice(5)}`],
    ['a CR', (s) => `${s.slice(0, 8)}\r${s.slice(8)}`],
  ];
  for (const [what, disguise] of disguises)
    for (const secret of [SECRET, SHORT])
      it(`masks ${secret} with ${what} inside, raw, JSON-escaped, terminal-safe and as an error quotes it`, () => {
        const pasted = disguise(secret);
        for (const [form, text] of [
          ['raw', `value ${pasted} end`],
          ['JSON', `{"value":${JSON.stringify(pasted)}}`],
          ['terminal-safe', terminalSafe(`value ${pasted} end`)],
          ['an error', new RunNotFoundError(pasted).message],
          ['JSON of JSON', JSON.stringify(JSON.stringify(pasted))],
        ] as const) {
          const out = masker.text(text);
          expect(shown(out, secret, 4), `${form}: ${JSON.stringify(out)}`).toBe(null);
          expect(out, form).toContain(MASK);
        }
      });

  it('leaves text with escapes and controls but no secret as it is', () => {
    const text = 'a\\u0007b \\x1b[31mred\\x1b[0m %07 &#65; C:\\apps\\new \x07 Summer 2024 HUNTER2 x9 hunter 2!x9';
    expect(masker.text(text)).toBe(text);
  });
});

describe('forms an attacker tried', () => {
  for (const secret of [SECRET, SHORT]) {
    const forms: [string, string][] = [
      ['every character JSON-escaped', [...secret].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')],
      ['upper-cased', secret.toUpperCase()],
      ['lower-cased', secret.toLowerCase()],
      ['HTML-escaped', secret.replace('!', '&#33;')],
    ];
    for (const [what, form] of forms)
      it(`masks ${secret} ${what}`, () => {
        const out = masker.text(`x=${form};`);
        expect(out, JSON.stringify(out)).toBe(`x=${MASK};`);
      });
  }

  it('masks a secret split across two log lines or two fields where each piece is 8 characters or more', () => {
    // Each line and each field is masked alone (logger.ts, masker.value): a piece at an edge is masked.
    expect(masker.text(SECRET.slice(0, 12))).toBe(MASK);
    expect(masker.text(SECRET.slice(12))).toBe(MASK);
    expect(masker.value({ a: SECRET.slice(0, 9), b: SECRET.slice(9) })).toEqual({ a: MASK, b: MASK });
  });
});
