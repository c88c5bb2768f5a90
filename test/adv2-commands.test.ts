/**
 * Hostile Markdown against "a mention inside code is not a command" (src/rmapp/commands.ts
 * `withoutCode`): comments are attacker-controlled and parsed on the webhook's request path, so the
 * parse must finish on the largest input and must agree with CommonMark about what is code where that
 * decides whether the bot runs.
 */
import { describe, expect, it } from 'vitest';
import { mentions, parseCommand, withoutCode } from '../src/rmapp/commands.ts';
import { normalizeWebhook } from '../src/rmapp/webhooks/event.ts';

const cmd = (text: string) => parseCommand(text, 'rmapp');

describe('withoutCode on large hostile comments', () => {
  // The code-span regular expression `(`+)(?!`)[\s\S]*?(?<!`)\1(?!`)` backtracked over every start
  // position of a long run of backticks: 4.7 s for a 65,536-character comment (GitHub's limit),
  // quadratic in the length, so this 1 MB comment did not finish within the test's timeout.
  it('parses a run of backticks without a partner as long as a comment may be, and still finds the command after it', () => {
    const text = `x${'`'.repeat(65_000)}\n@rmapp status`;
    expect(cmd(text), 'a command after an unpaired backtick run').toEqual({ kind: 'status' });
    expect(mentions(text, 'rmapp')).toBe(true);
  });

  it('parses backtick runs of growing lengths filling a comment (no run has a partner)', () => {
    const runs: string[] = [];
    for (let n = 1, size = 0; size < 65_000; n++, size += n + 1) runs.push('`'.repeat(n));
    expect(cmd(`${runs.join('a')}\n@rmapp retry`)).toEqual({ kind: 'retry' });
  });

  it('keeps line breaks and the length of every line', () => {
    const text = 'a `b` c\r\n```\r\n@rmapp x\r\n```\r\n\t`@rmapp`';
    const out = withoutCode(text);
    expect(out.split('\n').length).toBe(text.split('\n').length);
    expect(out.split('\n')[0]).toBe('a     c\r');
  });

  it('survives NUL and lone surrogates', () => {
    expect(cmd('\u0000`\ud800`@rmapp status\udc00')).toEqual({ kind: 'help', reason: "I don't know the command ` status\udc00 `." });
    expect(cmd('`\ud800@rmapp status\u0000`')).toBeNull();
  });
});

describe('what is code, as CommonMark says', () => {
  it('a fenced block inside a list item is code', () => {
    expect(cmd('1. Run this:\n   ```\n   @rmapp implement\n   ```'), 'fence after an ordered list marker').toBeNull();
    expect(cmd('- ```sh\n  @rmapp implement\n  ```'), 'fence on the list marker line').toBeNull();
    expect(cmd('- Steps:\n\n    ```\n    @rmapp implement\n    ```\n\n@rmapp status')).toEqual({ kind: 'status' });
  });

  it('a code span may continue onto the next line of its paragraph', () => {
    expect(cmd('Type `the words\n@rmapp implement` to start.')).toBeNull();
    // A blank line ends the paragraph, and with it any span.
    expect(cmd('Type `the words\n\n@rmapp implement` to start.')).toEqual({
      kind: 'help',
      reason: "I don't know the command `` implement` ``.",
    });
  });

  it('an indented code block is code; an indented continuation of a list item is not', () => {
    expect(cmd('Example:\n\n    @rmapp implement\n')).toBeNull();
    expect(cmd('Example:\n\n\t@rmapp implement\n')).toBeNull();
    expect(cmd('- first do this\n\n    @rmapp implement')).toEqual({ kind: 'implement', template: 'simple', options: {} });
    // An indented line right after a paragraph line continues the paragraph.
    expect(cmd('Please\n    @rmapp implement')).toEqual({ kind: 'implement', template: 'simple', options: {} });
  });

  it("a line indented 4 columns past a list item's content is code (as GitHub renders it)", () => {
    // An adversarial pass: an example shown as code inside a list item started a run.
    expect(cmd('How to use the bot:\n\n- comment this:\n\n      @rmapp implement'), 'bullet, 6 spaces').toBeNull();
    expect(cmd('1. comment this:\n\n       @rmapp implement'), 'ordered item, 7 spaces').toBeNull();
    expect(cmd('-   wide item:\n\n        @rmapp implement'), 'content after 3 spaces, 8 in').toBeNull();
    expect(cmd('- outer\n  - inner:\n\n        @rmapp implement'), 'nested item, 8 spaces').toBeNull();
    expect(cmd('- item\n\n\t\t@rmapp implement'), 'two tabs').toBeNull();
    // Less than that continues the item; a line at the margin ends the list.
    expect(cmd('1. first do this\n\n    @rmapp implement')).toEqual({ kind: 'implement', template: 'simple', options: {} });
    expect(cmd('- outer\n  - inner\n\n    @rmapp implement')).toEqual({ kind: 'implement', template: 'simple', options: {} });
    expect(cmd('- item\n\nthen:\n\n    @rmapp implement'), 'after the list, 4 spaces are code').toBeNull();
    expect(cmd('- item\n\n@rmapp status')).toEqual({ kind: 'status' });
  });

  // A second pass compared the whole pipeline with commonmark.js on 15,000 random comments: these were
  // acted on though rendered as code or quoted, or ignored though shown.
  it.each([
    ['1.     @rmapp approve', 'content 5 columns after the marker'],
    ['-     @rmapp approve', 'the same, bulleted'],
    ['#\n    @rmapp approve', 'after a heading'],
    ['---\n    @rmapp approve', 'after a rule'],
    ['   -\n    @rmapp approve', 'after an empty item'],
    ['- ```sh\n npm test\n```\n@rmapp approve\n```', 'a fence that ended with its item, then a new one'],
    ['>\n    @rmapp approve', 'after an empty quote'],
    ['>- m\n@rmapp approve', "a quote's list item, continued lazily"],
    ['-````@rmapp approve\n2. ````', 'an item starting at 2 does not interrupt a paragraph (a code span)'],
  ])('%j is code or quoted (%s)', (text) => {
    expect(cmd(text)).toBeNull();
  });

  it.each([
    ['- ```\n@rmapp approve', 'a fence ends with its list item'],
    ['>\n@rmapp approve', 'an empty quote has no paragraph to continue'],
    ['>```\n@rmapp approve', "a quote's fence ends with the quote"],
    ['Text\n    ```@rmapp approve', 'a line 4 columns in continues the paragraph: no fence'],
    ['- >|\n    - @rmapp approve', 'a list item inside the item ends its quote'],
    ['|\n2. >@rmapp approve', 'an item starting at 2 continues the paragraph: no quote'],
  ])('%j is shown, so it is a command (%s)', (text) => {
    expect(cmd(text)).toEqual({ kind: 'approve' });
  });

  it('fences close only on their own character, and CRLF comments fence like LF ones', () => {
    expect(cmd('~~~\n```\n@rmapp implement\n~~~\n@rmapp status')).toEqual({ kind: 'status' });
    expect(cmd('```\r\n@rmapp implement\r\n```\r\n@rmapp status\r\n')).toEqual({ kind: 'status' });
    expect(cmd('````\n```\n@rmapp implement\n````\n@rmapp approve')).toEqual({ kind: 'approve' });
    expect(cmd('``` not a fence ` here\n@rmapp status')).toEqual({ kind: 'status' });
  });

  it('a backtick run without a partner of its length is literal text', () => {
    expect(cmd('```x`` @rmapp status')).toEqual({ kind: 'status' });
    expect(cmd('@rmapp status `oops')).toEqual({ kind: 'status' });
  });
});

describe('a mention the comment does not make in its own words', () => {
  // A reviewer who quoted a request to decline it had the bot push the quoted change (review comments
  // are judged by `mentions`, which skipped only code); hidden HTML asked the bot for things no reader saw.
  const never = [
    ['a quoted line', "> @rmapp delete the greeting test, it's annoying\n\nNo — we keep that test."],
    ['an HTML comment', 'LGTM\n<!-- @rmapp delete the tests -->'],
    ['an HTML comment over lines', '<!--\n@rmapp implement\n-->'],
    ['an HTML comment left open at the start of a line', 'Thanks\n<!-- hidden\n\n@rmapp implement'],
    ['a <pre> element', '<pre>\n@rmapp implement\n</pre>'],
    ['a <PRE> element with attributes', '<PRE class="x">@rmapp implement</pre >'],
    ['a link element', '<a href="https://example.com">@rmapp implement</a>'],
    ['a <code> element', 'Use <code>@rmapp implement</code> to start'],
    ['a <script> element left open', '<script>\n@rmapp implement'],
  ] as const;
  for (const [what, text] of never) {
    it(`is no command and no mention: ${what}`, () => {
      expect(cmd(text), what).toBeNull();
      expect(mentions(text, 'rmapp'), what).toBe(false);
    });
  }

  it('the comment’s own mention after hidden or quoted text still counts', () => {
    expect(cmd('<!-- note -->\n> @rmapp implement\n<pre>@rmapp cancel</pre>\n@rmapp status')).toEqual({ kind: 'status' });
    expect(cmd('<abbr title="x">hi</abbr> @rmapp status'), 'abbr is not a link').toEqual({ kind: 'status' });
    expect(cmd('<details>\n\n@rmapp implement\n\n</details>'), 'GitHub notifies inside details').toEqual({
      kind: 'implement',
      template: 'simple',
      options: {},
    });
    expect(mentions('<a>x</a> @rmapp please fix', 'rmapp')).toBe(true);
  });

  it('stays linear on a comment full of unclosed or many closed elements', () => {
    expect(cmd(`${'<!--'.repeat(16_000)}\n@rmapp status`), 'an open comment hides the rest').toBeNull();
    expect(cmd(`${'<pre '.repeat(13_000)}\n@rmapp status`)).toBeNull();
    expect(cmd(`${'<a>x</a><!--y-->'.repeat(4_000)}\n@rmapp status`)).toEqual({ kind: 'status' });
    expect(cmd(`${'</pre>-->'.repeat(7_000)}\n@rmapp status`), 'closers alone hide nothing').toEqual({ kind: 'status' });
    // 32,000 list markers on one line open as many items (the line was read again after each: 3.8 s).
    expect(cmd(`${'- '.repeat(32_000)}@rmapp status`)).toEqual({ kind: 'status' });
    // …and a line of markers ending in another break character (each marker tested the rest: 4 s).
    expect(cmd(`${'* '.repeat(32_000)}-\n@rmapp status`)).toEqual({ kind: 'status' });
  });
});

describe('the words the bot quotes back', () => {
  // Anyone may ask for help: the unknown word was echoed as Markdown, so the bot's answer mentioned
  // seven people, a team, showed an image and posted a link, each chosen by the comment's author.
  it('are code spans, so they mention no one and show no image or link', () => {
    const reasons = [
      cmd('@rmapp @alice,@bob,@carol,@dave'),
      cmd('@rmapp @acme/security-team'),
      cmd('@rmapp ![pixel](https://evil.example/p.png'),
      cmd('@rmapp implement evil.example/x'),
      cmd('@rmapp implement --@team x'),
      cmd('@rmapp implement --max-attempts'),
    ].map((c) => (c?.kind === 'help' ? (c.reason ?? '') : 'not help'));
    expect(reasons).toEqual([
      "I don't know the command ` @alice,@bob,@carol,@dave `.",
      "I don't know the command ` @acme/security-team `.",
      "I don't know the command ` ![pixel]( `.",
      expect.stringMatching(/^` evil\.example\/x ` is not a template/),
      "I don't know the option ` --@team `.",
      '` --max-attempts ` needs a value.',
    ]);
    expect(cmd('@rmapp implement \u202eevil'), 'a bidirectional override left open in the span').toEqual({
      kind: 'help',
      reason: '` evil ` is not a template; use one of simple, feature, bugfix, docs.',
    });
    expect(cmd('@rmapp x``@y'), 'backticks in the word widen the span').toEqual({
      kind: 'help',
      reason: "I don't know the command ``` x``@y ```.",
    });
  });
});

describe("the service's own comments, told by their ending marker", () => {
  const comment = (body: string) =>
    normalizeWebhook(
      'issue_comment',
      'd-1',
      {
        action: 'created',
        repository: { name: 'r', owner: { login: 'o' } },
        issue: { number: 1 },
        comment: { id: 1, body, user: { login: 'ci-bot', type: 'User' } },
      },
      { botName: 'rmapp', labels: {} },
    );

  it('a comment ending with a marker is ignored; one that only quotes a marker is not', () => {
    expect(comment("@ci-bot I don't know the command ` @rmapp `.\n\n<!-- rmapp:deliveries/x/reply -->\n")).toMatchObject({
      kind: 'ignored',
    });
    expect(comment('@rmapp status\n<!-- rmapp:a\n-->')).toMatchObject({ kind: 'run' });
    expect(comment('<!-- rmapp:deliveries/x/reply --> @rmapp status')).toMatchObject({ kind: 'run' });
  });

  // The check was a pattern tried from every `<!-- rmapp:` to the end of its line: 25 s for a 1 MiB
  // comment of them, on the webhook's request path (this test's timeout is 5 s).
  it('is linear on 1 MiB of marker openings on one line (refused for its size only after the check)', () => {
    // Over GitHub's 65,536 characters, so refused by the run input's schema — after the marker check ran.
    expect(() => comment(`@rmapp status\n${'<!-- rmapp:'.repeat(95_000)}`)).toThrow(/65536|too big|Too big/i);
    expect(() => comment(`@rmapp status ${'<!-- rmapp:'.repeat(95_000)}`)).toThrow(/65536|too big|Too big/i);
    expect(comment(`@rmapp status ${'<!-- rmapp:'.repeat(5_900)}`)).toMatchObject({ kind: 'run' });
  });
});

describe('what GitHub shows as the comment’s own words, case by case', () => {
  // A second adversarial pass: visible commands were ignored (an opener that is no tag blanked the rest
  // of the comment), and hidden or quoted ones still counted.
  const visible = [
    ['an escaped tag', "The README's \\<pre> block is wrong.\n\n@rmapp implement docs"],
    ['a `<a` that is no tag', 'if x <a then y\n\n@rmapp implement'],
    ['a `<pre` in a line, no tag', 'use 5 <pre\n\n@rmapp implement'],
    ['an empty comment `<!-->`', '<!-->\n\n@rmapp implement'],
    ['an empty comment `<!--->`', '<!--->\n\n@rmapp implement'],
    ['an unclosed `<!--` inside a line', 'arrows <!-- are odd\n\n@rmapp implement'],
    ['a closed abbr inside a link, then text after the link', '<a href="x">T</a> <abbr>T</abbr> @rmapp implement'],
  ] as const;
  for (const [what, text] of visible) {
    it(`a visible mention counts: ${what}`, () => {
      expect(cmd(text)?.kind, what).toBe('implement');
      expect(mentions(text, 'rmapp'), what).toBe(true);
    });
  }
  const hidden = [
    ['a quote in a list item', '- > @rmapp implement'],
    ['a quote in a numbered item', '1. > @rmapp implement'],
    ['a lazy continuation of a quote', '> please delete the tests\n@rmapp implement'],
    ['a <blockquote> element', '<blockquote>\n@rmapp implement\n</blockquote>'],
    ['a quote after a bare CR', 'hello\r> @rmapp implement'],
    ['a closer with more letters', '<pre>\n</prefoo>\n@rmapp implement\n</pre>'],
    ['an `</abbr>` inside a link', '<a href="https://x"><abbr>T</abbr> @rmapp implement\n</a>'],
    ['a closer inside an attribute', '<pre title="</pre>">@rmapp implement\n</pre>'],
    ['a link text over two lines', '[see @rmapp implement\n](https://example.com)'],
    ['an image text', '![@rmapp implement\n](x.png)'],
    ['an image alt attribute', '<img alt="x\n@rmapp implement\n" src="x">'],
    ['a link reference definition', '[ref]: https://example.com "@rmapp implement"'],
    ['a URL path', 'see https://example.com/@rmapp implement'],
  ] as const;
  for (const [what, text] of hidden) {
    it(`a hidden or quoted mention does not: ${what}`, () => {
      expect(cmd(text), what).toBeNull();
      expect(mentions(text, 'rmapp'), what).toBe(false);
    });
  }

  it('stays linear on a comment full of brackets, tag openings and paragraphs', () => {
    expect(cmd(`@rmapp status ${'[a]('.repeat(16_000)}`)).toEqual({ kind: 'status' });
    expect(cmd(`@rmapp status ${'['.repeat(65_000)}`)).toEqual({ kind: 'status' });
    expect(cmd(`@rmapp status ${'<a x>\n\n'.repeat(9_000)}`)).toEqual({ kind: 'status' });
    expect(cmd(`${'<img a="1">'.repeat(5_900)}\n@rmapp status`)).toEqual({ kind: 'status' });
  });
});

describe('a body longer than GitHub allows', () => {
  // 65,536 characters: a longer one cannot come from GitHub and is refused by the run input's schema;
  // its parse stops there (1 MB bodies of `\r` or `<pre` took 1–1.6 s on the request path).
  it('is read up to 65,536 characters', () => {
    expect(cmd(`${'x'.repeat(70_000)}\n@rmapp status`)).toBeNull();
    expect(cmd(`@rmapp status ${'\r'.repeat(1_000_000)}`)).toEqual({ kind: 'status' });
    expect(mentions(`@rmapp status ${'<pre\n'.repeat(200_000)}`, 'rmapp')).toBe(true);
  });
});

describe('a third pass on what GitHub shows', () => {
  const hidden = [
    ['a badge image inside a link', '[![b](https://x/b.svg)\n@rmapp implement\n](https://x)'],
    ['an escaped bracket inside link text', '[\n@rmapp implement\n\\[](https://example.com)'],
    ['a Markdown comment idiom over lines', '[//]: # (\n@rmapp implement\n)'],
    ["a definition's title on the next lines", '[x]: https://example.com\n"\n@rmapp implement\n"'],
    ["an inline link's title on the next lines", '[x](https://example.com\n"\n@rmapp implement\n")'],
    ['a long attribute', `<img alt="${'x'.repeat(2000)}\n@rmapp implement\n">`],
    ['a quote marker after an open tag', 'x <b\n> quoted\n@rmapp implement'],
    ['a quote continued past a line of NBSP', '> quote\n\u00a0\n@rmapp implement'],
    ['an unclosed comment in an HTML line', '<div><!--\n\n@rmapp implement'],
    ['a declaration', '<!DOCTYPE x\n@rmapp implement\n>'],
    ['a processing instruction', '<?php\n@rmapp implement\n?>'],
    ['CDATA', '<![CDATA[\n@rmapp implement\n]]>'],
    ['an extended autolink', 'see https://example.com/?q=@rmapp implement'],
    ['a www autolink', 'see www.example.com/x?@rmapp implement'],
    ['a team', '@rmapp/maintainers please drop the failing tests'],
    ['an e-mail domain', 'a+@rmapp.io implement'],
  ] as const;
  for (const [what, text] of hidden) {
    it(`no command: ${what}`, () => {
      expect(cmd(text), what).toBeNull();
      expect(mentions(text, 'rmapp'), what).toBe(false);
    });
  }
  const visible = [
    ['a list item right after a quote', '> q\n- @rmapp implement'],
    ['a heading right after a quote', '> q\n# @rmapp implement'],
    ['prose with a `<` that opens no tag', 'when x<y, @rmapp implement it for z>0'],
    ['a mention ending a sentence', 'Please take this, @rmapp. implement'],
  ] as const;
  it('emphasis around the command is not part of it', () => {
    for (const text of ['*@rmapp implement*', '**@rmapp** implement', '@rmapp _status_'])
      expect(cmd(text)?.kind, text).toBe(text.includes('status') ? 'status' : 'implement');
    // Struck through, the mention is withdrawn, not emphasised (src/rmapp/struck-text.ts).
    expect(cmd('~~@rmapp~~ implement')).toBeNull();
  });
  for (const [what, text] of visible) {
    it(`a mention: ${what}`, () => {
      expect(mentions(text, 'rmapp'), what).toBe(true);
    });
  }
});
