/**
 * A weak secret (a word: masking.ts `isWeakSecret`) is masked only as a whole token, so that ordinary
 * text is not garbled. The token's edges were ASCII letters and digits only: a word running on in a
 * letter outside ASCII — `Kaffeeöl`, a decomposed `é` (`e` and a combining accent), Greek or Japanese
 * around a name — was cut at that letter, and the service wrote `[REDACTED]öl` into ordinary prose
 * (and refused a commit of it where the secret is a sandbox variable's).
 */
import { describe, expect, it } from 'vitest';
import { createMasker, MASK } from '../src/rmapp/masking.ts';

const masker = createMasker(['expose', 'resume', 'Kaffee', 'tokyo1'], { minted: null });

describe('a weak secret beside a letter outside ASCII', () => {
  it.each(['resume\u0301 (decomposed accent)', 'Kaffeeöl und Kaffeeäpfel', 'ÉKaffee', 'Σtokyo1', 'tokyo1の駅'])(
    '%s: left as it is, a word of the text',
    (text) => {
      expect(masker.text(text)).toBe(text);
      expect(masker.holdsSecret(text), `holdsSecret(${JSON.stringify(text)})`).toBe(false);
    },
  );

  it.each([
    ['password: expose', `password: ${MASK}`],
    ['„Kaffee“', `„${MASK}“`],
    ['pw=resume…', `pw=${MASK}…`],
    ['tokyo1\u200b', `${MASK}\u200b`],
    ['x_expose_y', `x_${MASK}_y`],
  ])('%s: still masked where it stands alone', (text, shown) => {
    expect(masker.text(text)).toBe(shown);
  });
});
