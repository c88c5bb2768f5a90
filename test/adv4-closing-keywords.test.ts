/**
 * rmapp's pull request title, description and commits close only the run's issue: closing keywords the
 * issue's author or the agent wrote are neutralised in the forms GitHub reads as "keyword, reference"
 * (README, "What a maintainer sees on GitHub").
 */
import { describe, expect, it } from 'vitest';
import { commitMessage, pullRequestTitle, withoutClosingKeywords } from '../src/rmapp/pull-request-text.ts';

const neutralised = (text: string) => withoutClosingKeywords(text).includes('\u2060');

describe('closing keywords', () => {
  it.each([
    ['emphasis around the keyword', '**fixes** #3'],
    ['underscore emphasis', '_fixes_ #3'],
    ['an HTML tag around it', '<b>fixes</b> #3'],
    ['a colon without a space', 'fixes:#3'],
    ['a reference in parentheses', 'fixes (#3)'],
    ['an autolink in angle brackets', 'fixes <https://github.com/acme/web/issues/3>'],
    ['an HTML entity for the space', 'fixes&#32;#3'],
    ['an HTML comment between', 'fixes <!-- x --> #3'],
    ['a zero-width space', 'fixes\u200b #3'],
    ['a URL without its scheme', 'fixes github.com/acme/web/issues/3'],
    ['a hard break', 'fixes\\\n#3'],
  ])('are neutralised with %s', (_, text) => {
    expect(neutralised(text)).toBe(true);
  });

  it('are still neutralised in the plain forms, and left alone where no reference follows', () => {
    for (const text of ['fixes #3', 'Closes: acme/web#4', 'resolves https://github.com/acme/web/issues/5', 'fixed GH-6', 'fixes\u3000#3'])
      expect(neutralised(text)).toBe(true);
    for (const text of ['prefixes #3', 'fixes the bug in #3', 'fix(parser): handle #3', 'closes'])
      expect(withoutClosingKeywords(text)).toBe(text);
  });

  it("are neutralised where the pull request title's type prefix meets an issue title that starts with a reference", () => {
    // A squash merge makes the title a commit's subject on the default branch: "fix: #3 crashes" closes #3.
    expect(pullRequestTitle('bug', '#3 crashes', 7)).not.toMatch(/^fix: /);
    expect(pullRequestTitle('bug', '#3 crashes', 7).replace(/\u2060/g, '')).toBe('fix: #3 crashes (#7)');
    expect(pullRequestTitle('bug', 'Crash on empty input', 7)).toBe('fix: Crash on empty input (#7)');
    expect(commitMessage({ subject: pullRequestTitle('bug', 'acme/web#3', 7), body: [] })).not.toMatch(/^fix: /);
  });
});
