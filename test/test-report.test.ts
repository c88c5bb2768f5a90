/**
 * Test output summarised for GitHub (src/rmapp/test-report.ts): the failing tests by name with their
 * first assertion, in the formats rmapp recognises, without the workspace path or runtime frames.
 */
import { expect, it } from 'vitest';
import { cleanTestOutput, summarizeTests, testResultLine } from '../src/rmapp/test-report.ts';

const WS = '/srv/rmapp/workspaces/acme_widgets_issues_2_d1';

const TAP = `TAP version 13
# Subtest: joins with a comma
ok 1 - joins with a comma
  ---
  duration_ms: 2.1
  ...
# Subtest: supports a custom separator
not ok 2 - supports a custom separator
  ---
  duration_ms: 2.9
  location: '${WS}/test/a.test.js:3:1'
  failureType: 'testCodeFailure'
  error: |-
    Expected values to be strictly equal:
    + actual - expected

    + 'a,b'
    - 'a;b'
  code: 'ERR_ASSERTION'
  stack: |-
    TestContext.<anonymous> (${WS}/test/a.test.js:3:50)
    Test.runInAsyncScope (node:async_hooks:206:9)
    Test.run (node:internal/test_runner/test:796:25)
  ...
# Subtest: suite
    not ok 1 - inner fails
      ---
      error: 'boom inner'
      ...
not ok 3 - suite
  ---
  failureType: 'subtestsFailed'
  error: '1 subtest failed'
  ...
1..3
# pass 1
# fail 2`;

it('TAP (node --test): failing tests with their first assertion, suites that only failed through a child left out', () => {
  const report = summarizeTests(TAP, { passed: false, workspace: WS });
  expect(report.failing).toEqual([
    { name: 'supports a custom separator', reason: "Expected values to be strictly equal: 'a,b' !== 'a;b'" },
    { name: 'inner fails', reason: 'boom inner' },
  ]);
  expect(report.failCount).toBe(2);
  expect(testResultLine(report)).toBe('2 failing: *supports a custom separator*, *inner fails*');
  expect(report.tail).not.toMatch(/\/srv\/rmapp|node:internal|async_hooks/);
  expect(report.tail).toContain('TestContext.<anonymous> (test/a.test.js:3:50)');
});

it('vitest, jest and pytest summaries', () => {
  const vitest = ` FAIL  test/sep.test.ts > join > supports a custom separator
AssertionError: expected 'a,b' to be 'a;b' // Object.is equality
 ❯ test/sep.test.ts:5:20
 Test Files  1 failed (1)
      Tests  1 failed | 3 passed (4)`;
  expect(summarizeTests(vitest, { passed: false }).failing).toEqual([
    { name: 'join › supports a custom separator', reason: "AssertionError: expected 'a,b' to be 'a;b' // Object.is equality" },
  ]);
  const jest = `  ● join › supports a custom separator

    expect(received).toBe(expected) // Object.is equality

      at Object.<anonymous> (test/sep.test.js:5:20)

Tests:       1 failed, 3 passed, 4 total`;
  const j = summarizeTests(jest, { passed: false });
  expect(j.failing).toEqual([
    { name: 'join › supports a custom separator', reason: 'expect(received).toBe(expected) // Object.is equality' },
  ]);
  expect(j.failCount).toBe(1);
  const pytest = `FAILED tests/test_sep.py::test_custom_separator - AssertionError: assert 'a,b' == 'a;b'
========================= 1 failed, 3 passed in 0.12s =========================`;
  expect(summarizeTests(pytest, { passed: false }).failing).toEqual([
    { name: 'test_custom_separator', reason: "AssertionError: assert 'a,b' == 'a;b'" },
  ]);
});

it('an unknown format falls back to its last lines; a passing run names no failures', () => {
  const out = Array.from({ length: 40 }, (_, i) => `line ${i}`).join('\n');
  const report = summarizeTests(out, { passed: false });
  expect(report.failing).toEqual([]);
  expect(report.tail.split('\n')).toHaveLength(25);
  expect(report.tail.endsWith('line 39')).toBe(true);
  expect(summarizeTests(TAP, { passed: true }).failing).toEqual([]);
});

it('cleaning removes the workspace, the run id and runtime frames, and keeps the repository frames', () => {
  const text = cleanTestOutput(
    `Error at file://${WS}/src/a.js:1:1 in run acme/widgets/issues/2/d1\n    at f (${WS}/src/a.js:1:1)\n    at node:internal/main/run_main_module:28:49\n    at g (/app/node_modules/x/index.js:1:1)`,
    { workspace: WS, runId: 'acme/widgets/issues/2/d1' },
  );
  expect(text).toBe('Error at src/a.js:1:1 in run <run>\n    at f (src/a.js:1:1)');
});
