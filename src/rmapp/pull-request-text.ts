/**
 * The texts of a run's pull request and commits: a title by the kind of change, a description with
 * the agent's summary, the test result and the plan as a Markdown checklist, and commit messages with
 * a body and a `Co-authored-by` trailer for the person who asked (GitHub then shows them as an author).
 */
import type { IssueAnalysis } from './analysis.ts';
import { parsePlanYaml, planPath } from './plan.ts';
import { oneLine, untrustedMarkdown } from './run-texts.ts';
import { escapeMarkdown, failingTestLine, testResultLine, type TestReport } from './test-report.ts';

/** The conventional-commit type of a kind of change (the analysis artifact's `kind`). */
export function changeType(kind: IssueAnalysis['kind'] | null | undefined): 'feat' | 'fix' | 'docs' | 'chore' {
  switch (kind) {
    case 'bug':
      return 'fix';
    case 'docs':
      return 'docs';
    case 'chore':
      return 'chore';
    default:
      return 'feat';
  }
}

/**
 * The pull request's title: `feat: Add a maxLength option (#2)`.
 *
 * @example
 * pullRequestTitle('bug', 'Crash on empty input', 7); // 'fix: Crash on empty input (#7)'
 */
export function pullRequestTitle(kind: IssueAnalysis['kind'] | null | undefined, issueTitle: string, issueNumber: number): string {
  // A squash merge makes the title the subject of a commit on the default branch, which closes what it
  // names. The type prefix is a keyword itself: an issue titled "#3 crashes" made "fix: #3 crashes (#7)".
  const title = issueTitle.trim().replace(/\s+/g, ' ').slice(0, 200);
  return `${withoutClosingKeywords(`${changeType(kind)}: ${title}`)} (#${issueNumber})`;
}

/** The plan's tasks as a Markdown checklist, ticked when `done`; a plan that is not rmplan YAML gives null. */
export function planChecklist(planYaml: string, done: boolean): string | null {
  try {
    const plan = parsePlanYaml(planYaml);
    const lines = [`**Goal:** ${escapeMarkdown(plan.goal)}`, ''];
    for (const task of plan.tasks) {
      // The names as code on one line (run-texts.ts `oneLine`): the agent writes them, a lone `\r` too.
      const files = task.files.length ? ` (${task.files.map((f) => `\`${oneLine(f).replaceAll('`', '')}\``).join(', ')})` : '';
      lines.push(`- [${done ? 'x' : ' '}] ${escapeMarkdown(task.title)}${files}`);
    }
    return lines.join('\n');
  } catch {
    return null;
  }
}

/** What the description says about where the run is. */
export type PullRequestPhase =
  { phase: 'working'; stages: string } | { phase: 'ready' } | { phase: 'failed'; reason: string; next: string };

/** The facts a description is built from. */
export interface PullRequestFacts {
  issueNumber: number;
  requestedBy: string | null;
  plan: string;
  /** The agent's own summary of the change (its last answer), if it gave one. */
  summary: string | null;
  tests: Pick<TestReport, 'passed' | 'failing' | 'failCount'> | null;
  /** The template skips the tests (docs). */
  testsSkipped?: boolean;
  status: PullRequestPhase;
}

/**
 * The pull request's description. While the run works it is a draft with the plan unticked and the
 * stages; when it is ready the plan is ticked and the summary and test result are in; when the run
 * failed it stays a draft and says why and what to do.
 */
export function pullRequestBody(f: PullRequestFacts): string {
  const out: string[] = [];
  if (f.status.phase === 'working')
    out.push('> [!NOTE]', '> rmapp is working on this pull request; it stays a draft until the tests pass.', '');
  if (f.status.phase === 'failed') out.push('> [!WARNING]', `> rmapp stopped: ${f.status.reason}`, '>', `> ${f.status.next}`, '');
  if (f.summary?.trim()) out.push('## Summary', '', quoteSafe(f.summary.trim()), '');
  if (f.testsSkipped) out.push('## Tests', '', 'Not run: this template changes documentation only.', '');
  else if (f.tests) {
    out.push('## Tests', '', f.tests.passed ? '✅ The tests pass.' : `❌ ${testResultLine(f.tests)}`);
    if (!f.tests.passed) for (const t of f.tests.failing) out.push(`- ${failingTestLine(t)}`);
    out.push('');
  }
  const checklist = planChecklist(f.plan, f.status.phase === 'ready');
  if (checklist) out.push('## Plan', '', checklist, '', `The full plan is committed as \`${planPath(f.issueNumber)}\`.`, '');
  if (f.status.phase === 'working') out.push('## Progress', '', f.status.stages, '');
  // Only the first line closes an issue: the rest quotes the agent, the plan and the tests.
  const closes = `Closes #${f.issueNumber}.${f.requestedBy ? ` Requested by @${f.requestedBy}.` : ''}`;
  return `${closes}\n\n${withoutClosingKeywords(out.join('\n'))}`.trimEnd();
}

/**
 * GitHub's closing keywords (close, fix, resolve and their -s/-d forms) where an issue reference follows
 * (`#12`, `acme/web#12`, `GH-12`, an issue's URL): GitHub closes that issue when a pull request whose
 * description says so is merged, or a commit whose message says so reaches the default branch.
 *
 * Between the keyword and the reference, anything that renders as nothing or as a space in Markdown is
 * skipped too: emphasis (`**fixes** #3`, `_fixes_ #3`), a colon with or without a space, brackets and
 * angle brackets (`fixes (#3)`, `fixes <https://…>`), HTML tags, comments and entities (`fixes&#32;#3`),
 * a hard break's backslash and zero-width characters. A keyword neutralised needlessly only gains an
 * invisible character; one missed closes an issue. A keyword is one after no letter or digit (an
 * underscore opens emphasis). A reference is also an issue URL without its scheme (`github.com/…`,
 * `www.…`, which GitHub links) or with a full-width number sign.
 */
const CLOSING_KEYWORD =
  /(?<![\p{L}\p{N}])(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)(?=(?:[\s*_~`:()[\]<>"'\\|]|<!--.{0,200}?-->|<\/?[a-z][^<>]{0,200}>|&#?\w{1,12};|[\u00ad\u180e\u200b-\u200f\u2060-\u2064\ufeff]){0,40}(?:[\w./-]{0,200}[#\uff03]\d|GH-\d|https?:\/\/|www\.|github\.com\/))/giu;

/**
 * `text` with each closing keyword that precedes an issue reference broken by an invisible U+2060 WORD
 * JOINER after its first letter, so that it reads the same and closes nothing. The agent's summary and
 * plan, the tests' output and the issue's title are written by whoever can write an issue or a file the
 * agent reads: quoted in a description or a commit message as they are, "this also fixes #3, fixes #8"
 * closed those issues when a maintainer merged the pull request. rmapp's own `Closes #<issue>` line is
 * the only one meant to close anything (README, "What a maintainer sees on GitHub").
 */
export function withoutClosingKeywords(text: string): string {
  return text.replace(CLOSING_KEYWORD, (word) => `${word[0]}\u2060${word.slice(1)}`);
}

/** The agent's text, kept from starting headings or closing the description's own sections. */
function quoteSafe(text: string): string {
  return untrustedMarkdown(text.slice(0, 3000).replace(/^#/gm, '\\#'));
}

/**
 * The `Co-authored-by` trailer of the person who asked, with GitHub's noreply address so the commit
 * is attributed to their account: `<id>+<login>@users.noreply.github.com` when the id is known.
 */
export function coAuthorTrailer(login: string, id?: number | null): string {
  const safe = login.replace(/[^\w-]/g, '');
  return `Co-authored-by: ${safe} <${id ? `${id}+` : ''}${safe}@users.noreply.github.com>`;
}

/**
 * A commit message: a subject, a body, and the trailer. Masked and passed on stdin by the workspace.
 *
 * @example
 * commitMessage({ subject: 'feat: Add --json (#4)', body: ['Adds the flag.'], coAuthor: 'alice' });
 */
export function commitMessage(m: {
  subject: string;
  body: string[];
  coAuthor?: string | null | undefined;
  coAuthorId?: number | null;
  /**
   * The run that made it, as an `Rmapp-Run` trailer: a retried run's attempt 1 is not the failed run's
   * attempt 1 when a re-executed step looks for the commit it made before (Workspaces.commitAll).
   */
  runId?: string | null | undefined;
  /**
   * Which attempt of the run made it, as an `Rmapp-Attempt` trailer (e.g. `implement 2`): with the
   * run's trailer it names the step execution, so a re-executed step finds its commit even when the
   * agent's summary in the body came out different the second time ({@link attemptTrailers}).
   */
  attempt?: string | null | undefined;
}): string {
  // No commit of rmapp's closes an issue (withoutClosingKeywords): the issue run's pull request does.
  const body = m.body.map((p) => withoutClosingKeywords(gitClean(p).trim())).filter(Boolean);
  const trailers = [
    m.coAuthor ? coAuthorTrailer(m.coAuthor, m.coAuthorId) : null,
    ...(m.runId ? attemptTrailers(m.runId, m.attempt) : []),
  ].filter((t): t is string => t !== null);
  return [
    withoutClosingKeywords(gitClean(m.subject).replace(/\s+/g, ' ').trim().slice(0, 120)),
    ...(body.length ? ['', body.join('\n\n')] : []),
    ...(trailers.length ? ['', trailers.join('\n')] : []),
  ].join('\n');
}

/**
 * The trailers that name the step execution that made a commit: the run, and the attempt when there
 * is one. Workspaces.commitAll takes them as the commit's identity (a re-executed step's own commit).
 */
export function attemptTrailers(runId: string, attempt?: string | null): string[] {
  return [
    `Rmapp-Run: ${gitClean(runId).replace(/\s+/g, ' ').trim()}`,
    ...(attempt ? [`Rmapp-Attempt: ${gitClean(attempt).replace(/\s+/g, ' ').trim()}`] : []),
  ];
}

/**
 * Text as git stores it in a commit message (`--cleanup=whitespace`): no trailing spaces on a line, no
 * run of blank lines, no carriage returns, and no control characters (git refuses a NUL; an agent's
 * ANSI colours mean nothing in a log). Workspaces.commitAll finds the commit a re-executed step made
 * by comparing messages: a message git would have rewritten never matches its own commit.
 */
function gitClean(text: string): string {
  return (
    text
      // eslint-disable-next-line no-control-regex -- removing control characters is the point
      .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
      // eslint-disable-next-line no-control-regex -- removing control characters is the point
      .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '')
      .replace(/[ \t]+$/gm, '')
      .replace(/\n{3,}/g, '\n\n')
  );
}

/** The agent's summary of what it did: its answer's text, short, without an empty or JSON-only answer. */
export function agentSummary(stdout: string): string | null {
  const text = stdout.trim();
  if (!text) return null;
  try {
    const json = JSON.parse(text) as unknown;
    if (json && typeof json === 'object') {
      const s = (json as { summary?: unknown; result?: unknown }).summary ?? (json as { result?: unknown }).result;
      return typeof s === 'string' && s.trim() && s.trim() !== 'done' ? s.trim().slice(0, 2000) : null;
    }
  } catch {
    // plain text: the usual case
  }
  return text.slice(-2000);
}
