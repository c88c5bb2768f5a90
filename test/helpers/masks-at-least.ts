/**
 * The masker's differential tests (test/masking-many-secrets.test.ts, test/masking-shared-heads.test.ts)
 * compare it with the masker of before its index (test/helpers/masking-reference.ts, frozen). Since,
 * the masker also finds a secret with escapes or invisible characters inside it, cut before a cut mark,
 * and a strong secret under 12 letters and digits re-cased (test/h-mask-cut-and-controls.test.ts): on a
 * text where those can apply it may mask more than the reference, never less. Elsewhere the two agree
 * exactly.
 */
import { MASK } from '../../src/persistence/mask-marker.ts';
import { formsOf } from '../../src/rmapp/secret-forms.ts';

/**
 * What the later passes read (shown-text.ts, masking.ts `CUT_MARK`): an escape's first character, a
 * cut mark, an invisible character.
 */
// eslint-disable-next-line no-control-regex -- control characters are what the later passes read past
const LATER_PASSES = /[\\%&…[]|\.\.\.|[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/;

/** Whether any of `secrets` is found by its shown form (re-cased): a strong one under 12 letters and digits. */
export const hasShownForms = (secrets: readonly string[]): boolean => secrets.some((s) => s.length >= 6 && formsOf(s).shown !== null);

/** The characters `masked` keeps of its text, in order. */
const kept = (masked: string): string => masked.split(MASK).join('');

/**
 * Null when `got` (the masker's) is what the reference masked (`want`), or may mask more and keeps no
 * character the reference masked; else what is wrong.
 */
export function masksAtLeast(input: string, got: string, want: string, shownForms: boolean): string | null {
  if (got === want) return null;
  if (!shownForms && !LATER_PASSES.test(input)) return `differs from the reference: ${JSON.stringify(got)} for ${JSON.stringify(want)}`;
  const a = kept(got);
  const b = kept(want);
  // `a` must be a subsequence of `b`: masking more only takes characters out.
  let j = 0;
  for (let i = 0; i < a.length; i += 1) {
    j = b.indexOf(a[i] as string, j);
    if (j < 0) return `keeps what the reference masked: ${JSON.stringify(got)} for ${JSON.stringify(want)}`;
    j += 1;
  }
  return null;
}
