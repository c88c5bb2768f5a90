/**
 * Hostile test output (src/rmapp/test-report.ts): a repository's test suite decides what it prints, and
 * summarizeTests runs on the worker's event loop. Lines built to make a regular expression backtrack
 * quadratically (a long run of spaces after `not ok 1 - `, a long `a::a::…` after `FAILED `, many
 * `node_modules/` in a frame-like line, many `error: |-` blocks) blocked the worker for minutes at
 * 1 MB. These tests hold such inputs to the right answer; a synchronous stall cannot be caught by the
 * runner's timeout, so a regression to backtracking shows as this file taking seconds, not as a
 * failed assertion. A test's name of any length must not make a comment exceed GitHub's 65,536
 * characters either: that one fails without the fix.
 */
import { expect, it } from 'vitest';
import { cleanTestOutput, summarizeTests } from '../src/rmapp/test-report.ts';

it('summarises a TAP failure whose name is a long run of spaces, and clips the name', () => {
  const report = summarizeTests(`not ok 1 - ${' '.repeat(100_000)}x\n# fail 1`, { passed: false });
  expect(report.failing).toHaveLength(1);
  expect(report.failing[0]?.name.length, 'a failing test name of 300,000 characters is shown whole').toBeLessThanOrEqual(200);
  // The TODO/SKIP directive is still recognised once looked for apart.
  expect(summarizeTests('not ok 1 - pending # TODO later', { passed: false }).failing).toEqual([]);
});

it('reads pytest summaries by hand: a long `a::a::…` line ends quickly, a real one is still parsed', () => {
  const hostile = `FAILED ${'a::'.repeat(40_000)} y`;
  const report = summarizeTests(`${hostile}\nFAILED tests/test_x.py::TestA::test_b - AssertionError: 1 != 2`, { passed: false });
  expect(report.failing).toEqual([{ name: 'TestA › test_b', reason: 'AssertionError: 1 != 2' }]);
});

it('keeps a long frame-like line of `node_modules/` without backtracking over it', () => {
  const line = `a (${'node_modules/'.repeat(12_000)} `;
  expect(cleanTestOutput(line), 'a line that does not end with ")" is not a frame').toBe(line);
  expect(cleanTestOutput('async run (/w/node_modules/x/index.js:1:1)'), 'a real frame under node_modules').toBe('');
});

it('names each of many `error: |-` failures without scanning the whole output per failure', () => {
  const report = summarizeTests('not ok 1 - a\n  error: |-\n    boom\n  ...\n'.repeat(25_000), { passed: false });
  expect(report.failing).toEqual([{ name: 'a', reason: 'boom' }]);
});
