// Bidirectional controls, shown as their code points wherever rmapp shows untrusted text, never obeyed:
// a state or message holding U+202E displayed `abc\u202Egnp.exe` as "abcexe.png" on the dashboard, and
// a signal's type `x\u202egnp.exe` in `rmapp runs show` read `xexe.png` and reordered what followed it
// on the line. The one definition for the dashboard (html.js, which imports it relatively, so that the
// browser asks the server for `/bidi-controls.js` and Node finds this file) and the terminal
// (src/rmapp/cli/format.ts, typed by bidi-controls.d.ts): plain JavaScript, so that the browser runs it
// as it is and nothing is generated. The engine and the service's commands use
// src/persistence/bidi-controls.ts, which they can import; test/bidi-controls.test.ts holds both to
// Unicode's Bidi_Control property.

/** The explicit embeddings, overrides and isolates, the left-to-right and right-to-left marks, and the Arabic letter mark. */
export const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** `text` with each bidirectional control shown as its code point: `abc\u202Egnp.exe` → `abc[U+202E]gnp.exe`. */
export const showBidiControls = (text) =>
  text.replace(BIDI_CONTROLS, (c) => `[U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}]`);
