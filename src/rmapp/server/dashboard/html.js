// HTML escaping for text put into the dashboard's markup (run ids, states, messages are untrusted).
// Bidirectional controls are shown as their code points, not obeyed: a state or message holding
// U+202E displayed `abc\u202Egnp.exe` as "abcexe.png" (an adversarial pass).
const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
/** Text for `textContent` (no markup to escape): bidirectional controls shown as their code points. */
export const plain = (s) => String(s ?? '').replace(BIDI, (c) => `[U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}]`);
export const esc = (s) =>
  plain(String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]));
