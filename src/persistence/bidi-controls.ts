/**
 * The bidirectional control characters (Unicode's Bidi_Control property): the explicit embeddings,
 * overrides and isolates, the left-to-right and right-to-left marks, and the Arabic letter mark. Text
 * from outside that holds one reorders what is displayed after it ("Trojan Source"): a run id typed
 * as `abc\u202Egnp.exe` read "abcexe.png". The one definition below the engine and the service
 * (src/state_machine/errors.ts quotes run ids, src/rmapp/commands.ts quotes a comment's words), so
 * that neither keeps its own list: the service's missed U+061C. The dashboard's plain-JavaScript copy
 * for the browser (src/rmapp/server/dashboard/bidi-controls.js) is held to this one by
 * test/bidi-controls.test.ts.
 */

/** The characters as the body of a regular expression's character class (`[…]`), to combine with others. */
export const BIDI_CONTROL_CLASS = '\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069';

/** Each bidirectional control (global: for `replace`, not `test`). */
export const BIDI_CONTROLS = new RegExp(`[${BIDI_CONTROL_CLASS}]`, 'g');

/**
 * `text` without its bidirectional controls: for text shown where a code point spelled out would be
 * noise (a word quoted back in a comment).
 *
 * @example
 * withoutBidiControls('abc\u202egnp.exe'); // 'abcgnp.exe'
 */
export function withoutBidiControls(text: string): string {
  return text.replace(BIDI_CONTROLS, '');
}
