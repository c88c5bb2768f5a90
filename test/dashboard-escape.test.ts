/**
 * The dashboard's one escaping function (src/rmapp/server/dashboard/html.js): markup is escaped, and
 * bidirectional controls are shown as their code points instead of reordering what is displayed — a
 * state or progress message holding U+202E showed `abc\u202Egnp.exe` as "abcexe.png".
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, it } from 'vitest';
import { ROOT } from './helpers/processes.ts';

it('escapes markup and shows bidirectional controls as code points', async () => {
  const { esc, plain } = (await import(pathToFileURL(join(ROOT, 'src/rmapp/server/dashboard/html.js')).href)) as {
    esc: (s: unknown) => string;
    plain: (s: unknown) => string;
  };
  expect(esc('<img src=x onerror="a">&\'')).toBe('&lt;img src=x onerror=&quot;a&quot;&gt;&amp;&#39;');
  expect(esc('abc\u202egnp.exe')).toBe('abc[U+202E]gnp.exe');
  for (const c of ['\u061c', '\u200e', '\u200f', '\u202a', '\u202b', '\u202c', '\u202d', '\u2066', '\u2067', '\u2068', '\u2069'])
    expect(esc(`a${c}b`), `U+${c.codePointAt(0)?.toString(16)}`).toMatch(/^a\[U\+[0-9A-F]{4}\]b$/);
  expect(esc(null)).toBe('');
  // What goes in as text (messages, artifacts' contents): no markup to escape, the controls shown.
  expect(plain('<b>\u202e</b>')).toBe('<b>[U+202E]</b>');
});
