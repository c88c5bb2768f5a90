/**
 * Struck-through text around what the parse blanks before it looks for strikes (a code span, a tag, a
 * link, a URL), and a strike left open before another block. The offender was src/rmapp/struck-text.ts
 * fed by src/rmapp/commands.ts `ownWords`: the blanked span read as spaces, so `~~` next to it neither
 * opened nor closed and a command GitHub shows crossed out was acted on (`~~<b>@rmapp cancel</b>~~`
 * cancelled the run); and a `~~` left open ran on into the next list item or heading, where GitHub
 * ends the paragraph, so a command GitHub shows plainly was ignored.
 */
import { expect, test } from 'vitest';
import { parseCommand } from '../src/rmapp/commands.ts';

test.each([
  '~~<b>@rmapp cancel</b>~~',
  '~~`x` @rmapp cancel~~',
  '~~@rmapp cancel `x`~~',
  '~~<!-- why -->@rmapp cancel~~',
  '~~[the plan](https://example.com/p) @rmapp cancel~~',
  '~~https://example.com @rmapp cancel~~',
  '~~<img src="a.png"> @rmapp cancel~~',
  'fine\n~~<b>@rmapp cancel</b>~~ never mind',
])('%j is struck through: no command', (body) => {
  expect(parseCommand(body, 'rmapp')).toBeNull();
});

test.each([
  '- ~~first idea\n- @rmapp cancel',
  '~~old\n# @rmapp cancel~~',
  '~~old\n1. @rmapp cancel~~',
  '~~old\n---\n@rmapp cancel~~',
  '`~~` @rmapp cancel `~~`',
  '~~<b>x</b>~~ @rmapp cancel',
])('%j asks to cancel', (body) => {
  expect(parseCommand(body, 'rmapp')).toEqual({ kind: 'cancel' });
});

test('a heading is one line: a strike opened in it ends with it', () => {
  expect(parseCommand('# ~~old\n@rmapp cancel~~', 'rmapp')).toEqual({ kind: 'cancel' });
  expect(parseCommand('# ~~old~~\n~~@rmapp cancel~~', 'rmapp')).toBeNull();
});
