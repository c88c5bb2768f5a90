/**
 * escapeMarkdown (src/rmapp/test-report.ts) against the forms cmark-gfm and GitHub's filters still turned
 * into links or mentions: an entity reference decodes to `@` or `:` in the rendered text (GitHub finds
 * mentions and references there), an email autolink's domain may start with `-` or `.`, a `www.` after
 * `_` (a delimiter cmark-gfm allows before one) had no word boundary, and `#123` (or `GH-123`) is an issue reference.
 */
import { describe, expect, it } from 'vitest';
import { escapeMarkdown } from '../src/rmapp/test-report.ts';

describe('escapeMarkdown leaves no link GitHub draws', () => {
  const cases: [string, RegExp][] = [
    ['&#64;octocat ping', /(^|[^\\])&#/],
    ['see https&#58;//evil.example', /(^|[^\\])&#/],
    ['&commat;octocat', /(^|[^\\])&\w/],
    ['write to a@-b.example', /@[^\u200b]/],
    ['write to a@.b.example', /@[^\u200b]/],
    ['_www.evil.example_', /www\./i],
    ['fixes #1', /#\d/],
    ['closes GH-12', /gh-\d/i],
    ['see gh-7.', /gh-\d/i],
  ];
  it.each(cases)('%s', (text, drawn) => {
    const out = escapeMarkdown(text);
    expect(drawn.test(out), `escapeMarkdown(${JSON.stringify(text)}) = ${JSON.stringify(out)} still holds ${drawn}`).toBe(false);
  });

  it('keeps ordinary text readable', () => {
    expect(escapeMarkdown('a & b, 5 # of tests').replaceAll('\u200b', '')).toBe('a \\& b, 5 \\# of tests');
  });
});
