/**
 * The failing tests' names, and the plan's goal and tasks, are quoted inline in rmapp's own sentences on
 * GitHub (test-report.ts `escapeMarkdown`): "I stopped: … (1 failing: *name*)." and in the draft's text.
 * The agent writes the tests and the plan, and an issue can tell it what to write. A bare address in a
 * name became a link GitHub draws, in the app's words. Two carriage returns in a goal are a blank line in
 * CommonMark, which GitHub renders: what followed became a block of its own (a heading, a list item).
 */
import { afterAll, expect, it } from 'vitest';
import { escapeMarkdown } from '../src/rmapp/test-report.ts';
import { textsAfterFailingTests } from './helpers/failing-tests-world.ts';
import type { ServiceWorld } from './helpers/service-world.ts';

let w: ServiceWorld | undefined;
afterAll(async () => w?.stop());

/** Markdown's paragraphs as CommonMark splits them: at a line holding nothing but blanks, a lone CR being a line ending too. */
const paragraphs = (body: string) => body.split(/(?:\r\n|\r|\n)[ \t]*(?:\r\n|\r|\n)/);

it('a failing test named with addresses adds no link to what rmapp writes', async () => {
  const name = 'sums # Pwned, see https://evil.example/x or WWW.evil.example';
  const tap = `TAP version 13\nnot ok 1 - ${name}\n1..1\n`;
  const written = await textsAfterFailingTests(tap, 'Pwned', (world) => (w = world));
  for (const body of written) {
    const where = paragraphs(body).find((p) => p.includes('Pwned')) ?? '';
    expect(where.includes('sums'), `${JSON.stringify(body)}: the name's end is a block of its own`).toBe(true);
    expect(/(?:^|[\r\n])[ \t]*#/.test(where), `${JSON.stringify(where)}: a line of the name is a heading`).toBe(false);
    expect(/https:\/\/evil|www\.evil/i.test(body), `${JSON.stringify(body)}: an address GitHub would link`).toBe(false);
  }
}, 90_000);

it('text quoted inline stays on its line, whatever line endings it holds', () => {
  for (const ending of ['\n', '\r\n', '\r', '\r\r', '\n\n', ' \r \n ']) {
    const quoted = escapeMarkdown(`Add sums${ending}# heading${ending}- item`);
    expect(/[\r\n]/.test(quoted), `${JSON.stringify(ending)} kept in ${JSON.stringify(quoted)}`).toBe(false);
    expect(quoted.includes('Add sums'), `${JSON.stringify(quoted)} lost the text`).toBe(true);
  }
});
