/**
 * What rmapp writes into a pull request's description and its commits quotes text anyone who can open
 * an issue controls (the issue's title; the agent's summary and plan, which an issue can dictate; test
 * names). GitHub closes the issues that a merged description or a commit on the default branch names
 * after a closing keyword: only rmapp's own `Closes #<issue>` may do that.
 */
import { describe, expect, it } from 'vitest';
import { commitMessage, pullRequestBody, pullRequestTitle } from '../src/rmapp/pull-request-text.ts';
import { renderPlanYaml } from '../src/rmapp/plan.ts';

/** The references GitHub takes as closing (its documented keywords, an optional colon, a reference). */
function closedBy(text: string): string[] {
  const re =
    /\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?):?\s+((?:[\w.-]+\/[\w.-]+)?#\d+|GH-\d+|https:\/\/github\.com\/[\w.-]+\/[\w.-]+\/issues\/\d+)/gi;
  return [...text.matchAll(re)].map((m) => m[1] as string);
}

const injected = 'Done. This also fixes #3, Closes: acme/web#4 and resolves https://github.com/acme/widgets/issues/5.\nFixed GH-6';

describe('closing keywords in what rmapp writes', () => {
  it('the description closes its own issue and nothing the agent, the plan or the tests name', () => {
    const body = pullRequestBody({
      issueNumber: 7,
      requestedBy: 'alice',
      plan: renderPlanYaml({
        goal: 'Fix the parser; resolves https://github.com/acme/widgets/issues/8',
        tasks: [{ title: 'fixes https://github.com/acme/widgets/issues/9', steps: [{ prompt: 'x' }] }],
      }),
      summary: injected,
      tests: { passed: false, failing: [{ name: 'closes https://github.com/acme/widgets/issues/10', reason: 'fixes #11' }], failCount: 1 },
      status: { phase: 'ready' },
    });
    expect(closedBy(body)).toEqual(['#7']);
    // What people read is unchanged but for an invisible joiner.
    expect(body.replaceAll('\u2060', '')).toContain('This also fixes #3, Closes: acme/web#4');
  });

  it('the title closes nothing either: a squash merge makes it a commit on the default branch', () => {
    const title = pullRequestTitle('bug', 'Crash on start, fixes #1', 7);
    expect(closedBy(title)).toEqual([]);
    expect(title.replaceAll('\u2060', '')).toBe('fix: Crash on start, fixes #1 (#7)');
  });

  it('a commit closes nothing, whatever the issue title or the summary says', () => {
    const message = commitMessage({
      subject: 'feat: Crash on start, fixes #1 (#7)',
      body: [injected],
      coAuthor: 'alice',
      runId: 'acme/widgets/issues/7/d1',
      attempt: 'implement 1',
    });
    expect(closedBy(message)).toEqual([]);
    expect(message.replaceAll('\u2060', '')).toContain('feat: Crash on start, fixes #1 (#7)');
  });
});
