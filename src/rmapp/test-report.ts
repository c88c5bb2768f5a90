/**
 * What a maintainer needs from a test run: which tests fail and the first line of why, without the
 * passing tests, the runtime's own stack frames or the server's paths. Parses the formats that are
 * cheap to recognise — TAP (what `node --test` prints when not on a terminal), Node's spec reporter,
 * vitest, jest and pytest summaries — and falls back to the last lines of the output.
 *
 * The raw output stays the run's `test-output` artifact; this is only what is shown on GitHub.
 */
import { SANDBOX_WORKSPACE } from './sandbox/bubblewrap.ts';
import { withoutBidiControls } from '../persistence/bidi-controls.ts';
import { oneLine } from './run-texts.ts';

/** One failing test: its name (suites joined with ` › `) and the first line of its failure. */
export interface FailingTest {
  name: string;
  /** The first line of the assertion or error (`Expected values to be strictly equal: 1 !== 2`), or '' when none was printed. */
  reason: string;
}

/** A test run, summarised. */
export interface TestReport {
  passed: boolean;
  /** Failing tests, at most {@link MAX_FAILURES}; empty when the format was not recognised. */
  failing: FailingTest[];
  /** How many failed in all (may exceed `failing.length`); null when not known. */
  failCount: number | null;
  /** The end of the output, cleaned: shown when no failing test could be named. */
  tail: string;
}

/** Failing tests named in a report: GitHub comments should stay short. */
export const MAX_FAILURES = 10;
const TAIL_LINES = 25;
const REASON_CHARS = 300;

/**
 * Removes what means nothing to a maintainer and may reveal the server: the workspace's absolute path
 * (and `file://` URLs of it), the run id, and stack frames of the runtime (`node:internal/…`,
 * `node:async_hooks`, anything under `node_modules`).
 *
 * @example
 * cleanTestOutput('at t (/srv/rmapp/runs/x/test/a.js:3:9)\n    at node:internal/main:1:1', { workspace: '/srv/rmapp/runs/x' });
 * // → 'at t (test/a.js:3:9)'
 */
export function cleanTestOutput(output: string, hide: { workspace?: string | undefined; runId?: string | undefined } = {}): string {
  let text = output.replace(/\r\n?/g, '\n');
  // The sandbox mounts the workspace at SANDBOX_WORKSPACE (src/rmapp/sandbox/bubblewrap.ts): the tests see that path.
  const dirs = [hide.workspace, hide.workspace?.replace(/^\/private/, ''), SANDBOX_WORKSPACE];
  for (const dir of dirs.filter((d): d is string => !!d && d.length > 1)) {
    const trimmed = dir.replace(/\/+$/, '');
    text = text.replaceAll(`file://${trimmed}/`, '').replaceAll(`${trimmed}/`, '');
    if (dir !== SANDBOX_WORKSPACE) text = text.replaceAll(trimmed, '.');
  }
  if (hide.runId) text = text.replaceAll(hide.runId, '<run>');
  return text
    .split('\n')
    .filter((line) => !isRuntimeFrame(line))
    .join('\n');
}

function isRuntimeFrame(line: string): boolean {
  const l = line.trim();
  if (/\(?node:[\w/]+[:)]/.test(l) && /^(at\s|\S+\s\(node:|node:)/.test(l)) return true;
  if (/^at\s/.test(l) && /node_modules\/|\(internal\/|node:internal/.test(l)) return true;
  // TAP's YAML `stack:` block lists frames without `at`: `Test.runInAsyncScope (node:async_hooks:206:9)`.
  if (/^[\w.<>$\s[\]]+ \((node:|internal\/)[^)]*\)$/.test(l)) return true;
  // Without a regular expression: `\(.*node_modules\/.*\)$` backtracks quadratically on a long line.
  const open = /^(async )?[\w.<>$[\]]+ \(/.exec(l);
  return !!open && l.endsWith(')') && l.includes('node_modules/', open[0].length);
}

/**
 * Summarises a test run's output.
 *
 * @example
 * summarizeTests('not ok 1 - adds\n  ---\n  error: |-\n    Expected 3, got 4\n  ...\n# fail 1', { passed: false });
 * // → { passed: false, failing: [{ name: 'adds', reason: 'Expected 3, got 4' }], failCount: 1, tail: … }
 */
export function summarizeTests(
  output: string,
  options: { passed: boolean; workspace?: string | undefined; runId?: string | undefined },
): TestReport {
  const text = cleanTestOutput(output, options);
  const lines = text.split('\n');
  const failing = options.passed
    ? []
    : dedupe([...fromTap(lines), ...fromSpec(lines), ...fromVitest(lines), ...fromJest(lines), ...fromPytest(lines)]);
  const tail = lines
    .filter((l) => l.trim() !== '')
    .slice(-TAIL_LINES)
    .join('\n');
  return {
    passed: options.passed,
    failing: failing.slice(0, MAX_FAILURES),
    failCount: options.passed ? 0 : (failCount(lines) ?? (failing.length || null)),
    tail,
  };
}

function dedupe(tests: FailingTest[]): FailingTest[] {
  const out = new Map<string, FailingTest>();
  for (const t of tests) {
    const seen = out.get(t.name);
    if (!seen || (!seen.reason && t.reason)) out.set(t.name, t);
  }
  return [...out.values()];
}

const NAME_CHARS = 200;
const clip = (s: string) => (s.length > REASON_CHARS ? `${s.slice(0, REASON_CHARS - 1)}…` : s);
/** A test's name, short: ten names of any length in a comment would pass GitHub's 65,536-character limit and the write would fail. */
const clipName = (s: string) => (s.length > NAME_CHARS ? `${s.slice(0, NAME_CHARS - 1)}…` : s);

function failCount(lines: string[]): number | null {
  for (const line of [...lines].reverse()) {
    const m =
      /^# fail (\d+)/.exec(line.trim()) ??
      /^ℹ fail (\d+)/.exec(line.trim()) ??
      /Tests:?\s+(\d+) failed/.exec(line) ??
      /^=+ (\d+) failed/.exec(line.trim());
    if (m) return Number(m[1]);
  }
  return null;
}

/** TAP: `not ok N - name`, then an indented YAML block whose `error:` (or `message:`) says why. Suites whose children failed are skipped. */
function fromTap(lines: string[]): FailingTest[] {
  const out: FailingTest[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)not ok \d+ - (.*)$/.exec(lines[i] as string);
    // The directive is looked for apart: `(.*?)(\s+#…)?$` backtracks quadratically on a long run of spaces.
    if (!m || /\s#\s*(TODO|SKIP)/.test(m[2] as string)) continue;
    const indent = (m[1] as string).length;
    let reason = '';
    let suite = false;
    for (let j = i + 1; j < lines.length; j++) {
      const l = lines[j] as string;
      if (/^\s*(not )?ok \d+/.test(l) && leading(l) <= indent) break;
      if (/^\s*\.\.\.\s*$/.test(l)) break;
      if (/failureType: '?subtestsFailed/.test(l)) suite = true;
      const e = /^\s*(error|message): ?(\|-?|>-?)?\s*(.*)$/.exec(l);
      if (e && !reason) {
        const inline = (e[3] ?? '').replace(/^['"]|['"]$/g, '');
        reason = inline || continued(lines, j + 1, 2);
      }
    }
    if (!suite) out.push({ name: clipName((m[2] as string).trimEnd()), reason: clip(reason) });
  }
  return out;
}

const leading = (l: string) => l.length - l.trimStart().length;

/** Node's spec reporter: `✖ name (1.2ms)` and the indented error under it. */
function fromSpec(lines: string[]): FailingTest[] {
  const out: FailingTest[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s*✖ (.*?)(?: \([\d.]+m?s\))?$/.exec(lines[i] as string);
    if (!m || /^failing tests:?$/.test(m[1] as string)) continue;
    const reason = firstReason(lines, i + 1);
    // A suite's line is followed by its tests, not by an error: it names no failure of its own.
    if (reason && !/^\d+ subtests? failed/.test(reason)) out.push({ name: clipName(m[1] as string), reason: clip(reason) });
  }
  return out;
}

/** vitest: ` FAIL  test/a.test.ts > suite > name`, the error on the following lines. */
function fromVitest(lines: string[]): FailingTest[] {
  const out: FailingTest[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s*FAIL\s+\S+\s+>\s+(.*)$/.exec(lines[i] as string);
    if (m) out.push({ name: clipName((m[1] as string).replace(/\s+>\s+/g, ' › ')), reason: clip(firstReason(lines, i + 1)) });
  }
  return out;
}

/** jest: `● suite › name`, a blank line, then the message. */
function fromJest(lines: string[]): FailingTest[] {
  const out: FailingTest[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s*● (.*›.*|[^●]+)$/.exec(lines[i] as string);
    if (m && !/Test suite failed to run/.test(m[1] as string))
      out.push({ name: clipName((m[1] as string).trim()), reason: clip(firstReason(lines, i + 1)) });
  }
  return out;
}

/** pytest's short summary: `FAILED tests/test_x.py::test_name - AssertionError: …`. */
function fromPytest(lines: string[]): FailingTest[] {
  // Split by hand: `\S+?::(\S+)(?: - (.*))?$` backtracks quadratically on a long `a::a::…` line.
  return lines.flatMap((line) => {
    const l = line.trim();
    if (!l.startsWith('FAILED ')) return [];
    const rest = l.slice('FAILED '.length);
    const dash = rest.indexOf(' - ');
    const id = dash < 0 ? rest : rest.slice(0, dash);
    const sep = id.indexOf('::');
    if (/\s/.test(id) || sep < 1 || sep + 2 >= id.length) return [];
    return [{ name: clipName(id.slice(sep + 2).replace(/::/g, ' › ')), reason: clip(dash < 0 ? '' : rest.slice(dash + 3)) }];
  });
}

/** The first meaningful line after a failing test's header: not blank, not a frame, not a source excerpt. */
function firstReason(lines: string[], from: number): string {
  for (let i = from; i < Math.min(lines.length, from + 12); i++) {
    const l = (lines[i] as string).trim();
    if (!l || /^at\s/.test(l) || /^[❯>]/.test(l) || /^\d+\s*\|/.test(l) || /^⎯+/.test(l)) continue;
    if (/^\s*(✖|✔|ℹ|▶|FAIL|●|not ok|ok )/.test(l)) break;
    return l.endsWith(':') ? continued(lines, i, 2) : l;
  }
  return '';
}

/** Up to `count` non-blank lines from `from`, joined: `Expected values to be strictly equal: 'a' !== 'b'`. */
function continued(lines: string[], from: number, count: number): string {
  const parts: string[] = [];
  // Node's diff form: `+ actual - expected`, then `+ 'got'` and `- 'wanted'` lines.
  // Only the next four lines: a `findIndex` over the whole output per failing test is quadratic.
  let diffAt = -1;
  for (let i = from; i < Math.min(lines.length, from + 4) && diffAt < 0; i++)
    if ((lines[i] as string).trim() === '+ actual - expected') diffAt = i;
  if (diffAt >= 0) {
    const near = lines.slice(diffAt + 1, diffAt + 8).map((l) => l.trim());
    const got = near.find((l) => l.startsWith('+ '));
    const wanted = near.find((l) => l.startsWith('- '));
    const head =
      lines
        .slice(from - 1, diffAt)
        .map((l) => l.trim())
        .find((l) => l.endsWith(':')) ?? '';
    if (got && wanted) return `${head.replace(/^(error|message): ?\|?-?\s*/, '')} ${got.slice(2)} !== ${wanted.slice(2)}`.trim();
  }
  for (let k = from; k < lines.length && parts.length < count; k++) {
    const l = (lines[k] as string).trim();
    if (/^(code|name|expected|actual|operator|stack):/.test(l) || /^at\s/.test(l) || l === '...') break;
    if (l) parts.push(l);
    if (parts.length === 1 && !l.endsWith(':') && l) break;
  }
  return parts.join(' ');
}

/**
 * A failing test as one Markdown list item: the name in italics, the reason as code (on one line:
 * run-texts.ts `oneLine`; without bidirectional controls, as {@link escapeMarkdown}).
 */
export function failingTestLine(t: FailingTest): string {
  const reason = t.reason ? ` — \`${oneLine(withoutBidiControls(t.reason)).replaceAll('`', "'")}\`` : '';
  return `*${escapeMarkdown(t.name)}*${reason}`;
}

/** The short form of a report: `all passed`, or `2 failing: *a*, *b*`. */
export function testResultLine(report: Pick<TestReport, 'passed' | 'failing' | 'failCount'>): string {
  if (report.passed) return 'all passed';
  const count = report.failCount ?? report.failing.length;
  if (!count) return 'failing';
  const names = report.failing.slice(0, 3).map((t) => `*${escapeMarkdown(t.name)}*`);
  const more = count > names.length && names.length ? `, and ${count - names.length} more` : '';
  return `${count} failing${names.length ? `: ${names.join(', ')}${more}` : ''}`;
}

/**
 * Markdown that a test name could otherwise start (emphasis, links, mentions, HTML, headings, list items),
 * on one line and without the bidirectional controls: quoted inline in the app's own sentence ("1 failing:
 * *name*). The draft …"). A line ending in a name (`\r` is one too: run-texts.ts `oneLine`) began a new
 * block, `# heading` or `- item`, in the middle of the app's words; an override left open reordered them on
 * screen. A bare address (`https://…`, `www.…`) would become a link GitHub draws: a zero-width space after
 * its scheme's colon or its `www` keeps it text, as after an `@`. Every `@` is broken, not only one before
 * a word character (cmark-gfm's email autolink takes a domain starting with `-` or `.`); `www` after `_`
 * (no word boundary, yet a delimiter cmark-gfm links after) too. `&` is escaped: a named entity such as
 * `&commat;` decodes to `@` in the rendered text, where GitHub finds mentions; and `#` before a digit
 * gets a zero-width space, since GitHub links `#123` in the rendered text whatever escaped it, and so does
 * `GH-123`, its other spelling of an issue reference (test/rv-escape-markdown-links.test.ts).
 */
export function escapeMarkdown(text: string): string {
  return oneLine(withoutBidiControls(text))
    .replace(/([\\`*_[\]<>#|&])/g, '\\$1')
    .replace(/@/g, '@\u200b')
    .replace(/#(?=\d)/g, '#\u200b')
    .replace(/\b(gh)-(?=\d)/gi, '$1\u200b-')
    .replace(/:(?=\/\/)/g, ':\u200b')
    .replace(/(www)(?=\.)/gi, '$1\u200b');
}
