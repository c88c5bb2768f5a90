// HTML escaping for text put into the dashboard's markup (run ids, states, messages are untrusted).
// Bidirectional controls are shown as their code points, not obeyed (bidi-controls.js).
import { showBidiControls } from './bidi-controls.js';

/** Text for `textContent` (no markup to escape): bidirectional controls shown as their code points. */
export const plain = (s) => showBidiControls(String(s ?? ''));
export const esc = (s) =>
  plain(String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]));
