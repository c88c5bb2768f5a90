/**
 * The words a maintainer reads about a run on GitHub: stage names, why a run stopped, and what to do
 * next. The machines' state names (`creatingPR`, `parsingComment`) and error categories are engine
 * vocabulary; they stay in the dashboard and behind a "Details" section, never in the main text.
 */
import { withoutBidiControls } from '../persistence/bidi-controls.ts';
import type { ErrorData } from '../state_machine/errors.ts';

/** Plain-language names of the workflows' top-level states. */
const STAGE_LABELS: Record<string, string> = {
  analyzing: 'Read the issue',
  planning: 'Plan the change',
  postingPlan: 'Post the plan',
  awaitingApproval: 'Wait for approval of the plan',
  openingDraftPR: 'Open a draft pull request',
  reproducing: 'Write a test that shows the bug',
  verifyingReproduction: 'Check that the new test fails',
  implementing: 'Implement the change',
  testing: 'Run the tests',
  creatingPR: 'Open the pull request',
  markingReady: 'Mark the pull request ready for review',
  parsingComment: 'Read the comment',
  locatingCode: 'Find the code',
  generatingFix: 'Make the change',
  testingChange: 'Run the tests',
  applyingChanges: 'Push the change',
  responding: 'Reply',
  collecting: 'Read the review',
  addressing: 'Address the comments',
  summarizing: 'Answer the review',
};

/** States that are bookkeeping, not stages a person would tick. */
export const HIDDEN_STAGES = new Set(['complete', 'failed', 'reportingFailure', 'next']);

/** The label of a stage: `testing` → `Run the tests`; an unknown state is split into words (`fooBar` → `Foo bar`). */
export function stageLabel(state: string): string {
  const known = STAGE_LABELS[state];
  if (known) return known;
  const words = state.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

const WORKFLOW_LABELS: Record<string, string> = {
  IssueImplementation: 'implementing this issue',
  ComplexFeature: 'implementing this feature (plan approval first)',
  BugFix: 'fixing this bug (a failing test first)',
  DocsUpdate: 'updating the documentation',
  PRReview: 'addressing a review comment',
  ReviewResponse: 'addressing the review',
};

/** What a workflow does, as the heading of its comment says it. */
export function workflowLabel(workflow: string): string {
  return WORKFLOW_LABELS[workflow] ?? `running ${workflow}`;
}

/** `3m 12s`, `45s`, `1h 02m`. */
export function formatElapsed(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

/** The run's error message without the machine's `stage: ` prefix (`testing: …` → `…`). */
function withoutStage(message: string): string {
  return message.replace(/^[a-z][A-Za-z]*: /, '');
}

/**
 * Why a run stopped, in one sentence a maintainer understands.
 *
 * @example
 * failureReason({ name: 'TestFailureError', message: 'testing: the tests still fail after 3 attempts', code: 'TESTS_FAILED', category: 'test_failure' });
 * // → 'the tests still fail after 3 attempts'
 */
export function failureReason(error: Pick<ErrorData, 'message' | 'code' | 'category'> | null | undefined): string {
  if (!error) return 'the run stopped';
  if (error.category === 'cancelled') return 'the run was cancelled';
  // The machine's own messages are plain words; any other quotes what an agent, the tests, git or GitHub
  // printed, so it is a code span: no mention, link or image in a comment the app posts.
  const message = errorText(error);
  if (error.category === 'timeout' && error.code !== 'APPROVAL_TIMEOUT') return `a step took too long (${message})`;
  if (error.category === 'agent') return `the coding agent did not finish: ${message}`;
  if (error.category === 'transient' || error.category === 'rate_limited') return `GitHub or the network kept failing (${message})`;
  return message;
}

/** A run's error message as shown: the machine's own words as they are, anything else (quoted output) as a code span. */
export function errorText(error: Pick<ErrorData, 'message' | 'code'>): string {
  return OWN_MESSAGES.has(error.code ?? '') ? withoutStage(error.message) : codeSpan(withoutStage(error.message));
}

/**
 * Error codes whose message the machine or its steps write themselves (src/machines/issue-implementation.ts,
 * src/actors/issue-implementation.ts `ISSUE_CLOSED`, `DRAFT_CLOSED`, src/rmapp/github/head-branch.ts
 * `NOT_OWN_BRANCH`, src/rmapp/github/issue-branch-owner.ts `ISSUE_BRANCH_TAKEN`, src/actors/pr-review.ts
 * `FORK_PULL_REQUEST` and `DEFAULT_BRANCH_HEAD` — which show a branch's name as a code span of their own, so
 * quoted whole they would nest one code span in another), with no quoted output. A fork's name is
 * GitHub's `owner/repo` (letters, digits, `.`, `-`, `_`): no mention, link or markup.
 */
const OWN_MESSAGES = new Set([
  'TESTS_FAILED',
  'NOT_REPRODUCED',
  'PLAN_REJECTED',
  'APPROVAL_TIMEOUT',
  'ISSUE_CLOSED',
  'DRAFT_CLOSED',
  'NOT_OWN_BRANCH',
  'ISSUE_BRANCH_TAKEN',
  'FORK_PULL_REQUEST',
  'DEFAULT_BRANCH_HEAD',
]);

/**
 * `text` on one Markdown line: every line ending with the blanks around it becomes one space. CommonMark
 * (which GitHub renders) ends a line at `\n`, `\r\n` and at a lone `\r` too, so two carriage returns are a
 * blank line, which ends a paragraph and any code span in it: the quoted text after them was Markdown
 * again (a spinner's output, or an agent told by an issue to print `\r\r@team ![](https://…)`).
 */
export function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]\s*/g, ' ');
}

/**
 * Untrusted text as a Markdown code span: a run's errors quote what the agent and the tests printed
 * (an agent's error carries the end of its stderr), which must not become mentions, links or images in
 * a comment the app posts. The fence is longer than any run of backticks in the text, on one line
 * ({@link oneLine}: a lone `\r` is a line ending as well). Without bidirectional controls: an override
 * left open in the span reorders on screen the rest of the paragraph, the app's own words after it too.
 */
export function codeSpan(text: string): string {
  const flat = oneLine(withoutBidiControls(text));
  const longest = Math.max(0, ...(flat.match(/`+/g) ?? []).map((m) => m.length));
  const fence = '`'.repeat(longest + 1);
  return `${fence} ${flat} ${fence}`;
}

/**
 * An agent's own words (its summary) shown as Markdown on GitHub: formatting stays, but it mentions no
 * one (`@user`, `@org/team` notify from a new comment the bot posts), shows no image (`![](…)` loads a
 * URL the agent chose) and opens or closes no HTML (`</details>` would break the comment's sections).
 * The agent reads the issue, the repository and the review request, any of which may tell it what to write.
 */
export function untrustedMarkdown(text: string): string {
  return (
    text
      .replace(/@(?=[\w-])/g, '@\u200b')
      .replace(/!\[/g, '!\\[')
      // A `<` the text escaped itself (an odd run of backslashes before it) stays as it is; any other gets a
      // backslash. One added before every `<` turned the text's `\<img …>` into `\\<img …>`: an escaped
      // backslash, then raw HTML.
      .replace(/(\\*)</g, (all, slashes: string) => (slashes.length % 2 === 1 ? all : `${slashes}\\<`))
  );
}

/**
 * What to do after a run stopped, by why it stopped. `bot` is the bot's login as people mention it.
 */
export function nextSteps(error: Pick<ErrorData, 'code' | 'category'> | null | undefined, bot: string, template = ''): string {
  const b = `@${bot.replace(/\[bot\]$/, '')}`;
  const again = `\`${b} implement${template && template !== 'simple' ? ` ${template}` : ''}\``;
  switch (error?.code) {
    case 'TESTS_FAILED':
    case 'NOT_REPRODUCED':
      return `Say more in the issue about what is expected (or push a fix to the branch yourself), then comment \`${b} retry\` to run the agent and the tests again.`;
    case 'PLAN_REJECTED':
      return `Edit the issue to say what the plan should do differently, then comment ${again} to plan again.`;
    case 'APPROVAL_TIMEOUT':
      return `Comment ${again} to plan again.`;
    case 'ISSUE_CLOSED':
      return `Nothing more will happen here. If the work is still wanted, reopen the issue and comment \`${b} retry\`; otherwise close the draft.`;
    case 'ISSUE_BRANCH_TAKEN':
      return `Delete or rename that branch (and close any pull request from it) if it is not needed, then comment ${again}: I start the branch afresh from the default branch.`;
    case 'DRAFT_CLOSED':
      return `Nothing more will happen here. If the draft was closed and the work is still wanted, reopen it and comment \`${b} retry\`; after a merge, open a new issue for what is left.`;
    default:
  }
  switch (error?.category) {
    case 'cancelled':
      return `Comment ${again} to start again.`;
    case 'agent':
      return `Comment \`${b} retry\` to try again, or make the issue clearer first.`;
    case 'permanent':
    case 'validation':
      return `Fix what is named above, then comment \`${b} retry\`.`;
    default:
      return `Comment \`${b} retry\` to continue from the step that stopped.`;
  }
}

/** A `<details>` section: what most readers do not need stays folded. */
export function detailsSection(summary: string, lines: string[]): string[] {
  return ['<details><summary>' + summary + '</summary>', '', ...lines, '', '</details>'];
}

/** Text inside a fenced block, whatever it holds. */
export function fenced(text: string): string {
  let fence = '```';
  while (text.includes(fence)) fence += '`';
  return `${fence}\n${text.trimEnd()}\n${fence}`;
}
