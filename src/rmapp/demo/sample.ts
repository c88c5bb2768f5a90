/**
 * What `rmapp demo` works on: a small repository with real tests (`node --test`), the issue a person
 * files, and the review comment they leave on the pull request. The sample agent
 * (./scripted-agent.mjs) acts on the directives hidden in an HTML comment of each text, so the demo
 * is deterministic: its first implementation fails the tests, the second passes, and the review asks
 * for one more change. A real agent (`rmapp demo --agent`) reads the prose and may do otherwise.
 */

/** The repository on the local GitHub (`owner/name`). */
export const SAMPLE_OWNER = 'demo';
export const SAMPLE_REPO = 'greeter';
/** The person who files the issue and reviews the PR (they have write access). */
export const SAMPLE_PERSON = 'ada';

/** The sample repository's files: a greeting whose test does not pass yet. */
export const SAMPLE_FILES: Record<string, string> = {
  'README.md': '# greeter\n\nGreets people. `npm test` runs the tests (`node --test`).\n',
  'package.json': `${JSON.stringify({ name: 'greeter', private: true, type: 'module', scripts: { test: 'node --test' } }, null, 2)}\n`,
  'greet.mjs': "export const greet = (name) => 'Hi ' + name;\n",
  'greet.test.mjs': [
    "import test from 'node:test';",
    "import assert from 'node:assert/strict';",
    "import { greet } from './greet.mjs';",
    '',
    "test('greets by name, politely', () => assert.equal(greet('Ada'), 'Hello, Ada!'));",
    '',
  ].join('\n'),
};

/** The test command the service runs in the workspace (inside the sandbox). */
export const SAMPLE_TEST_COMMAND = ['node', '--test'];

/** Issue #1 of the sample repository. */
export const SAMPLE_ISSUE = {
  number: 1,
  title: 'greet() should say "Hello, <name>!"',
  body: [
    "`greet('Ada')` returns `Hi Ada`; it should return `Hello, Ada!`, as the test in `greet.test.mjs` expects.",
    '',
    '<!-- What the sample agent does (a real agent reads the text above):',
    'PLAN Make greet() return "Hello, <name>!"',
    "WRITE greet.mjs export const greet = (name) => 'Hello ' + name;",
    "IF_FAILED WRITE greet.mjs export const greet = (name) => 'Hello, ' + name + '!';",
    '-->',
  ].join('\n'),
};

/** What the person comments on the issue. */
export const SAMPLE_COMMAND = 'Could you take this one?\n\n@rmapp implement';

/** The review comment on `greet.mjs` of the pull request. */
export const SAMPLE_REVIEW = {
  path: 'greet.mjs',
  line: 1,
  body: [
    '@rmapp greet the world when no name is given, and test it',
    '',
    '<!-- What the sample agent does:',
    "WRITE greet.mjs export const greet = (name = 'world') => 'Hello, ' + name + '!';",
    "WRITE greet.test.mjs import test from 'node:test'; import assert from 'node:assert/strict'; import { greet } from './greet.mjs'; test('greets by name', () => assert.equal(greet('Ada'), 'Hello, Ada!')); test('greets the world', () => assert.equal(greet(), 'Hello, world!'));",
    '-->',
  ].join('\n'),
};
