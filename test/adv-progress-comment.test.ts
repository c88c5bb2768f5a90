/**
 * Adversarial: a failed run's progress comment quotes its error, and an agent's error carries the end of
 * what the agent printed. That text must not become mentions (notifications to anyone), links or images
 * (tracking, phishing) in a comment the app posts: it is a code span no backtick run can close.
 */
import { expect, it } from 'vitest';
import { codeSpan, renderProgress } from '../src/rmapp/progress-comment.ts';

const hostile = 'exited with 1: ``` @acme/everyone ![x](https://evil.example/t.png) [✅ Done: PR](https://evil.example/pr)\n<img src=x>';

it('an agent error in a failed run comment is one code span: no mention, link or image outside it', () => {
  const body = renderProgress({
    runId: 'o/r/issues/1/d',
    target: { owner: 'o', repo: 'r', issueNumber: 1 },
    workflow: 'IssueImplementation',
    requestedBy: null,
    startedAt: 0,
    stages: ['implementing'],
    done: new Set(),
    current: 'implementing',
    attempt: 1,
    retrying: null,
    status: null,
    rounds: [],
    attempts: [],
    pr: null,
    finished: {
      status: 'failed',
      at: 1000,
      error: { name: 'AgentError', category: 'agent', code: 'AGENT_FAILED', message: `The coding agent (claude) ${hostile}` },
    },
  } as never);
  const span = codeSpan(`The coding agent (claude) ${hostile}`);
  expect(body).toContain(span);
  const outside = body.split(span).join(''); // it is quoted twice: the outcome and the details
  for (const bad of ['@acme', '![', '](', '<img']) expect(outside, `"${bad}" is outside the code span`).not.toContain(bad);
  // The fence is longer than the longest run of backticks inside, and the span is one line.
  expect(span.startsWith('```` ')).toBe(true);
  expect(span).not.toContain('\n');
});
