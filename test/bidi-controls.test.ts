/**
 * One set of bidirectional controls (src/persistence/bidi-controls.ts) for the engine's errors and the
 * service's commands, equal to Unicode's Bidi_Control property: the service's own copy lacked U+061C
 * (ARABIC LETTER MARK), and the engine's run-not-found message let it through unescaped. The
 * dashboard's plain-JavaScript copy is held to the same set.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BIDI_CONTROLS, withoutBidiControls } from '../src/persistence/bidi-controls.ts';
import { parseCommand } from '../src/rmapp/commands.ts';
import { RunNotFoundError } from '../src/state_machine/errors.ts';
import { ROOT } from './helpers/processes.ts';

/** The code points `pattern` matches, of all Unicode's (each tried alone). */
function matched(pattern: RegExp): number[] {
  const out: number[] = [];
  const one = new RegExp(pattern.source, pattern.flags.replace('g', ''));
  for (let cp = 0; cp <= 0x10ffff; cp++) if (!(cp >= 0xd800 && cp <= 0xdfff) && one.test(String.fromCodePoint(cp))) out.push(cp);
  return out;
}

const hex = (cps: number[]) => cps.map((cp) => `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`);

describe('the bidirectional controls', () => {
  it("are Unicode's Bidi_Control characters, U+061C among them, here and on the dashboard", async () => {
    const unicode = hex(matched(/\p{Bidi_Control}/u));
    expect(unicode).toContain('U+061C');
    expect(hex(matched(BIDI_CONTROLS))).toEqual(unicode);
    const dashboard = (await import(pathToFileURL(join(ROOT, 'src/rmapp/server/dashboard/bidi-controls.js')).href)) as {
      BIDI_CONTROLS: RegExp;
    };
    expect(hex(matched(dashboard.BIDI_CONTROLS)), 'src/rmapp/server/dashboard/bidi-controls.js').toEqual(unicode);
    expect(withoutBidiControls('abc\u061c\u202egnp.exe')).toBe('abcgnp.exe');
  });

  it('are escaped in the message of a run id that is not there', () => {
    const { message } = new RunNotFoundError('abc\u061cgnp\u202e.exe\u009b');
    expect(message).toBe('No run with id "abc\\u061cgnp\\u202e.exe\\u009b". List runs with `rmapp runs list`.');
  });

  it('are no part of a command in a comment, nor of a word quoted back', () => {
    expect(parseCommand('@rmapp \u061cimplement \u061cbugfix', 'rmapp')).toEqual({ kind: 'implement', template: 'bugfix', options: {} });
    expect(parseCommand('@rmapp\u061c cancel\u061c', 'rmapp')).toEqual({ kind: 'cancel' });
    const help = parseCommand('@rmapp implement fe\u061cat\u202eure.exe', 'rmapp');
    expect(help).toEqual({ kind: 'help', reason: '` feature.exe ` is not a template; use one of simple, feature, bugfix, docs.' });
    expect(JSON.stringify(help), 'a bidirectional control in the answer').not.toMatch(/[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/);
  });
});
