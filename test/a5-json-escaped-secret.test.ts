/**
 * A secret as JSON text writes it. Output that is already JSON — a test printing its configuration, an
 * agent's JSON-lines transcript, a `config.json` the agent commits — escapes some of a secret's
 * characters: every encoder a `"` and a `\` (`JSON.stringify`), Python's `json.dumps` and PHP's
 * `json_encode` every non-ASCII character (`\u00e4`), PHP a `/` (`\/`), Go's `encoding/json` `&`, `<`
 * and `>` (`\u0026`), .NET's and Jackson's in upper-case hex. The masker knew a secret's base64 so
 * escaped, not the secret itself: a password holding a `"` or an `ä` was shown in clear, and a commit of
 * a JSON file holding it was not refused.
 */
import { describe, expect, it } from 'vitest';
import { createMasker, MASK } from '../src/rmapp/masking.ts';

const u = (c: string, upper = false): string => {
  const hex = c.charCodeAt(0).toString(16).padStart(4, '0');
  return `\\u${upper ? hex.toUpperCase() : hex}`;
};
const json = (s: string): string => JSON.stringify(s).slice(1, -1);

const cases: [string, string, string][] = [
  ['a quote and a backslash, JSON.stringify', 'Xk9"q\\w7-Lm2p', json('Xk9"q\\w7-Lm2p')],
  ['non-ASCII, Python json.dumps / PHP', 'pässwörd-2024', json('pässwörd-2024').replace(/[^\x20-\x7e]/g, (c) => u(c))],
  ['an astral character, Python json.dumps', 'emoji🔑key-99', json('emoji🔑key-99').replace(/[^\x20-\x7e]/g, (c) => u(c))],
  ['a slash, PHP json_encode', 'ab/cd-e7f/9Qx', json('ab/cd-e7f/9Qx').replaceAll('/', '\\/')],
  ['&, < and >, Go encoding/json', 's3cr3t&pw<9>x', json('s3cr3t&pw<9>x').replace(/[&<>]/g, (c) => u(c))],
  ['upper-case hex, .NET / Jackson', 'pässwörd-2024', json('pässwörd-2024').replace(/[^\x20-\x7e]/g, (c) => u(c, true))],
  [
    'a quote, .NET (\\u0022)',
    'Xk9"q7-Lm2p&',
    json('Xk9"q7-Lm2p&')
      .replace(/\\"/g, '"')
      .replace(/["&]/g, (c) => u(c, true)),
  ],
];

describe('a secret JSON-escaped', () => {
  it.each(cases)('%s: masked', (_how, secret, escaped) => {
    expect(escaped).not.toBe(secret);
    const masker = createMasker([secret], { minted: null });
    expect(masker.text(`{"password":"${escaped}","user":"app"}`)).toBe(`{"password":"${MASK}","user":"app"}`);
  });

  it.each(cases)('%s: refuses a commit (holdsSecret)', (_how, secret, escaped) => {
    const masker = createMasker([secret], { minted: null });
    expect(masker.holdsSecret(`+  "password": "${escaped}",\n`)).toBe(true);
  });

  it('a weak secret JSON-escaped is still masked only as a whole token', () => {
    const masker = createMasker(['ab"cd1'], { minted: null });
    expect(masker.text('{"pw":"ab\\"cd1"}')).toBe(`{"pw":"${MASK}"}`);
    expect(masker.text('{"pw":"xab\\"cd12"}')).toBe('{"pw":"xab\\"cd12"}');
  });
});
