/** Types of bidi-controls.js, the one definition of the bidirectional controls, which the browser loads as it is. */

/** The explicit embeddings, overrides and isolates, the left-to-right and right-to-left marks, and the Arabic letter mark. */
export declare const BIDI_CONTROLS: RegExp;

/**
 * `text` with each bidirectional control shown as its code point.
 *
 * @example
 * showBidiControls('abc\u202egnp.exe'); // 'abc[U+202E]gnp.exe'
 */
export declare function showBidiControls(text: string): string;
